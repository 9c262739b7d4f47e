"""SipMediaSession over loopback: bridge through a BridgeProvider to an in-process audio peer, hold,
recording, prompt validation and digit buffering."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gasdesk.telephony.media import AgentDidNotAnswer, BridgeTarget, CallHungUp, CallInfo, Prompt
from gasdesk.telephony.sip.session import BridgeUnavailable, SipMediaSession, load_prompt
from gasdesk.telephony.sip.uac import SipCaller, rms, tone_frames
from tests.telephony.sip.conftest import dominant_hz, write_tone

pytestmark = pytest.mark.no_database


class AgentPeer:
    """A second in-process audio peer standing in for the agent's softphone: it speaks a 700 Hz tone and
    keeps what the caller says."""

    def __init__(self, answer_after: float = 0.1, refuse: bool = False) -> None:
        self.answer_after = answer_after
        self.refuse = refuse
        self.heard = bytearray()
        self.frames_out = 0
        self._voice = tone_frames(700, 7000)
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.closed = False

    async def wait_answered(self) -> None:
        await asyncio.sleep(self.answer_after)
        if self.refuse:
            raise RuntimeError("拒接")

    def feed_caller(self, pcm: bytes) -> None:
        self.heard += pcm

    def agent_frame(self) -> bytes | None:
        self.frames_out += 1
        return self._voice()

    async def wait_ended(self) -> str:
        return await asyncio.shield(self._ended)

    def agent_hangs_up(self) -> None:
        self._ended.set_result("agent")

    async def close(self) -> None:
        self.closed = True


async def test_bridge_to_an_in_process_peer_carries_audio_both_ways_and_agent_hangs_up(
        make_endpoint, tmp_path: Path) -> None:
    peers: list[AgentPeer] = []
    targets: list[tuple[BridgeTarget, CallInfo]] = []
    result: dict[str, Any] = {}

    async def provider(target: BridgeTarget, info: CallInfo) -> AgentPeer:
        targets.append((target, info))
        peer = AgentPeer()
        peers.append(peer)
        return peer

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        await session.start_recording(tmp_path / "bridged.wav")
        await session.bridge(BridgeTarget(agent_id=7, endpoint="webrtc:abc"))
        result["bridged"] = True
        result["by"] = await session.wait_hangup()
        result["rec"] = await session.stop_recording()

    ep = await make_endpoint(handler, bridge_provider=provider)
    caller = SipCaller(("127.0.0.1", ep.port), source=tone_frames(440, 6000))
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.sleep(0.8)
        assert result.get("bridged")
        peer = peers[0]
        assert targets[0][0].agent_id == 7 and targets[0][1].caller == "13800000000"
        assert len(peer.heard) > 320 * 20 and abs(dominant_hz(bytes(peer.heard)) - 440) < 20  # caller → agent
        tail = bytes(caller.received_audio[-320 * 20:])
        assert abs(dominant_hz(tail) - 700) < 20  # agent → caller
        peer.agent_hangs_up()
        await asyncio.wait_for(caller.bye_received.wait(), 2)
        await asyncio.sleep(0.05)
        assert result["by"] == "agent" and peer.closed
        with wave.open(str(result["rec"].path), "rb") as w:
            stereo = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        assert abs(dominant_hz(stereo[0::2][-4000:].tobytes()) - 440) < 20
        assert abs(dominant_hz(stereo[1::2][-4000:].tobytes()) - 700) < 20
    finally:
        caller.close()


async def test_hold_plays_hold_audio_and_stops_feeding_the_agent(make_endpoint, tmp_path: Path) -> None:
    hold = Prompt(path=write_tone(tmp_path / "hold.wav", freq=300.0, seconds=0.5))
    peers: list[AgentPeer] = []
    stage: dict[str, asyncio.Event] = {k: asyncio.Event() for k in ("held", "resume", "resumed")}

    async def provider(target: BridgeTarget, info: CallInfo) -> AgentPeer:
        peers.append(AgentPeer(0.0))
        return peers[-1]

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        await session.bridge(BridgeTarget(agent_id=1, endpoint="x"))
        await session.hold(True)
        stage["held"].set()
        await stage["resume"].wait()
        await session.hold(False)
        stage["resumed"].set()
        await session.wait_hangup()

    ep = await make_endpoint(handler, bridge_provider=provider, hold_prompt=hold)
    caller = SipCaller(("127.0.0.1", ep.port), source=tone_frames(440))
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.wait_for(stage["held"].wait(), 2)
        await asyncio.sleep(0.1)
        fed = len(peers[0].heard)
        caller.received_audio.clear()
        await asyncio.sleep(0.6)
        assert len(peers[0].heard) == fed  # the agent hears nothing while the caller is held
        assert abs(dominant_hz(bytes(caller.received_audio)) - 300) < 20  # the caller hears hold audio
        stage["resume"].set()
        await asyncio.wait_for(stage["resumed"].wait(), 1)
        await asyncio.sleep(0.3)
        assert len(peers[0].heard) > fed
        await caller.hangup()
    finally:
        caller.close()


async def test_caller_hangs_up_while_bridge_is_ringing(make_endpoint) -> None:
    peers: list[AgentPeer] = []
    result: dict[str, str] = {}

    async def provider(target: BridgeTarget, info: CallInfo) -> AgentPeer:
        peers.append(AgentPeer(answer_after=5))
        return peers[-1]

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        try:
            await session.bridge(BridgeTarget(agent_id=1, endpoint="x"))
        except CallHungUp as exc:
            result["by"] = exc.by

    ep = await make_endpoint(handler, bridge_provider=provider)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.sleep(0.2)
        await caller.hangup()
        await asyncio.sleep(0.1)
        assert result == {"by": "caller"} and peers[0].closed
    finally:
        caller.close()


async def test_refused_and_rung_out_legs_are_closed_and_a_second_bridge_replaces_the_first(make_endpoint) -> None:
    """拒接 raises AgentDidNotAnswer; the controller's ring timeout (a cancellation) closes the ringing leg; a
    transfer bridges again, and the first agent's leg ending then does not end the call."""
    peers: list[AgentPeer] = []
    plan = [AgentPeer(0.05, refuse=True), AgentPeer(answer_after=5), AgentPeer(0.0), AgentPeer(0.0)]
    result: dict[str, Any] = {}
    bridged_again = asyncio.Event()

    async def provider(target: BridgeTarget, info: CallInfo) -> AgentPeer:
        peers.append(plan[len(peers)])
        return peers[-1]

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        try:
            await session.bridge(BridgeTarget(agent_id=1, endpoint="x"))
        except AgentDidNotAnswer:
            result["refused"] = True
        try:
            await asyncio.wait_for(session.bridge(BridgeTarget(agent_id=2, endpoint="x")), 0.2)
        except TimeoutError:
            result["rang_out"] = True
        await session.bridge(BridgeTarget(agent_id=3, endpoint="x"))
        await session.bridge(BridgeTarget(agent_id=4, endpoint="x"))  # transferred
        bridged_again.set()
        result["by"] = await session.wait_hangup()

    ep = await make_endpoint(handler, bridge_provider=provider)
    caller = SipCaller(("127.0.0.1", ep.port), source=tone_frames(440))
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.wait_for(bridged_again.wait(), 3)
        assert result == {"refused": True, "rang_out": True}
        assert peers[0].closed and peers[1].closed and peers[2].closed and not peers[3].closed
        peers[2].agent_hangs_up()  # the first agent's browser goes away after the transfer: no effect
        await asyncio.sleep(0.2)
        assert not caller.bye_received.is_set()
        heard = len(peers[3].heard)
        await asyncio.sleep(0.2)
        assert len(peers[3].heard) > heard  # the caller now reaches the second agent
        peers[3].agent_hangs_up()
        await asyncio.wait_for(caller.bye_received.wait(), 2)
        await asyncio.sleep(0.05)
        assert result["by"] == "agent"
    finally:
        caller.close()


async def test_play_without_barge_in_keeps_digits_and_bridge_needs_a_provider(make_endpoint, prompt: Prompt,
                                                                               tmp_path: Path) -> None:
    result: dict[str, Any] = {}
    short = Prompt(path=write_tone(tmp_path / "short.wav", seconds=0.4))

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        result["play"] = await session.play(short, barge_in=False)
        result["collected"] = await session.collect_digits(prompt, max_digits=4, timeout_s=0.5)
        result["timeout"] = await session.collect_digits(None, timeout_s=0.2)
        try:
            await session.bridge(BridgeTarget(agent_id=1, endpoint="x"))
        except BridgeUnavailable:
            result["bridge"] = "unavailable"
        await session.hangup()

    ep = await make_endpoint(handler)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.sleep(0.1)
        caller.send_rfc4733("4")  # during the no-barge-in prompt: kept
        await asyncio.sleep(0.05)
        caller.send_rfc4733("2")
        await asyncio.wait_for(caller.bye_received.wait(), 3)
        # The buffered digits cut the second prompt at once and are collected; then the 0.5 s timeout ends it.
        assert result == {"play": "", "collected": "42", "timeout": "", "bridge": "unavailable"}
        assert rms(bytes(caller.received_audio)) > 1000
    finally:
        caller.close()


def test_prompt_must_be_8k_mono_16bit(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00" * 640)
    with pytest.raises(ValueError, match="8 kHz mono"):
        load_prompt(path)
    ok = write_tone(tmp_path / "ok.wav", seconds=0.1)
    assert len(load_prompt(ok)) == 1600 and load_prompt(ok) is load_prompt(ok)  # cached

