"""SipMediaSession.listen over loopback: the in-repo SIP client speaks (a tone) and falls silent, or presses a
key, or says nothing; the energy detector decides where the answer ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gasdesk.telephony.media import Prompt, SpeechDetector, speech_in
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.uac import SipCaller, rms, tone_frames
from tests.telephony.sip.conftest import dominant_hz, write_tone

pytestmark = pytest.mark.no_database

SILENCE = b"\x00\x00" * 160


def _speaks(after_frames: int, frames: int) -> Callable[[], bytes]:
    """Silence, then a 440 Hz tone for ``frames`` 20 ms frames, then silence again."""
    tone, n = tone_frames(440, 6000), [0]

    def next_frame() -> bytes:
        n[0] += 1
        return tone() if after_frames < n[0] <= after_frames + frames else SILENCE

    return next_frame


async def _listen_call(make_endpoint, tmp_path: Path, source: Callable[[], bytes], *,
                       during: Callable[[SipCaller], Any] | None = None, **listen: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    done = asyncio.Event()
    prompt = Prompt(path=write_tone(tmp_path / "ask.wav", freq=600, seconds=0.1, amplitude=3000))

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        loop = asyncio.get_running_loop()
        started = loop.time()
        result["said"] = await session.listen(prompt, **listen)
        result["took"] = loop.time() - started
        result["digit"] = await session.collect_digits(None, max_digits=1, timeout_s=0.3, terminators="")
        done.set()
        await session.wait_hangup()

    ep = await make_endpoint(handler)
    caller = SipCaller(("127.0.0.1", ep.port), source=source)
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        if during is not None:
            await during(caller)
        await asyncio.wait_for(done.wait(), 5)
        await caller.hangup()
    finally:
        caller.close()
    return result


async def test_listen_captures_the_speech_and_ends_on_silence(make_endpoint, tmp_path: Path) -> None:
    result = await _listen_call(make_endpoint, tmp_path, _speaks(15, 40), max_s=4, silence_s=0.5)
    said = result["said"]
    assert 0.7 <= len(said) / 16000 <= 1.4, len(said) / 16000  # 0.8 s of tone, a little before and after
    assert abs(dominant_hz(said) - 440) < 20 and rms(said) > 2000
    assert result["took"] < 2.5 and result["digit"] == ""  # ended by the silence, long before max_s


async def test_a_key_ends_listen_and_stays_buffered(make_endpoint, tmp_path: Path) -> None:
    async def press(caller: SipCaller) -> None:
        await asyncio.sleep(0.5)
        caller.send_rfc4733("5")

    result = await _listen_call(make_endpoint, tmp_path, tone_frames(440, 6000), during=press, max_s=4)
    assert result["said"] == b"" and result["digit"] == "5" and result["took"] < 2


async def test_nothing_said_is_empty_at_max_s(make_endpoint, tmp_path: Path) -> None:
    result = await _listen_call(make_endpoint, tmp_path, lambda: SILENCE, max_s=1.0)
    assert result["said"] == b"" and 0.9 <= result["took"] < 2


def test_the_detector_ignores_line_noise_and_clicks() -> None:
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 80, 8000 * 2)).astype("<i2").tobytes()  # 2 s of a hissy line
    click = (np.ones(160) * 9000).astype("<i2").tobytes()  # one loud 20 ms frame
    assert speech_in(noise) == b"" and speech_in(noise[:16000] + click + noise[:16000]) == b""
    detector = SpeechDetector(0.5)
    tone = b"".join(tone_frames(300, 4000)() for _ in range(25))
    assert detector.feed(noise[:8000] + tone + noise[:16000]) and detector.started
