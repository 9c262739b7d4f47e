"""Caller speech → text, behind one interface. DTMF is the default input: with no recogniser configured the
IVR asks for keys only. Where the utility runs a FunASR runtime server, :class:`FunAsrRecognizer` streams the
caller's audio to it over FunASR's WebSocket protocol and returns the final transcription for the bot.

FunASR's protocol (runtime/docs/websocket_protocol.md in modelscope/FunASR): a JSON text frame first
(``mode`` offline/online/2pass, ``wav_name``, ``wav_format`` "pcm", ``audio_fs`` for PCM not at 16 kHz,
``is_speaking`` true, ``chunk_size``, optional ``hotwords`` and ``itn``), then the raw PCM as binary frames,
then ``{"is_speaking": false}``; the server answers JSON messages with ``text``, ``mode`` (``offline``,
``2pass-online`` partials, ``2pass-offline`` corrected sentences) and ``is_final``. Nothing here downloads
or loads a model: the server does the recognition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from gasdesk.config import Settings
from gasdesk.errors import ServiceUnavailable

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # one result message from the server
MAX_TEXT_CHARS = 2000
CHUNK_MS = 60  # FunASR's own client sends 60 ms per frame at its default chunk settings


class AsrUnavailable(ServiceUnavailable):
    """The recogniser could not be reached, answered too late, or broke the protocol."""

    code = "asr_unavailable"


class Recognizer(Protocol):
    """Feed 8 kHz (or 16 kHz) mono 16-bit little-endian PCM, get the final text."""

    @property
    def enabled(self) -> bool:
        """False when speech is not recognised at all (the IVR then asks for keys only)."""
        ...

    async def transcribe(self, audio: AsyncIterable[bytes] | bytes, *, sample_rate: int = 8000) -> str:
        """The final transcription of ``audio`` ('' when nothing was recognised)."""
        ...


class DtmfOnlyRecognizer:
    """The default: no speech recognition; callers answer with keys."""

    enabled = False

    async def transcribe(self, audio: AsyncIterable[bytes] | bytes, *, sample_rate: int = 8000) -> str:
        return ""


async def _as_chunks(audio: AsyncIterable[bytes] | bytes) -> AsyncIterator[bytes]:
    if isinstance(audio, bytes | bytearray | memoryview):
        yield bytes(audio)
        return
    async for chunk in audio:
        yield chunk


class FunAsrRecognizer:
    """A FunASR runtime server (``funasr-wss-server`` / ``funasr-wss-server-2pass``) over WebSocket."""

    enabled = True

    def __init__(self, url: str, *, mode: str = "offline", timeout_s: float = 10.0, max_audio_s: float = 30.0,
                 chunk_size: tuple[int, int, int] = (5, 10, 5), hotwords: dict[str, int] | None = None,
                 itn: bool = True, wav_name: str = "gasdesk") -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("the FunASR URL must start with ws:// or wss://")
        if mode not in ("offline", "2pass"):
            raise ValueError("mode must be offline or 2pass")
        self.url = url
        self.mode = mode
        self.timeout_s = timeout_s
        self.max_audio_s = max_audio_s
        self.chunk_size = chunk_size
        self.hotwords = hotwords or {}
        self.itn = itn
        self.wav_name = wav_name

    @classmethod
    def from_settings(cls, settings: Settings) -> FunAsrRecognizer:
        return cls(settings.asr_url, mode=settings.asr_mode, timeout_s=settings.asr_timeout_s,
                   max_audio_s=settings.asr_max_audio_s)

    def _start_message(self, sample_rate: int) -> str:
        message: dict[str, Any] = {
            "mode": self.mode, "wav_name": self.wav_name, "wav_format": "pcm", "audio_fs": sample_rate,
            "is_speaking": True, "chunk_size": list(self.chunk_size), "chunk_interval": 10, "itn": self.itn,
        }
        if self.hotwords:
            message["hotwords"] = json.dumps(self.hotwords, ensure_ascii=False)
        return json.dumps(message, ensure_ascii=False)

    async def transcribe(self, audio: AsyncIterable[bytes] | bytes, *, sample_rate: int = 8000) -> str:
        """Stream ``audio`` (capped at max_audio_s; the rest is not sent) and return the final text. The whole
        exchange is bounded by timeout_s; raises AsrUnavailable on any failure."""
        if sample_rate not in (8000, 16000):
            raise ValueError("FunASR takes 8 or 16 kHz PCM")
        try:
            async with asyncio.timeout(self.timeout_s):
                async with connect(self.url, max_size=MAX_MESSAGE_BYTES, open_timeout=self.timeout_s,
                                   close_timeout=1, ping_interval=None, compression=None) as ws:
                    return await self._exchange(ws, audio, sample_rate)
        except TimeoutError as exc:
            raise AsrUnavailable("语音识别超时", code="asr_timeout") from exc
        except (OSError, WebSocketException) as exc:
            raise AsrUnavailable(f"语音识别服务不可用（{exc.__class__.__name__}）") from exc

    async def _exchange(self, ws: ClientConnection, audio: AsyncIterable[bytes] | bytes, sample_rate: int) -> str:
        await ws.send(self._start_message(sample_rate))
        results = asyncio.create_task(self._results(ws))
        try:
            budget = int(self.max_audio_s * sample_rate) * 2
            step = sample_rate * 2 * CHUNK_MS // 1000
            pending = b""
            async for chunk in _as_chunks(audio):
                if results.done():
                    break  # the server already answered (or failed): stop feeding it
                pending += chunk[: max(0, budget)]
                budget -= len(chunk)
                while len(pending) >= step:
                    await ws.send(pending[:step])
                    pending = pending[step:]
                if budget <= 0:
                    log.info("caller audio over %ss; the rest is not sent to FunASR", self.max_audio_s)
                    break
            if pending and not results.done():
                await ws.send(pending)
            if not results.done():
                await ws.send(json.dumps({"is_speaking": False}))
            return await results
        finally:
            if not results.done():
                results.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await results

    async def _results(self, ws: ClientConnection) -> str:
        """Read result messages until the final one. offline: the first ``offline`` result; 2pass: the
        ``2pass-offline`` sentences joined, up to one marked is_final (or the server closing)."""
        sentences: list[str] = []
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    raise AsrUnavailable("语音识别服务返回了二进制数据", code="asr_protocol")
                try:
                    message = json.loads(raw)
                except ValueError as exc:
                    raise AsrUnavailable("语音识别服务返回了无效的 JSON", code="asr_protocol") from exc
                if not isinstance(message, dict) or not isinstance(message.get("text", ""), str):
                    raise AsrUnavailable("语音识别服务返回了无效的结果", code="asr_protocol")
                mode, text = str(message.get("mode", "")), message.get("text", "")
                if mode in ("offline", "2pass-offline"):
                    sentences.append(text)
                if mode == "offline" or message.get("is_final") is True:
                    break
        except WebSocketException as exc:
            if not sentences:
                raise AsrUnavailable("语音识别连接中断", code="asr_protocol") from exc
        return "".join(sentences).strip()[:MAX_TEXT_CHARS]


def recognizer_from_settings(settings: Settings) -> Recognizer:
    """FunASR when ``asr_url`` is set, else DTMF only."""
    if settings.asr_url.strip():
        return FunAsrRecognizer.from_settings(settings)
    return DtmfOnlyRecognizer()
