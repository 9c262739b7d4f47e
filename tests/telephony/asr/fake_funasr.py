"""A fake FunASR runtime server on 127.0.0.1 (shared by the adapter's tests and the hotline's speech-menu tests):
it checks the framing (JSON start message, binary PCM, end flag) and answers the transcription it was given
for the exact audio it received ('' for any other audio)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

SPEECH = bytes(range(256)) * 64  # 16 KiB of "PCM" (1.024 s at 8 kHz)
TRANSCRIPTS = {hashlib.sha256(SPEECH).hexdigest(): "我家厨房有燃气味"}


def audio_key(pcm: bytes) -> str:
    """How the fake recognises audio it was told the transcription of."""
    return hashlib.sha256(pcm).hexdigest()


@dataclass
class FakeFunAsr:
    """Behaves like funasr-wss-server: refuses bad framing, answers once the end flag arrives."""

    behaviour: str = "normal"  # normal | silent | huge | binary
    starts: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    errors: list[str] = field(default_factory=list)
    ended: bool = False
    transcripts: dict[str, str] = field(default_factory=lambda: dict(TRANSCRIPTS))  # audio_key → text
    connections: int = 0

    def says(self, pcm: bytes, text: str) -> None:
        """Transcribe ``pcm`` as ``text``."""
        self.transcripts[audio_key(pcm)] = text

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.audio = bytearray()
        self.chunks = []
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
        text = self.transcripts.get(audio_key(bytes(self.audio)), "")
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


@asynccontextmanager
async def running_funasr() -> AsyncIterator[tuple[FakeFunAsr, str]]:
    """A fake FunASR server on a free loopback port: (the fake, its ws:// URL)."""
    fake = FakeFunAsr()
    async with serve(fake.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield fake, f"ws://127.0.0.1:{port}"
