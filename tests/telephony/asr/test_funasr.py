"""The FunASR adapter against a fake FunASR runtime server on 127.0.0.1 that checks the framing (JSON start
message, binary PCM, end flag) and answers a fixed transcription for the audio it received."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from gasdesk.config import get_settings
from gasdesk.telephony.asr import (
    AsrUnavailable,
    DtmfOnlyRecognizer,
    FunAsrRecognizer,
    recognizer_from_settings,
)

pytestmark = pytest.mark.no_database

SPEECH = bytes(range(256)) * 64  # 16 KiB of "PCM" (1.024 s at 8 kHz)
TRANSCRIPTS = {hashlib.sha256(SPEECH).hexdigest(): "我家厨房有燃气味"}


@dataclass
class FakeFunAsr:
    """Behaves like funasr-wss-server: refuses bad framing, answers once the end flag arrives."""

    behaviour: str = "normal"  # normal | silent | huge | binary
    starts: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    errors: list[str] = field(default_factory=list)
    ended: bool = False

    async def handle(self, ws: ServerConnection) -> None:
        first = await ws.recv()
        if not isinstance(first, str):
            self.errors.append("audio before the start message")
            await ws.close(1008, "start message first")
            return
        start = json.loads(first)
        self.starts.append(start)
        required = {"mode", "wav_name", "wav_format", "audio_fs", "is_speaking", "chunk_size"}
        if not required <= start.keys() or start["wav_format"] != "pcm" or start["is_speaking"] is not True:
            self.errors.append(f"bad start message: {start}")
            await ws.close(1008, "bad start message")
            return
        async for message in ws:
            if isinstance(message, bytes):
                self.chunks.append(len(message))
                self.audio += message
                if start["mode"] == "2pass" and len(self.chunks) == 3:
                    await ws.send(json.dumps({"mode": "2pass-online", "text": "我家", "wav_name": start["wav_name"],
                                              "is_final": False}))
                continue
            if json.loads(message) != {"is_speaking": False}:
                self.errors.append(f"unexpected text frame {message}")
                await ws.close(1008, "unexpected")
                return
            self.ended = True
            break
        if self.behaviour == "silent":
            await ws.wait_closed()  # never answers; the client gives up and closes
            return
        if self.behaviour == "huge":
            await ws.send(json.dumps({"mode": "offline", "text": "燃" * 100_000, "is_final": True}))
            return
        if self.behaviour == "binary":
            await ws.send(b"\x00\x01")
            return
        text = TRANSCRIPTS.get(hashlib.sha256(bytes(self.audio)).hexdigest(), "")
        if start["mode"] == "2pass":
            await ws.send(json.dumps({"mode": "2pass-offline", "text": text[:4], "wav_name": start["wav_name"],
                                      "is_final": False}))
            await ws.send(json.dumps({"mode": "2pass-offline", "text": text[4:], "wav_name": start["wav_name"],
                                      "is_final": True}))
        else:
            # FunASR's offline server does not always set is_final; the offline result is the answer anyway.
            await ws.send(json.dumps({"mode": "offline", "text": text, "wav_name": start["wav_name"],
                                      "is_final": False}))
        await ws.wait_closed()


@pytest.fixture
async def funasr() -> AsyncIterator[tuple[FakeFunAsr, str]]:
    fake = FakeFunAsr()
    async with serve(fake.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield fake, f"ws://127.0.0.1:{port}"


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
