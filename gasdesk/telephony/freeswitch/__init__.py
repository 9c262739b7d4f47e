"""FreeSWITCH production mode: the Event Socket protocol (esl), a call as a MediaSession (session), the
listener for the dialplan's ``socket`` application (listener) and a fake FreeSWITCH for tests (fake)."""
