"""Calls placed through FreeSWITCH: ``bgapi originate`` on its inbound Event Socket, then the channel driven
by the same :class:`FreeswitchMediaSession` as an inbound call.

One inbound connection per call (as the listener has one socket per inbound call): it subscribes to the
channel's events only (``filter Unique-ID <uuid>``, plus the originate job's Job-UUID) and sends
``bgapi originate {origination_uuid=<uuid>,…}sofia/gateway/<gw>/<number> &park()``. The uuid is ours, so every
event of the new channel is recognised from the first one. FreeSWITCH answers the job when the callee answers
(``+OK <uuid>``: the channel is parked, ours to drive with ``sendmsg <uuid>``) or when the attempt fails
(``-ERR USER_BUSY``, ``-ERR NO_ANSWER`` after ``originate_timeout``…); the hangup cause becomes the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from gasdesk.config import Settings
from gasdesk.telephony.freeswitch.esl import EslCommandError, EslConnection, EslError, EslTimeout
from gasdesk.telephony.freeswitch.session import FreeswitchMediaSession
from gasdesk.telephony.media import CallInfo
from gasdesk.telephony.originate import OriginateResult, Outcome

log = logging.getLogger(__name__)

CHANNEL_EVENTS = ("CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE_COMPLETE", "DTMF",
                  "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "BACKGROUND_JOB")
_BUSY = {"USER_BUSY"}
_NO_ANSWER = {"NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL", "ALLOTTED_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE",
              "SUBSCRIBER_ABSENT"}
_REJECTED = {"CALL_REJECTED"}


def outcome_of(cause: str) -> Outcome:
    """A FreeSWITCH hangup cause of a failed originate as an :class:`Outcome`."""
    if cause in _BUSY:
        return Outcome.busy
    if cause in _NO_ANSWER:
        return Outcome.no_answer
    if cause in _REJECTED:
        return Outcome.rejected
    return Outcome.failed


class FreeswitchDialer:
    """The FreeSWITCH back-end's :class:`~gasdesk.telephony.originate.Dialer`: ``sofia/gateway/<gateway>``."""

    backend = "freeswitch"

    def __init__(self, *, host: str, port: int, password: str, gateway: str, command_timeout_s: float = 5.0,
                 max_app_s: float = 900.0) -> None:
        self.host = host
        self.port = port
        self._password = password
        self.gateway = gateway
        self.command_timeout_s = command_timeout_s
        self.max_app_s = max_app_s
        self._closers: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> FreeswitchDialer:
        password = settings.freeswitch_password.get_secret_value() if settings.freeswitch_password else ""
        return cls(host=settings.freeswitch_host, port=settings.freeswitch_port, password=password,
                   gateway=settings.freeswitch_outbound_gateway, command_timeout_s=settings.freeswitch_command_timeout_s)

    async def originate(self, number: str, *, caller_id: str | None, timeout_s: float) -> OriginateResult:
        """Call ``number`` (checked digits) through the gateway; ring at most ``timeout_s``."""
        try:
            conn = await EslConnection.open_inbound(self.host, self.port, self._password,
                                                    timeout_s=self.command_timeout_s)
        except EslError as exc:
            log.warning("outbound call: FreeSWITCH Event Socket unavailable (%s)", exc.__class__.__name__)
            return OriginateResult(Outcome.failed, cause="ESL_UNAVAILABLE")
        answered = False
        try:
            result = await self._originate(conn, number, caller_id, timeout_s)
            answered = result.answered
            return result
        except EslError as exc:
            log.warning("outbound call: Event Socket failed (%s)", exc.__class__.__name__)
            return OriginateResult(Outcome.failed, cause="ESL_ERROR")
        finally:
            if not answered:
                await conn.close()

    async def _originate(self, conn: EslConnection, number: str, caller_id: str | None,
                         timeout_s: float) -> OriginateResult:
        call_uuid, job = str(uuid.uuid4()), str(uuid.uuid4())
        await conn.command(f"filter Unique-ID {call_uuid}")
        await conn.command(f"filter Job-UUID {job}")
        await conn.subscribe(*CHANNEL_EVENTS)
        info = CallInfo(call_ref=call_uuid, caller=caller_id or "", callee=number, backend="freeswitch",
                        extra={"direction": "outbound"})
        # Listening before the originate: no event of the new channel can come before its session exists.
        session = FreeswitchMediaSession(conn, info, max_app_s=self.max_app_s, inbound=True)
        ring_s = max(1, int(round(timeout_s)))
        variables = [f"origination_uuid={call_uuid}", f"originate_timeout={ring_s}", "ignore_early_media=true",
                     "hangup_after_bridge=true"]
        if caller_id:
            variables += [f"origination_caller_id_number={caller_id}", f"effective_caller_id_number={caller_id}"]
        dial = f"{{{','.join(variables)}}}sofia/gateway/{self.gateway}/{number} &park()"
        try:
            reply = await conn.bgapi(f"originate {dial}", timeout_s=ring_s + self.command_timeout_s, job_uuid=job)
        except EslCommandError as exc:
            words = str(exc).rsplit("-ERR", 1)[-1].split()
            cause = words[0] if "-ERR" in str(exc) and words else "UNKNOWN"
            return OriginateResult(outcome_of(cause), cause=cause)
        except EslTimeout:
            # FreeSWITCH should have given up after originate_timeout; make sure the phone stops ringing.
            with contextlib.suppress(EslError):
                await conn.api(f"uuid_kill {call_uuid} ORIGINATOR_CANCEL")
            return OriginateResult(Outcome.no_answer, cause="TIMEOUT")
        if not reply.startswith("+OK") or session.ended:
            return OriginateResult(outcome_of(session.hangup_cause or ""), cause=session.hangup_cause or "HANGUP")
        session.answered = True
        closer = asyncio.get_running_loop().create_task(self._close_at_end(conn, session))
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)
        return OriginateResult(Outcome.answered, session=session, cause="ANSWER")

    async def _close_at_end(self, conn: EslConnection, session: FreeswitchMediaSession) -> None:
        try:
            await session.wait_hangup()
        finally:
            await conn.close()
