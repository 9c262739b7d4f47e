"""Placing calls: one ``originate`` for both media back-ends, with the limits every outbound call obeys.

A back-end (:class:`Dialer`: the embedded SIP endpoint sending an INVITE to ``sip_outbound_proxy``, or
FreeSWITCH dialling ``sofia/gateway/<gw>/<number>`` over its inbound Event Socket) turns a number into an
:class:`OriginateResult`: ``answered`` with a :class:`~gasdesk.telephony.media.MediaSession` (already answered:
prompts, digits, bridge and hangup work exactly as on an inbound call), or why not (``busy``, ``no_answer``,
``rejected``, ``failed``). :class:`OutboundCalls` wraps the one the runtime started (``set_outbound``) with the
limits of docs/security.md: ``outbound_max_calls`` at once, ``outbound_calls_per_number`` calls to one number
per ``outbound_rate_window_min``, the ring time capped. Emergency alerts and callbacks call
``outbound().originate(...)`` and never see which back-end runs.

Numbers are personal data: nothing here logs them (the rate window keys on a blind index, not the number).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gasdesk.config import Settings
from gasdesk.errors import InvalidInput
from gasdesk.security.crypto import blind_index
from gasdesk.telephony.media import MediaSession

# What a trunk can dial: digits, an optional leading +, 3–20 of them (short codes to international numbers).
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_SPACING = re.compile(r"[\s()-]")


class Outcome(StrEnum):
    answered = "answered"
    busy = "busy"  # 486/600, USER_BUSY
    no_answer = "no_answer"  # rang out (our CANCEL, 408/480, NO_ANSWER/NO_USER_RESPONSE)
    rejected = "rejected"  # declined (603, CALL_REJECTED)
    failed = "failed"  # anything else: unreachable trunk, 404, 5xx, no response
    no_line = "no_line"  # every outbound line of this process is in use
    rate_limited = "rate_limited"  # this number was rung too often lately


# Why a placed call was not answered, in Chinese: the callback's note in the conversation and the emergency
# board's phone rows read the same words.
OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.busy: "对方占线", Outcome.no_answer: "无人接听", Outcome.rejected: "对方拒接", Outcome.failed: "呼叫失败",
    Outcome.no_line: "外呼线路全忙", Outcome.rate_limited: "该号码呼叫过于频繁"}


@dataclass
class OriginateResult:
    """How a call attempt ended. ``session`` is set only when ``answered``; ``cause`` is the back-end's word
    for it (a SIP status such as ``486``, a FreeSWITCH hangup cause such as ``USER_BUSY``)."""

    outcome: Outcome
    session: MediaSession | None = None
    cause: str = ""

    @property
    def answered(self) -> bool:
        return self.outcome is Outcome.answered and self.session is not None


class Dialer(Protocol):
    """A media back-end that can place a call."""

    backend: str

    async def originate(self, number: str, *, caller_id: str | None, timeout_s: float) -> OriginateResult:
        """Call ``number`` (checked digits); ring at most ``timeout_s``; an answered call comes back as an
        answered MediaSession."""


def check_number(number: str) -> str:
    """The number as dialled (spaces, dashes and brackets dropped), or ``InvalidInput``: nothing is dialled."""
    value = _SPACING.sub("", number or "")
    if not _NUMBER.match(value):
        raise InvalidInput("电话号码格式错误", code="invalid_phone_number")
    return value


def outbound_configured(settings: Settings) -> bool:
    """Is an outbound route set for a back-end that is switched on?"""
    return bool((settings.sip_enabled and settings.sip_outbound_proxy)
                or (settings.freeswitch_enabled and settings.freeswitch_outbound_gateway))


class OutboundCalls:
    """The limits in front of a :class:`Dialer`: a line per call (held until the call ends), a rate window
    per number, the ring time capped by ``outbound_ring_timeout_s``."""

    def __init__(self, dialer: Dialer, *, max_calls: int = 4, calls_per_number: int = 3, window_s: float = 600.0,
                 max_ring_s: float = 30.0, caller_id: str = "") -> None:
        self.dialer = dialer
        self.max_calls = max_calls
        self.calls_per_number = calls_per_number
        self.window_s = window_s
        self.max_ring_s = max_ring_s
        self.caller_id = caller_id
        self.active = 0
        self._recent: dict[str, deque[float]] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, dialer: Dialer) -> OutboundCalls:
        return cls(dialer, max_calls=settings.outbound_max_calls, calls_per_number=settings.outbound_calls_per_number,
                   window_s=settings.outbound_rate_window_min * 60.0, max_ring_s=settings.outbound_ring_timeout_s,
                   caller_id=settings.outbound_caller_id)

    @property
    def backend(self) -> str:
        return self.dialer.backend

    def _allow(self, number: str, now: float) -> bool:
        key = blind_index(number, kind="phone")
        times = self._recent.setdefault(key, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if len(times) >= self.calls_per_number:
            return False
        times.append(now)
        if len(self._recent) > 10_000:  # forget numbers whose window is over
            for stale in [k for k, v in self._recent.items() if not v or now - v[-1] >= self.window_s]:
                del self._recent[stale]
        return True

    async def originate(self, number: str, *, caller_id: str | None = None,
                        timeout_s: float | None = None) -> OriginateResult:
        """Place a call to ``number`` (``InvalidInput`` before anything is dialled when it is no number).
        ``no_line`` when every line is busy, ``rate_limited`` when this number was rung too often; otherwise
        the back-end's result. An answered call holds its line until it ends."""
        dialled = check_number(number)
        if self.active >= self.max_calls:
            return OriginateResult(Outcome.no_line, cause="MAX_CALLS")
        if not self._allow(dialled, asyncio.get_running_loop().time()):
            return OriginateResult(Outcome.rate_limited, cause="RATE_LIMITED")
        ring_s = min(timeout_s if timeout_s is not None else self.max_ring_s, self.max_ring_s)
        self.active += 1
        held = False
        try:
            result = await self.dialer.originate(dialled, caller_id=caller_id or self.caller_id or None,
                                                 timeout_s=ring_s)
            if result.answered and result.session is not None:
                held = True
                watcher = asyncio.get_running_loop().create_task(self._release_at_end(result.session))
                self._watchers.add(watcher)
                watcher.add_done_callback(self._watchers.discard)
            return result
        finally:
            if not held:
                self.active -= 1

    async def _release_at_end(self, session: MediaSession) -> None:
        try:
            await session.wait_hangup()
        finally:
            self.active -= 1

    async def close(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)


_current: list[OutboundCalls] = []


def set_outbound(calls: OutboundCalls | None) -> None:
    """The runtime's outbound route (None: gasdesk cannot place calls in this process)."""
    _current.clear()
    if calls is not None:
        _current.append(calls)


def outbound() -> OutboundCalls | None:
    """The outbound route of this process, if the hotline runs here with one configured."""
    return _current[0] if _current else None
