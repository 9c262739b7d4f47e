"""The numbers and names the socket clients and the server must agree on, defined once.

The server uses them directly; the browser gets them from the page: every page that runs a socket client
(the resident chat, the agent console, the bell on every staff page) renders ``client_protocol()`` as JSON
into ``<script type="application/json" id="gasdesk-protocol">`` (``web/templates/_protocol.html``), which
``web/static/socket-client.js`` reads. No JS file repeats them (tests/realtime/test_protocol_constants.py).
"""

from __future__ import annotations

from typing import Any

# Close codes (docs/chat-protocol.md).
CLOSE_BAD_HELLO = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY = 4429
CLOSE_FRAME_TOO_LARGE = 1009

# Error codes after which a client resends the same frame (same client_msg_id) instead of giving up.
RETRY_LATER_CODES = ("rate_limited", "internal_error")
# The shortest wait before such a resend, when the server names none (or a shorter one).
RETRY_MIN_S = 3

# Reconnecting: exponential from the first delay up to the cap, each delay spread by ± the jitter share so
# that a restarted server is not hit by every client in the same instant.
RECONNECT_FIRST_MS = 500
RECONNECT_MAX_MS = 10_000
RECONNECT_JITTER = 0.2
# A ``ping`` this often keeps proxies from closing an idle socket and shows a dead one.
HEARTBEAT_MS = 25_000
# A sent frame unanswered this long means the socket is dead although it looks open: reconnect and resend.
ACK_TIMEOUT_MS = 15_000
# A seq gap waits this long for the missing messages (they may just be behind) before asking to resume;
# an unanswered resume is asked again after RESUME_RETRY_MS × tries, at most RESUME_MAX_TRIES times.
GAP_WAIT_MS = 150
RESUME_RETRY_MS = 2_000
RESUME_MAX_TRIES = 3
# At most one ``typing`` frame this often (the server drops the excess anyway).
TYPING_INTERVAL_MS = 2_000


def client_protocol() -> dict[str, Any]:
    """What the browser's socket client needs, as rendered into every page that runs one."""
    # The message length limit stays beside the check that enforces it; imported here, not at the top, so
    # that the low-level modules using the close codes (auth, the hub) do not load the conversation domain.
    from gasdesk.conversations.service import MAX_TEXT  # noqa: PLC0415 - see above

    return {
        "max_message_chars": MAX_TEXT,
        "reconnect_first_ms": RECONNECT_FIRST_MS,
        "reconnect_max_ms": RECONNECT_MAX_MS,
        "reconnect_jitter": RECONNECT_JITTER,
        "heartbeat_ms": HEARTBEAT_MS,
        "ack_timeout_ms": ACK_TIMEOUT_MS,
        "gap_wait_ms": GAP_WAIT_MS,
        "resume_retry_ms": RESUME_RETRY_MS,
        "resume_max_tries": RESUME_MAX_TRIES,
        "typing_interval_ms": TYPING_INTERVAL_MS,
        "retry_min_s": RETRY_MIN_S,
        "retry_later_codes": list(RETRY_LATER_CODES),
        # Closes after which reconnecting cannot help (no login, wrong role).
        "final_close_codes": [CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN],
        "close_codes": {"bad_hello": CLOSE_BAD_HELLO, "unauthorized": CLOSE_UNAUTHORIZED,
                        "forbidden": CLOSE_FORBIDDEN, "too_slow": CLOSE_TOO_SLOW, "too_many": CLOSE_TOO_MANY,
                        "frame_too_large": CLOSE_FRAME_TOO_LARGE},
    }
