"""End to end with a real SIP client: Debian's baresip on loopback calls the embedded endpoint."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gasdesk.telephony.media import CallHungUp, Prompt
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.uac import rms
from tests.telephony.sip.conftest import Baresip, dominant_hz, write_tone

pytestmark = pytest.mark.no_database


async def test_baresip_hears_prompt_presses_1_and_is_hung_up(make_endpoint, baresip: Baresip, tmp_path: Path) -> None:
    prompt = Prompt(path=write_tone(tmp_path / "menu.wav", freq=1000.0, seconds=3.0))
    result: dict[str, Any] = {}
    done = asyncio.Event()

    async def handler(session: SipMediaSession) -> None:
        try:
            result["caller"] = session.info.caller
            await session.answer()
            await session.start_recording(tmp_path / "rec" / "call.wav")
            result["barge"] = await session.play(prompt, barge_in=True)
            result["digits"] = await session.collect_digits(None, max_digits=1, timeout_s=3)
            result["recording"] = await session.stop_recording()
            result["rx_packets"] = session.stream.stats.packets
            await session.hangup()
        finally:
            done.set()

    ep = await make_endpoint(handler)
    assert (await baresip.command("dial", f"sip:96777@127.0.0.1:{ep.port}"))["ok"]
    await baresip.wait_event("CALL_ESTABLISHED", 5)
    await asyncio.sleep(1.0)  # let a second of the prompt play
    assert (await baresip.command("sndcode", "1"))["ok"]
    await asyncio.wait_for(done.wait(), 5)
    await baresip.wait_event("CALL_CLOSED", 3)

    assert result["barge"] == "1"  # the digit cut the 3 s prompt short
    assert result["digits"] == "1"
    assert result["caller"] == "caller"
    assert result["rx_packets"] > 25  # baresip's audio (a 440 Hz sine) reached us
    heard = baresip.heard()
    assert len(heard) >= 8000 * 2 * 0.8  # at least 0.8 s decoded by baresip
    assert rms(heard) > 1000
    assert abs(dominant_hz(heard) - 1000.0) < 20  # and it is our prompt's tone
    rec = result["recording"]
    assert rec.duration_s > 0.8
    with wave.open(str(rec.path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        stereo = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    caller, us = stereo[0::2].tobytes(), stereo[1::2].tobytes()
    assert abs(dominant_hz(caller) - 440.0) < 20
    assert abs(dominant_hz(us) - 1000.0) < 20
    assert ep.active_calls == 0


async def test_baresip_hangs_up_mid_prompt(make_endpoint, baresip: Baresip, tmp_path: Path) -> None:
    prompt = Prompt(path=write_tone(tmp_path / "long.wav", seconds=8.0))
    result: dict[str, Any] = {}
    done = asyncio.Event()

    async def handler(session: SipMediaSession) -> None:
        try:
            await session.answer()
            await session.start_recording(tmp_path / "cut.wav")
            await session.play(prompt, barge_in=False)
            result["outcome"] = "played to the end"
        except CallHungUp as exc:
            result["outcome"] = "hung up"
            result["by"] = exc.by
            result["wait_hangup"] = await asyncio.wait_for(session.wait_hangup(), 1)
            rec = await session.stop_recording()  # the hang-up closed it; its description is still there
            result["recorded_s"] = round(rec.duration_s, 1) if rec else None
        finally:
            done.set()

    ep = await make_endpoint(handler)
    assert (await baresip.command("dial", f"sip:96777@127.0.0.1:{ep.port}"))["ok"]
    await baresip.wait_event("CALL_ESTABLISHED", 5)
    await asyncio.sleep(0.5)
    assert (await baresip.command("hangup"))["ok"]
    await asyncio.wait_for(done.wait(), 3)
    recorded = result.pop("recorded_s")
    assert result == {"outcome": "hung up", "by": "caller", "wait_hangup": "caller"}
    assert recorded is not None and 0.3 <= recorded <= 1.5
    assert ep.active_calls == 0
    assert not ep.ports._used  # the RTP port went back to the pool


async def test_baresip_offering_only_g722_gets_488(make_endpoint, tmp_path: Path) -> None:
    calls: list[SipMediaSession] = []

    async def handler(session: SipMediaSession) -> None:
        calls.append(session)

    ep = await make_endpoint(handler)
    client = Baresip(tmp_path / "g722", codec_modules=("g722",))
    client.home.mkdir()
    await client.start()
    try:
        assert (await client.command("dial", f"sip:96777@127.0.0.1:{ep.port}"))["ok"]
        closed = await client.wait_event("CALL_CLOSED", 5)
        assert "488" in closed.get("param", "")
        assert calls == [] and ep.counters["rejected_488"] == 1
    finally:
        await client.stop()
