"""The agent's browser softphone for the embedded (one-process) hotline: WebRTC legs made with aiortc.

``WebRtcBridgeProvider`` is the embedded SIP back-end's :data:`~gasdesk.telephony.sip.session.BridgeProvider`:
when the controller bridges a caller to an agent, it offers the call to that agent's consoles (``call.offered``)
and returns a :class:`SoftphoneLeg`, which rings until the agent answers in ``/agent``. Signalling is plain
HTTP (``telephony/api.py``): the console POSTs its SDP offer with every ICE candidate already gathered
(non-trickle) and gets our answer back; nothing else is negotiated later. Audio: the caller's 20 ms frames of
8 kHz PCM go out on an aiortc audio track (aiortc's Opus encoder resamples them to 48 kHz with PyAV); the
browser's Opus is decoded by aiortc and resampled here to 8 kHz 16-bit mono frames for the caller.

Production runs FreeSWITCH instead, and agents' phones (hardware or a SIP softphone) register with it; this
module is only for ``GASDESK_HOTLINE_IN_APP=true`` with ``GASDESK_SIP_ENABLED=true`` (one process: the
console's HTTP requests must reach the process that carries the call).

No STUN/TURN servers are used (``iceServers=[]``): the browser and the server must reach each other's host
candidates (same host or LAN). Browsers that hide host addresses behind mDNS ``.local`` names need them
resolved; aioice resolves them by multicast DNS, which needs a network that carries multicast.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections import deque
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from sqlalchemy import select

from gasdesk.db import transaction
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.telephony import service
from gasdesk.telephony.media import BridgeTarget, CallInfo, MediaSession
from gasdesk.telephony.models import Call, CallEventKind
from gasdesk.telephony.sip.session import BridgeUnavailable

__all__ = ["AgentRefused", "CallerTrack", "SoftphoneLeg", "WebRtcBridgeProvider", "access_leg", "installed_provider"]

log = logging.getLogger(__name__)

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)
MAX_QUEUED_FRAMES = 10  # 200 ms each way: beyond that the oldest audio is dropped rather than delayed
MAX_SDP_CHARS = 24_000
_TIME_BASE = fractions.Fraction(1, RATE)

_installed: WebRtcBridgeProvider | None = None


def installed_provider() -> WebRtcBridgeProvider | None:
    """The provider of the hotline running in this process (None: no embedded softphone here)."""
    return _installed


def access_leg(user_id: int, call_id: int) -> SoftphoneLeg:
    """The softphone leg of ``call_id`` offered to ``user_id``: NotFound for any other user, and when this
    process runs no embedded softphone."""
    if _installed is None:
        raise NotFound("软电话未启用（需在同一进程内运行热线）", code="softphone_off")
    return _installed.leg_for(call_id, user_id)


class AgentRefused(Exception):
    """The agent pressed 拒接, or their softphone could not connect, before answering."""


class CallerTrack(MediaStreamTrack):
    """The caller's audio towards the browser: one 20 ms frame of 8 kHz mono PCM per ``recv``, paced in real
    time (silence when the caller's frames are late)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._start: float | None = None
        self._pts = 0
        self.sent = 0

    def push(self, pcm: bytes) -> None:
        """One frame of the caller's audio."""
        if len(pcm) == FRAME_BYTES:
            self._frames.append(pcm)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            wait = self._start + self._pts / RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
        pcm = self._frames.popleft() if self._frames else SILENCE
        frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self._pts += FRAME_SAMPLES
        self.sent += 1
        return frame


class SoftphoneLeg:
    """One agent's leg of one call (a :class:`~gasdesk.telephony.sip.session.BridgePeer`): rings until the
    agent answers with an SDP offer, then carries audio both ways until either side ends it."""

    def __init__(self, provider: WebRtcBridgeProvider, *, call_id: int, conversation_id: int | None,
                 agent_id: int, media: MediaSession | None) -> None:
        loop = asyncio.get_running_loop()
        self.provider = provider
        self.call_id, self.conversation_id, self.agent_id, self.media = call_id, conversation_id, agent_id, media
        self.pc: RTCPeerConnection | None = None
        self.caller_track = CallerTrack()
        self._agent_frames: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._answered: asyncio.Future[None] = loop.create_future()
        self._ended: asyncio.Future[str] = loop.create_future()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.transferred = False
        self.held = False
        self.frames_from_caller = 0  # the caller's RTP frames passed on to the browser
        self.frames_from_agent = 0  # 8 kHz frames made from the browser's audio
        self._closed = False

    # --- BridgePeer
    async def wait_answered(self) -> None:
        """Return once the browser's connection is up (raise AgentRefused if it was refused or failed)."""
        await asyncio.shield(self._answered)

    def feed_caller(self, pcm: bytes) -> None:
        """One frame of the caller's audio, towards the browser."""
        if not self._closed and not self.transferred:
            self.caller_track.push(pcm)
            self.frames_from_caller += 1

    def agent_frame(self) -> bytes | None:
        """The next frame of the agent's audio, or None."""
        return self._agent_frames.popleft() if self._agent_frames else None

    async def wait_ended(self) -> str:
        """Who ended the leg: "agent" (hung up in the console, or the browser went away) or "system"."""
        return await asyncio.shield(self._ended)

    async def close(self) -> None:
        """End the leg from the call's side (the caller hung up, the call was re-bridged): idempotent."""
        await self._finish("system", "ended")

    # --- what the console does (telephony/api.py)
    @property
    def answered(self) -> bool:
        return self._answered.done() and self._answered.exception() is None

    async def answer(self, offer_sdp: str) -> str:
        """Take the browser's SDP offer (ICE candidates included) and return our answer."""
        if self._closed or self._answered.done() or self.pc is not None:
            raise Conflict("该来电已接听或已结束", code="call_not_ringing")
        if len(offer_sdp) > MAX_SDP_CHARS or "m=audio" not in offer_sdp:
            raise InvalidInput("无效的音频会话描述（SDP）", code="invalid_sdp")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._read_agent(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and not self._answered.done():
                self._answered.set_result(None)
            elif state in ("failed", "closed") and self.pc is pc and not self.transferred:
                await self._finish("agent", "connection_" + state)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            pc.addTrack(self.caller_track)
            await pc.setLocalDescription(await pc.createAnswer())  # gathers our candidates first
        except (ValueError, KeyError, IndexError) as exc:  # aiortc's errors for SDP it cannot use
            self.pc = None
            await pc.close()
            raise InvalidInput("无效的音频会话描述（SDP）", code="invalid_sdp") from exc
        return pc.localDescription.sdp

    async def reject(self) -> None:
        """拒接: the controller treats it like a ring-out (the agent is set away, the call re-queued)."""
        if self._answered.done() or self._closed:
            raise Conflict("该来电已接听或已结束", code="call_not_ringing")
        await self._finish("agent", "rejected")

    async def hangup(self) -> None:
        """挂断 from the console."""
        await self._finish("agent", "hangup")

    async def hold(self, on: bool) -> None:
        """保持 / 恢复: the caller hears the hold audio and is not heard."""
        if self.media is None or not self.answered:
            raise Conflict("通话未接通，无法保持", code="call_not_connected")
        await self.media.hold(on)
        self.held = on

    async def detach(self) -> None:
        """The agent transferred the call: their browser leg ends, the call stays up (the controller puts the
        caller on hold and bridges the next agent, which closes this leg)."""
        self.transferred = True
        self.provider.forget(self)
        await self._close_media()

    # --- plumbing
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_agent(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        pending = bytearray()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):  # type: ignore[arg-type]
                pending += out.to_ndarray().tobytes()
            while len(pending) >= FRAME_BYTES:
                self._agent_frames.append(bytes(pending[:FRAME_BYTES]))
                del pending[:FRAME_BYTES]
                self.frames_from_agent += 1

    async def _close_media(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.caller_track.stop()
        pc, self.pc = self.pc, None
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()
        self._agent_frames.clear()

    async def _finish(self, by: str, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        ringing = not self._answered.done()
        if ringing:
            self._answered.set_exception(AgentRefused(reason))
            self._answered.exception()  # marked retrieved: nobody may be waiting any more
        if not self._ended.done():
            self._ended.set_result(by)
        self.provider.forget(self)
        await self._close_media()
        # Recorded in a task of its own: a route's request (reject, hangup) still holds its database session,
        # and with a one-connection pool (SQLite) a transaction opened here would wait for it forever.
        self.provider.spawn(self._record_end(ringing, reason))

    async def _record_end(self, ringing: bool, reason: str) -> None:
        try:
            async with transaction() as session:
                if ringing:
                    service.do_withdraw_offer(session, self.call_id, self.agent_id, reason)
                else:  # what the leg carried, for support: frames of 20 ms each way
                    service.add_event(session, self.call_id, CallEventKind.agent_leg_ended, agent_id=self.agent_id,
                                      reason=reason, caller_frames=self.frames_from_caller,
                                      sent_to_browser=self.caller_track.sent, agent_frames=self.frames_from_agent)
        except Exception:  # noqa: BLE001 - the console's bar also drops at the call's end
            log.exception("softphone: could not record the end of the leg of call %s", self.call_id)


class WebRtcBridgeProvider:
    """Bridges embedded SIP callers to agents' browser softphones. ``attach`` the call's media session
    (start_hotline does it for every call) so that 保持 reaches it."""

    def __init__(self) -> None:
        self.legs: dict[int, SoftphoneLeg] = {}  # call id -> the leg ringing or talking now
        self._media: dict[str, MediaSession] = {}  # "backend:call_ref" -> the call's media
        self._tasks: set[asyncio.Task[Any]] = set()

    def install(self) -> None:
        """Make this the process's provider (the API routes find legs through it)."""
        global _installed
        _installed = self

    def uninstall(self) -> None:
        global _installed
        if _installed is self:
            _installed = None

    @staticmethod
    def _key(info: CallInfo) -> str:
        return f"{info.backend}:{info.call_ref}"

    def attach(self, media: MediaSession) -> None:
        """The call's media session, for hold."""
        self._media[self._key(media.info)] = media

    def release(self, media: MediaSession) -> None:
        self._media.pop(self._key(media.info), None)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in a task the provider keeps (and waits for when it closes)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, leg: SoftphoneLeg) -> None:
        if self.legs.get(leg.call_id) is leg:
            del self.legs[leg.call_id]

    def leg_for(self, call_id: int, user_id: int) -> SoftphoneLeg:
        """The leg of ``call_id`` offered to ``user_id``; NotFound for anyone else (nothing is revealed)."""
        leg = self.legs.get(call_id)
        if leg is None or leg.agent_id != user_id:
            raise NotFound("没有找到转给您的这通来电", code="call_not_found")
        return leg

    async def __call__(self, target: BridgeTarget, info: CallInfo) -> SoftphoneLeg:
        """Ring ``target``'s softphone for the call ``info`` describes."""
        async with transaction() as session:
            call = await session.scalar(select(Call).where(Call.backend == info.backend[:12],
                                                           Call.call_ref == info.call_ref[:128])
                                        .order_by(Call.id.desc()).limit(1))
            if call is None:
                raise BridgeUnavailable("no call row for this call")
            leg = SoftphoneLeg(self, call_id=call.id, conversation_id=call.conversation_id,
                               agent_id=target.agent_id, media=self._media.get(self._key(info)))
            await service.do_offer_call(session, call, target.agent_id)
        previous = self.legs.get(leg.call_id)
        if previous is not None and not previous.transferred:
            previous.transferred = True  # replaced by the session's bridge, which closes it
        self.legs[leg.call_id] = leg
        return leg

    async def close(self) -> None:
        """End every leg (the hotline is stopping)."""
        for leg in list(self.legs.values()):
            await leg.close()
        await self.drain()
        self.uninstall()

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for the records of ended legs to be written."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
