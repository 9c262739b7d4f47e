"""Prompts for the phone: offline Mandarin TTS (espeak-ng + sox), a disk cache, and admins' recorded prompts.

Every prompt the caller hears is an 8 kHz mono 16-bit PCM WAV (what G.711 carries; FreeSWITCH and the
embedded SIP agent both play it without resampling). ``EspeakSynthesizer`` makes one from text with Debian's
``espeak-ng`` — voice ``cmn-latn-pinyin`` reads 汉字 with their tones, plain ``cmn`` reads them toneless —
and ``sox`` converts it. ``PromptRenderer.render`` is what the call controller calls: an admin's recording
for the prompt's key if there is one, else the cached synthesis, else a new one made in a worker thread so
the event loop (and every other call) never waits on a subprocess.

Recorded prompts live as files under ``<var_dir>/prompts/uploaded/`` with a small JSON index (no tables:
they are media, like the TTS cache), written atomically.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import utcnow
from gasdesk.config import Settings
from gasdesk.errors import InvalidInput, NotFound, PayloadTooLarge, ServiceUnavailable
from gasdesk.telephony.media import Prompt

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
PROMPT_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Control characters (and espeak's own SSML markers are off by default): keep text plain.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"\s+")


class TtsUnavailable(ServiceUnavailable):
    """A program the TTS needs (espeak-ng, sox) is not installed, or it failed or hung."""

    code = "tts_unavailable"


class Synthesizer(Protocol):
    """Text → an 8 kHz mono 16-bit WAV. Blocking (runs in a worker thread); another engine plugs in here."""

    @property
    def cache_tag(self) -> str:
        """Everything besides the text that changes the audio (engine, version, voice, rate): part of the
        cache key, so a new voice or engine version never serves old files."""
        ...

    def synthesize(self, text: str, out: Path) -> None:
        """Write the audio for ``text`` to ``out`` (an 8 kHz mono 16-bit PCM WAV)."""
        ...


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise TtsUnavailable(f"语音合成需要 {program}，但未安装（Debian：apt-get install espeak-ng sox）",
                             code="tts_missing_program")
    return path


def _run(argv: list[str], *, input_bytes: bytes | None, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """Run a program (never through a shell) and raise TtsUnavailable if it fails or runs too long."""
    try:
        return subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout_s, check=True)
    except subprocess.TimeoutExpired as exc:
        raise TtsUnavailable(f"{Path(argv[0]).name} 超时", code="tts_timeout") from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()[:200]
        raise TtsUnavailable(f"{Path(argv[0]).name} 失败：{detail}", code="tts_failed") from exc


def convert_to_telephony(src: Path, out: Path, *, sox: str, timeout_s: float, src_type: str | None = None,
                         normalize: bool = False) -> None:
    """Convert any audio sox reads to 8 kHz mono 16-bit signed PCM WAV (optionally normalised to -3 dBFS)."""
    argv = [sox, "-q"]
    if src_type:
        argv += ["-t", src_type]
    argv += [str(src), "-t", "wav", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)]
    if normalize:
        argv += ["norm", "-3"]
    _run(argv, input_bytes=None, timeout_s=timeout_s)


class EspeakSynthesizer:
    """espeak-ng writes a 22 kHz WAV, sox resamples it to 8 kHz mono 16-bit PCM and normalises the level."""

    engine = "espeak-ng"

    def __init__(self, *, voice: str = "cmn-latn-pinyin", rate_wpm: int = 150, timeout_s: float = 20.0,
                 espeak: str = "espeak-ng", sox: str = "sox") -> None:
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.timeout_s = timeout_s
        self._espeak_name = espeak
        self._sox_name = sox
        self._version: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EspeakSynthesizer:
        return cls(voice=settings.tts_voice, rate_wpm=settings.tts_rate_wpm, timeout_s=settings.tts_timeout_s)

    def version(self) -> str:
        """espeak-ng's version line (raises TtsUnavailable if espeak-ng is missing)."""
        if self._version is None:
            espeak = _require(self._espeak_name)
            try:
                out = subprocess.run([espeak, "--version"], capture_output=True, timeout=self.timeout_s, check=True)
            except (subprocess.SubprocessError, OSError) as exc:
                raise TtsUnavailable("无法运行 espeak-ng", code="tts_failed") from exc
            self._version = out.stdout.decode("utf-8", "replace").split("Data at")[0].strip()
        return self._version

    @property
    def cache_tag(self) -> str:
        return f"{self.engine}|{self.version()}|{self.voice}|{self.rate_wpm}|{SAMPLE_RATE}"

    def synthesize(self, text: str, out: Path) -> None:
        espeak = _require(self._espeak_name)
        sox = _require(self._sox_name)
        raw = out.with_name(f".{out.name}.{secrets.token_hex(4)}.espeak.wav")
        try:
            # Text on stdin (-b 1: UTF-8), so nothing in it can be read as an option.
            # The WAV comes back on stdout and is written here: with ``-w FILE`` espeak-ng now and then exited 0
            # without a file (twice in a full parallel test run, never alone, with nothing on stderr).
            argv = [espeak, "-v", self.voice, "-s", str(self.rate_wpm), "-b", "1", "--stdout"]
            for attempt in (1, 2):
                done = _run(argv, input_bytes=text.encode("utf-8"), timeout_s=self.timeout_s)
                if done.stdout[:4] == b"RIFF":
                    raw.write_bytes(done.stdout)
                    break
                log.warning("espeak-ng gave no audio (attempt %s)", attempt)
            else:
                detail = done.stderr.decode("utf-8", "replace").strip()[:200]
                raise TtsUnavailable(f"espeak-ng 没有产生音频：{detail or '无输出'}", code="tts_failed")
            convert_to_telephony(raw, out, sox=sox, timeout_s=self.timeout_s, src_type="wav", normalize=True)
        finally:
            raw.unlink(missing_ok=True)


def clean_text(text: str, max_chars: int) -> str:
    """The text as it is spoken: control characters dropped, whitespace collapsed; empty or too long refused."""
    cleaned = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    if not cleaned:
        raise InvalidInput("提示语不能为空", code="invalid_prompt_text")
    if len(cleaned) > max_chars:
        raise InvalidInput(f"提示语最多 {max_chars} 个字", code="prompt_text_too_long")
    return cleaned


def wav_duration(path: Path) -> float:
    """Length of a PCM WAV file in seconds (0.0 if it cannot be read as one)."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else 0.0
    except (wave.Error, EOFError, OSError):
        return 0.0


def _atomic_place(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)  # atomic on one filesystem: readers see the old file or the whole new one


class PromptCache:
    """Synthesised prompts on disk, one file per sha256(text, engine tag)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, text: str, cache_tag: str) -> Path:
        digest = hashlib.sha256(f"{cache_tag}\n{text}".encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.wav"


@dataclass(frozen=True)
class UploadedPrompt:
    key: str
    path: Path
    sha256: str
    duration_s: float
    bytes: int
    uploaded_at: str


class UploadedPrompts:
    """Admins' recorded prompts by key: ``<folder>/<key>.wav`` plus ``index.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def index_path(self) -> Path:
        return self.folder / "index.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Several processes may upload at once: one writer of the index at a time (an OS lock file).
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_index(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("uploaded prompt index unreadable; treating as empty")
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> UploadedPrompt | None:
        """The recorded prompt for ``key``, if one was uploaded and its file is still there."""
        entry = self._read_index().get(key)
        if not isinstance(entry, dict):
            return None
        path = self.folder / f"{key}.wav"
        if not PROMPT_KEY.match(key) or not path.is_file():
            return None
        return UploadedPrompt(key=key, path=path, sha256=str(entry.get("sha256", "")),
                              duration_s=float(entry.get("duration_s", 0.0)), bytes=int(entry.get("bytes", 0)),
                              uploaded_at=str(entry.get("uploaded_at", "")))

    def keys(self) -> list[str]:
        return sorted(k for k in self._read_index() if self.get(k) is not None)

    def store(self, key: str, converted: Path, *, original_name: str) -> UploadedPrompt:
        """Move an already converted WAV into place as ``key`` and record it in the index (atomically)."""
        data = converted.read_bytes()
        entry = {"sha256": hashlib.sha256(data).hexdigest(), "duration_s": round(wav_duration(converted), 3),
                 "bytes": len(data), "uploaded_at": utcnow().isoformat(), "original_name": original_name[:200]}
        with self._locked():
            final = self.folder / f"{key}.wav"
            _atomic_place(converted, final)
            index = self._read_index()
            index[key] = entry
            tmp = self.index_path.with_name(f".index.{secrets.token_hex(4)}.json")
            tmp.write_text(json.dumps(index, ensure_ascii=False, indent=1, sort_keys=True))
            _atomic_place(tmp, self.index_path)
        found = self.get(key)
        assert found is not None
        return found

    def remove(self, key: str) -> UploadedPrompt | None:
        """Drop the recording of ``key`` (index entry and file); what was removed, or None if there was none."""
        found = self.get(key)
        if found is None:
            return None
        with self._locked():
            index = self._read_index()
            index.pop(key, None)
            tmp = self.index_path.with_name(f".index.{secrets.token_hex(4)}.json")
            tmp.write_text(json.dumps(index, ensure_ascii=False, indent=1, sort_keys=True))
            _atomic_place(tmp, self.index_path)
            (self.folder / f"{key}.wav").unlink(missing_ok=True)
        return found


def prompts_folder(settings: Settings) -> Path:
    return settings.var_dir / "prompts"


def _sniff_audio_type(head: bytes) -> str | None:
    """'wav' or 'mp3' from the file's first bytes; None for anything else (sox is told the type, never guesses)."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def check_prompt_upload(key: str, data: bytes, settings: Settings) -> str:
    """Validate an upload before any program sees it: the key's form, the size cap, WAV or MP3 by content.
    Returns the audio type."""
    if not PROMPT_KEY.match(key):
        raise InvalidInput("提示音编号只能包含小写字母、数字、点、横线和下划线（1–64 位）", code="invalid_prompt_key")
    if len(data) > settings.tts_upload_max_bytes:
        raise PayloadTooLarge(f"录音文件不能超过 {settings.tts_upload_max_bytes // 1024} KB", code="prompt_too_large")
    kind = _sniff_audio_type(data[:16])
    if kind is None:
        raise InvalidInput("只能上传 WAV 或 MP3 录音", code="invalid_prompt_audio")
    return kind


async def do_upload_prompt(session: AsyncSession, actor: Actor, settings: Settings, *, key: str,
                           filename: str, data: bytes) -> UploadedPrompt:
    """Store an admin's recording as prompt ``key`` (replacing any earlier one), converted to 8 kHz mono
    16-bit; audited. Raises InvalidInput for files sox cannot read or that are empty or too long."""
    kind = check_prompt_upload(key, data, settings)
    sox = _require("sox")
    store = uploaded_prompts(settings)
    store.folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    src = store.folder / f".upload.{token}.src.{kind}"
    out = store.folder / f".upload.{token}.wav"
    try:
        src.write_bytes(data)
        try:
            await asyncio.to_thread(convert_to_telephony, src, out, sox=sox, timeout_s=settings.tts_timeout_s,
                                    src_type=kind)
        except TtsUnavailable as exc:
            if exc.code == "tts_failed":
                raise InvalidInput("无法识别的录音文件（需要 WAV 或 MP3）", code="invalid_prompt_audio") from exc
            raise
        duration = wav_duration(out)
        if duration <= 0.05:
            raise InvalidInput("录音为空", code="invalid_prompt_audio")
        if duration > settings.tts_upload_max_seconds:
            raise InvalidInput(f"录音不能超过 {int(settings.tts_upload_max_seconds)} 秒", code="prompt_too_long")
        before = store.get(key)
        stored = await asyncio.to_thread(store.store, key, out, original_name=filename)
    finally:
        src.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    record_audit(session, actor, "prompt.upload", "prompt", key,
                 before={"sha256": before.sha256} if before else None,
                 after={"sha256": stored.sha256, "duration_s": stored.duration_s, "bytes": stored.bytes})
    return stored


def uploaded_prompts(settings: Settings) -> UploadedPrompts:
    """The store of admins' recorded prompts under the settings' var dir."""
    return UploadedPrompts(prompts_folder(settings) / "uploaded")


async def do_delete_prompt(session: AsyncSession, actor: Actor, settings: Settings, *, key: str) -> UploadedPrompt:
    """Remove the recording uploaded for prompt ``key``: calls hear the synthesised text again; audited.
    Raises NotFound when no recording is uploaded for the key."""
    if not PROMPT_KEY.match(key):
        raise InvalidInput("提示音编号只能包含小写字母、数字、点、横线和下划线（1–64 位）", code="invalid_prompt_key")
    removed = await asyncio.to_thread(uploaded_prompts(settings).remove, key)
    if removed is None:
        raise NotFound("该提示音没有上传录音", code="prompt_upload_not_found")
    record_audit(session, actor, "prompt.delete", "prompt", key,
                 before={"sha256": removed.sha256, "duration_s": removed.duration_s, "bytes": removed.bytes})
    return removed


class PromptRenderer:
    """What the call controller calls: ``await render(text, key=...)`` → a playable :class:`Prompt`."""

    def __init__(self, synthesizer: Synthesizer, *, folder: Path, max_chars: int = 400) -> None:
        self.synthesizer = synthesizer
        self.cache = PromptCache(folder / "cache")
        self.uploads = UploadedPrompts(folder / "uploaded")
        self.max_chars = max_chars
        self._inflight: dict[Path, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> PromptRenderer:
        return cls(EspeakSynthesizer.from_settings(settings), folder=prompts_folder(settings),
                   max_chars=settings.tts_max_chars)

    async def render(self, text: str, *, key: str | None = None) -> Prompt:
        """The prompt to play for ``text``: the recording uploaded for ``key`` if any, else TTS (cached)."""
        if key is not None:
            uploaded = await asyncio.to_thread(self.uploads.get, key)
            if uploaded is not None:
                return Prompt(path=uploaded.path, text=text)
        cleaned = clean_text(text, self.max_chars)
        tag = await asyncio.to_thread(lambda: self.synthesizer.cache_tag)
        path = self.cache.path_for(cleaned, tag)
        if path.is_file():
            return Prompt(path=path, text=text)
        # One synthesis per text at a time in this process; other processes may race, which is harmless
        # because each writes its own temporary file and renames it into place.
        lock = self._inflight.setdefault(path, asyncio.Lock())
        try:
            async with lock:
                if not path.is_file():
                    await asyncio.to_thread(self._synthesize_into, cleaned, path)
        finally:
            if not lock.locked():
                self._inflight.pop(path, None)
        return Prompt(path=path, text=text)

    def _synthesize_into(self, text: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.wav")
        try:
            self.synthesizer.synthesize(text, tmp)
            if wav_duration(tmp) <= 0:
                raise TtsUnavailable("语音合成没有产生音频", code="tts_failed")
            _atomic_place(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
