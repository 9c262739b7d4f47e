"""Emergency alerts by phone: the on-duty person's mobile rings, hears the alert and presses 1 to acknowledge.

Two halves, because escalation runs in any process (the worker's scan, a web request, the hotline's IVR) but
only the hotline process can place calls:

* ``queue_phone_alert`` — the ``register_phone_alerter`` hook, inside the escalation step's transaction: the
  ``EmergencyNotification`` row of the phone channel is written ``queued`` (it is the durable job), or
  ``unavailable`` / ``no_outbound_call`` when no outbound route is configured, ``no_contact`` / ``no_mobile``
  when the person has no mobile on file.
* :class:`PhoneAlerts` — in the hotline process (``telephony/runtime.py``), polling for queued rows: each is
  claimed by a compare-and-set (``queued`` → ``calling``, so two pollers never ring twice), the call runs
  outside any transaction, and its result is written in a transaction of its own: ``answered`` (reason
  ``acknowledged``, ``no_key``, ``hung_up`` or ``already_acknowledged``) or ``failed`` (``busy``,
  ``no_answer``, ``rejected``, ``failed``, ``rate_limited``). Pressing 1 acknowledges through the board's own
  ``do_acknowledge`` (actor: that person, ``via="phone"``, audited, ``emergency.updated``). A call that does not
  end in an acknowledgement changes nothing else: the step's timeout moves escalation on, as for SMS.

Nothing here logs a number; the spoken alert holds the level, the kind and the event's (redacted) title.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.models import User
from gasdesk.config import get_settings
from gasdesk.db import execute_counted, transaction
from gasdesk.emergency.models import (
    SOURCES,
    EmergencyEvent,
    EmergencyNotification,
    EmergencyStatus,
    StaffContact,
)
from gasdesk.emergency.service import do_acknowledge
from gasdesk.errors import Conflict
from gasdesk.telephony.ivr.engine import PromptRenderer
from gasdesk.telephony.media import CallHungUp, MediaSession
from gasdesk.telephony.originate import OutboundCalls, Outcome, outbound_configured

log = logging.getLogger(__name__)

LEVEL_SPOKEN = {1: "一", 2: "二", 3: "三", 4: "四"}
ACK_KEY = "1"
ATTEMPTS = 2  # the alert is said twice before the call gives up on a key
DIGIT_TIMEOUT_S = 6.0
CONFIRMED_TEXT = "已确认，谢谢。"
ALREADY_TEXT = "该事件已由他人确认，谢谢。"
TITLE_HINT_CHARS = 24
OPEN_STATUSES = (EmergencyStatus.open.value, EmergencyStatus.escalating.value)


async def queue_phone_alert(session: AsyncSession, event: EmergencyEvent, user_id: int,
                            seq: int) -> tuple[str, str | None]:
    """The phone channel of an escalation step (the ``PhoneAlerter`` hook): ``("queued", None)`` for the
    hotline to call, or why it cannot."""
    if not outbound_configured(get_settings()):
        return "unavailable", "no_outbound_call"
    contact = await session.get(StaffContact, user_id)
    if contact is None or not contact.mobile:
        return "no_contact", "no_mobile"
    return "queued", None


def alert_text(event: EmergencyEvent) -> str:
    """What the phone says: level, kind, a short hint of where (the redacted title), and the key to press."""
    hint = (event.title or "").strip()[:TITLE_HINT_CHARS]
    return (f"燃气应急事件，{LEVEL_SPOKEN.get(event.level, '')}级，{SOURCES.get(event.source, '')}。"
            f"{hint}。确认请按{ACK_KEY}。")


async def _claim(row_id: int) -> tuple[str, EmergencyEvent, int] | None:
    """Take a queued phone notification (``calling``): (mobile, event, user id), or None if another poller
    took it or there is nobody to call any more (then the row says why)."""
    async with transaction() as session:
        won = await execute_counted(session, update(EmergencyNotification).where(
            EmergencyNotification.id == row_id, EmergencyNotification.status == "queued")
            .values(status="calling").execution_options(synchronize_session=False))
        if won != 1:
            return None
        row = await session.get(EmergencyNotification, row_id, populate_existing=True)
        assert row is not None
        event = await session.get(EmergencyEvent, row.event_id)
        user = await session.get(User, row.user_id) if row.user_id else None
        contact = await session.get(StaffContact, row.user_id) if row.user_id else None
        if event is None or event.status not in OPEN_STATUSES:
            row.status, row.reason = "skipped", f"event_{event.status if event else 'gone'}"[:40]
            return None
        if event.seq != row.seq:  # the step it belonged to is over: the next step's people are being told
            row.status, row.reason = "skipped", "step_over"
            return None
        if user is None or not user.is_active or contact is None or not contact.mobile:
            row.status, row.reason = "no_contact", "no_mobile"
            return None
        session.expunge(event)
        return contact.mobile, event, user.id


async def _finish(row_id: int, status: str, reason: str | None) -> None:
    async with transaction() as session:
        await execute_counted(session, update(EmergencyNotification).where(
            EmergencyNotification.id == row_id, EmergencyNotification.status == "calling")
            .values(status=status, reason=reason[:40] if reason else None).execution_options(synchronize_session=False))


async def _acknowledge(row_id: int, event_id: int, user_id: int) -> bool:
    """Pressing 1: the board's acknowledgement by that person (``via="phone"``). False when someone else
    acknowledged (or the event ended) first."""
    async with transaction() as session:
        event = await session.get(EmergencyEvent, event_id)
        user = await session.get(User, user_id)
        if event is None or user is None:
            return False
        try:
            await do_acknowledge(session, user, event, via="phone", source="phone")
        except Conflict:
            acknowledged = False
        else:
            acknowledged = True
        await execute_counted(session, update(EmergencyNotification).where(EmergencyNotification.id == row_id)
                              .values(status="answered", reason="acknowledged" if acknowledged
                                      else "already_acknowledged").execution_options(synchronize_session=False))
        return acknowledged


async def _talk(media: MediaSession, prompts: PromptRenderer, text: str, row_id: int, event_id: int,
                user_id: int, digit_timeout_s: float) -> str:
    """The answered call: the alert (twice at most) until 1 is pressed. Returns the row's reason."""
    alert = await prompts.render(text)
    for _ in range(ATTEMPTS):
        digits = await media.collect_digits(alert, max_digits=1, timeout_s=digit_timeout_s, terminators="")
        if digits == ACK_KEY:
            acknowledged = await _acknowledge(row_id, event_id, user_id)
            with contextlib.suppress(CallHungUp):
                await media.play(await prompts.render(CONFIRMED_TEXT if acknowledged else ALREADY_TEXT),
                                 barge_in=False)
            return "acknowledged" if acknowledged else "already_acknowledged"
    return "no_key"


async def place_alert(row_id: int, calls: OutboundCalls, prompts: PromptRenderer, *,
                      digit_timeout_s: float = DIGIT_TIMEOUT_S) -> str:
    """Place the phone alert of one queued notification row and record how it went. Returns the row's final
    status ('' when the row was not ours to call)."""
    claimed = await _claim(row_id)
    if claimed is None:
        return ""
    mobile, event, user_id = claimed
    try:
        result = await calls.originate(mobile)
    except Exception:
        log.exception("emergency event %s: phone alert failed to start", event.id)
        await _finish(row_id, "failed", "failed")
        return "failed"
    if result.outcome is Outcome.no_line:  # every line busy: back in the queue for the next poll
        await _finish(row_id, "queued", None)
        return "queued"
    if not result.answered or result.session is None:
        await _finish(row_id, "failed", result.outcome.value)
        log.info("emergency event %s: phone alert not answered (%s)", event.id, result.outcome.value)
        return "failed"
    media = result.session
    reason = "hung_up"
    try:
        reason = await _talk(media, prompts, alert_text(event), row_id, event.id, user_id, digit_timeout_s)
    except CallHungUp:
        pass
    finally:
        with contextlib.suppress(Exception):
            await media.hangup()
    if reason not in ("acknowledged", "already_acknowledged"):
        await _finish(row_id, "answered", reason)
    log.info("emergency event %s: phone alert answered (%s)", event.id, reason)
    return "answered"


class PhoneAlerts:
    """The hotline process's poller: every ``poll_s`` it calls the queued phone notifications, as many at
    once as there are free outbound lines."""

    def __init__(self, calls: OutboundCalls, prompts: PromptRenderer, *, poll_s: float = 2.0,
                 digit_timeout_s: float = DIGIT_TIMEOUT_S) -> None:
        self.calls = calls
        self.prompts = prompts
        self.poll_s = poll_s
        self.digit_timeout_s = digit_timeout_s
        self._loop: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Task[str]] = {}

    async def start(self) -> None:
        """Mark calls a crash interrupted (``calling`` rows: one hotline process runs), then start polling."""
        async with transaction() as session:
            await execute_counted(session, update(EmergencyNotification).where(
                EmergencyNotification.channel == "phone", EmergencyNotification.status == "calling")
                .values(status="failed", reason="interrupted").execution_options(synchronize_session=False))
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def run_once(self) -> list[asyncio.Task[str]]:
        """Start a call for each queued phone notification there is a free line for; returns their tasks."""
        # A running alert holds a line once dialled (``active``) and counts as one before: the larger of both.
        free = self.calls.max_calls - max(self.calls.active, sum(1 for t in self._calls.values() if not t.done()))
        if free <= 0:
            return []
        async with transaction() as session:
            ids = list(await session.scalars(select(EmergencyNotification.id).where(
                EmergencyNotification.channel == "phone", EmergencyNotification.status == "queued")
                .order_by(EmergencyNotification.id).limit(free)))
        started = []
        for row_id in ids:
            if row_id in self._calls:
                continue
            task = asyncio.get_running_loop().create_task(
                place_alert(row_id, self.calls, self.prompts, digit_timeout_s=self.digit_timeout_s))
            self._calls[row_id] = task
            task.add_done_callback(self._forget)
            started.append(task)
        return started

    def _forget(self, task: asyncio.Task[str]) -> None:
        for row_id, running in list(self._calls.items()):
            if running is task:
                del self._calls[row_id]

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("emergency phone alerts: poll failed; trying again")
            await asyncio.sleep(self.poll_s)

    async def close(self) -> None:
        """Stop polling and end the calls in progress (their rows stay ``calling`` → ``interrupted`` at the
        next start)."""
        tasks = [t for t in (self._loop, *self._calls.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
