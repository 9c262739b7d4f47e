"""Prompts by the real espeak-ng and sox: 8 kHz mono 16-bit audio with sound in it, cached on disk, and
admins' recordings validated, converted and preferred over TTS."""

from __future__ import annotations

import array
import asyncio
import math
import shutil
import subprocess
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.config import get_settings
from gasdesk.errors import InvalidInput, PayloadTooLarge
from gasdesk.telephony.tts import (
    EspeakSynthesizer,
    PromptRenderer,
    TtsUnavailable,
    do_upload_prompt,
    wav_duration,
)

ADMIN = Actor(None, "admin", "web")


def _pcm_stats(path: Path) -> tuple[int, int, int, float, float]:
    """(rate, channels, sample width, seconds, RMS level of the samples)."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width, frames = wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()
        samples = array.array("h", wav.readframes(frames))
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
    return rate, channels, width, frames / rate, rms


def _tone(path: Path, *, seconds: float = 0.5, rate: int = 44100, channels: int = 2, kind: str = "wav") -> Path:
    subprocess.run(["sox", "-q", "-n", "-r", str(rate), "-c", str(channels), "-t", kind, str(path),
                    "synth", str(seconds), "sine", "440"], check=True, timeout=20)
    return path


def _renderer(tmp_path: Path) -> PromptRenderer:
    return PromptRenderer(EspeakSynthesizer(), folder=tmp_path / "prompts", max_chars=100)


async def test_mandarin_text_becomes_8khz_mono_16bit_audio_with_energy_and_is_cached(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path)
    first = await renderer.render("您好，这里是燃气客服热线。燃气泄漏请按1。")
    rate, channels, width, seconds, rms = _pcm_stats(first.path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert 1.0 < seconds < 15.0
    assert rms > 500  # speech, not silence
    assert first.path.is_relative_to(tmp_path / "prompts" / "cache")
    assert first.text == "您好，这里是燃气客服热线。燃气泄漏请按1。"

    made_at = first.path.stat().st_mtime_ns
    again = await renderer.render("您好，这里是燃气客服热线。燃气泄漏请按1。")
    assert again.path == first.path and again.path.stat().st_mtime_ns == made_at  # served from the cache
    # A fresh renderer (another process) finds the same file; a different voice or text does not.
    assert (await _renderer(tmp_path).render("您好，这里是燃气客服热线。燃气泄漏请按1。")).path == first.path
    other_voice = PromptRenderer(EspeakSynthesizer(voice="cmn"), folder=tmp_path / "prompts")
    assert EspeakSynthesizer(voice="cmn").cache_tag != EspeakSynthesizer().cache_tag
    assert other_voice.cache.path_for("x", EspeakSynthesizer(voice="cmn").cache_tag) != renderer.cache.path_for(
        "x", EspeakSynthesizer().cache_tag)
    assert [p.name for p in first.path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left


async def test_concurrent_renders_of_one_text_synthesise_once(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path)
    calls: list[str] = []
    synth = renderer.synthesizer
    original = synth.synthesize

    def counting(text: str, out: Path) -> None:
        calls.append(text)
        original(text, out)

    synth.synthesize = counting  # type: ignore[method-assign]
    prompts = await asyncio.gather(*(renderer.render("请稍候") for _ in range(4)))
    assert len({p.path for p in prompts}) == 1 and calls == ["请稍候"]


async def test_text_is_cleaned_and_capped(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path)
    with pytest.raises(InvalidInput):
        await renderer.render("  \n\t ")
    with pytest.raises(InvalidInput) as too_long:
        await renderer.render("燃" * 101)
    assert too_long.value.code == "prompt_text_too_long"
    # Text that looks like an option goes to espeak-ng on stdin, so it is spoken, not obeyed.
    prompt = await renderer.render("--version -w /tmp/x")
    assert _pcm_stats(prompt.path)[3] > 0.3


async def test_missing_programs_give_a_typed_error(tmp_path: Path) -> None:
    renderer = PromptRenderer(EspeakSynthesizer(espeak="espeak-ng-not-installed"), folder=tmp_path / "p")
    with pytest.raises(TtsUnavailable) as missing:
        await renderer.render("您好")
    assert missing.value.code == "tts_missing_program" and missing.value.status_code == 503


async def test_uploaded_wav_and_mp3_are_converted_and_preferred_over_tts(tmp_path: Path, session) -> None:
    settings = get_settings()
    wav = _tone(tmp_path / "greeting.wav", seconds=0.8)
    stored = await do_upload_prompt(session, ADMIN, settings, key="welcome", filename="greeting.wav",
                                    data=wav.read_bytes())
    rate, channels, width, seconds, rms = _pcm_stats(stored.path)
    assert (rate, channels, width) == (8000, 1, 2) and abs(seconds - 0.8) < 0.05 and rms > 1000
    assert stored.path == settings.var_dir / "prompts" / "uploaded" / "welcome.wav"

    renderer = PromptRenderer.from_settings(settings)
    assert (await renderer.render("欢迎致电", key="welcome")).path == stored.path
    tts = await renderer.render("欢迎致电", key="no_such_upload")
    assert tts.path.is_relative_to(settings.var_dir / "prompts" / "cache")

    mp3 = _tone(tmp_path / "menu.mp3", seconds=1.0, rate=22050, channels=1, kind="mp3")
    replaced = await do_upload_prompt(session, ADMIN, settings, key="welcome", filename="menu.mp3",
                                      data=mp3.read_bytes())
    assert _pcm_stats(replaced.path)[:3] == (8000, 1, 2) and replaced.sha256 != stored.sha256
    assert renderer.uploads.keys() == ["welcome"]

    await session.flush()
    audits = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "prompt.upload")))
    assert [a.entity_id for a in audits] == ["welcome", "welcome"]
    assert audits[1].changes["before"] == {"sha256": stored.sha256}


@pytest.mark.parametrize(("key", "data", "code"), [
    ("Bad Key", b"RIFF\x00\x00\x00\x00WAVEfmt ", "invalid_prompt_key"),
    ("../escape", b"RIFF\x00\x00\x00\x00WAVEfmt ", "invalid_prompt_key"),
    ("menu", b"%PDF-1.4 not audio at all", "invalid_prompt_audio"),
    ("menu", b"RIFF\x24\x00\x00\x00WAVEgarbage that is no wav", "invalid_prompt_audio"),
    ("menu", b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 64, "invalid_prompt_audio"),
])
async def test_bad_uploads_are_refused(tmp_path: Path, session, key: str, data: bytes, code: str) -> None:
    settings = get_settings()
    with pytest.raises(InvalidInput) as refused:
        await do_upload_prompt(session, ADMIN, settings, key=key, filename="x", data=data)
    assert refused.value.code == code
    uploaded = settings.var_dir / "prompts" / "uploaded"
    assert not uploaded.exists() or [p.name for p in uploaded.iterdir() if p.suffix in {".wav", ".mp3"}] == []


async def test_oversized_and_overlong_uploads_are_refused(tmp_path: Path, session) -> None:
    settings = get_settings().model_copy(update={"tts_upload_max_bytes": 200_000, "tts_upload_max_seconds": 1.0})
    big = b"RIFF\x00\x00\x00\x00WAVE" + b"\x00" * 200_001
    with pytest.raises(PayloadTooLarge):
        await do_upload_prompt(session, ADMIN, settings, key="big", filename="big.wav", data=big)
    long = _tone(tmp_path / "long.wav", seconds=2.0, rate=8000, channels=1)
    with pytest.raises(InvalidInput) as too_long:
        await do_upload_prompt(session, ADMIN, settings, key="long", filename="long.wav", data=long.read_bytes())
    assert too_long.value.code == "prompt_too_long"


def test_an_espeak_that_writes_nothing_is_retried_once_then_reported(tmp_path) -> None:
    # A stand-in espeak-ng (a shell script found by path) that exits 0 without audio on its first run: the
    # second run's audio is used. One that never writes gives a clear error, not sox's "can't open input file".
    flaky = tmp_path / "espeak-flaky"
    marker = tmp_path / "ran-once"
    real = shutil.which("espeak-ng")
    flaky.write_text(f'#!/bin/sh\nif [ ! -e "{marker}" ]; then touch "{marker}"; cat >/dev/null; exit 0; fi\n'
                     f'exec "{real}" "$@"\n')
    flaky.chmod(0o755)
    out = tmp_path / "ok.wav"
    EspeakSynthesizer(espeak=str(flaky)).synthesize("您好", out)
    assert wav_duration(out) > 0.2
    silent = tmp_path / "espeak-silent"
    silent.write_text("#!/bin/sh\ncat >/dev/null\necho 'no voice data' >&2\nexit 0\n")
    silent.chmod(0o755)
    with pytest.raises(TtsUnavailable, match="espeak-ng 没有产生音频：no voice data"):
        EspeakSynthesizer(espeak=str(silent)).synthesize("您好", tmp_path / "none.wav")
