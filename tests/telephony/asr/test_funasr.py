"""The FunASR adapter against a fake FunASR runtime server on 127.0.0.1 (``fake_funasr.py``) that checks the
framing (JSON start message, binary PCM, end flag) and answers a fixed transcription for the audio it received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gasdesk.config import get_settings
from gasdesk.telephony.asr import (
    AsrUnavailable,
    DtmfOnlyRecognizer,
    FunAsrRecognizer,
    recognizer_from_settings,
)
from tests.telephony.asr.fake_funasr import SPEECH, FakeFunAsr, running_funasr

pytestmark = pytest.mark.no_database

@pytest.fixture
async def funasr() -> AsyncIterator[tuple[FakeFunAsr, str]]:
    async with running_funasr() as running:
        yield running


async def _stream(data: bytes, piece: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


async def test_offline_mode_streams_pcm_and_returns_the_final_text(funasr: tuple[FakeFunAsr, str]) -> None:
    fake, url = funasr
    recognizer = FunAsrRecognizer(url, timeout_s=3)
    assert await recognizer.transcribe(_stream(SPEECH, 333), sample_rate=8000) == "我家厨房有燃气味"
    assert fake.errors == [] and fake.ended and bytes(fake.audio) == SPEECH
    start = fake.starts[0]
    assert (start["mode"], start["wav_format"], start["audio_fs"], start["is_speaking"]) == ("offline", "pcm", 8000, True)
    assert set(fake.chunks[:-1]) == {960}  # 60 ms frames at 8 kHz, whatever pieces the caller's audio came in


async def test_2pass_mode_joins_the_corrected_sentences(funasr: tuple[FakeFunAsr, str]) -> None:
    fake, url = funasr
    text = await FunAsrRecognizer(url, mode="2pass", timeout_s=3).transcribe(SPEECH)
    assert text == "我家厨房有燃气味" and fake.starts[0]["mode"] == "2pass" and fake.errors == []


async def test_audio_beyond_the_cap_is_not_sent(funasr: tuple[FakeFunAsr, str]) -> None:
    fake, url = funasr
    text = await FunAsrRecognizer(url, timeout_s=3, max_audio_s=0.5).transcribe(SPEECH + SPEECH)
    assert len(fake.audio) == 8000 and fake.ended and text == ""  # half a second, then the end flag


@pytest.mark.parametrize("behaviour", ["silent", "huge", "binary"])
async def test_a_misbehaving_server_gives_a_typed_error_in_bounded_time(funasr: tuple[FakeFunAsr, str],
                                                                       behaviour: str) -> None:
    fake, url = funasr
    fake.behaviour = behaviour
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AsrUnavailable):
        await FunAsrRecognizer(url, timeout_s=0.5).transcribe(SPEECH)
    assert loop.time() - started < 2


async def test_an_unreachable_server_is_a_typed_error() -> None:
    with pytest.raises(AsrUnavailable):
        await FunAsrRecognizer("ws://127.0.0.1:9", timeout_s=1).transcribe(SPEECH)
    with pytest.raises(ValueError):
        FunAsrRecognizer("http://127.0.0.1:10095")


async def test_dtmf_only_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    recognizer = recognizer_from_settings(get_settings())
    assert isinstance(recognizer, DtmfOnlyRecognizer) and recognizer.enabled is False
    assert await recognizer.transcribe(SPEECH) == ""
    configured = recognizer_from_settings(get_settings().model_copy(update={"asr_url": "ws://127.0.0.1:10095"}))
    assert isinstance(configured, FunAsrRecognizer) and configured.enabled
