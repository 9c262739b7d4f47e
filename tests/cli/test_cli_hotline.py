"""``gasdesk hotline``: runs the enabled back-ends; with none enabled it refuses with a message."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from gasdesk.cli import app
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.telephony.freeswitch.fake import CallerScript, FakeFreeswitch
from gasdesk.telephony.runtime import serve_hotline


def test_hotline_without_a_back_end_exits_with_a_message() -> None:
    result = CliRunner().invoke(app, ["hotline"])
    assert result.exit_code == 1
    assert "GASDESK_FREESWITCH_ENABLED" in result.output and "GASDESK_SIP_ENABLED" in result.output


async def test_serve_hotline_answers_calls_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_FREESWITCH_ENABLED", "true")
    monkeypatch.setenv("GASDESK_FREESWITCH_LISTEN_PORT", "0")
    reset_settings_cache()
    stop = asyncio.Event()
    started: list[int] = []

    async def on_start(port: int) -> None:
        started.append(port)

    serving = asyncio.create_task(serve_hotline(get_settings(), stop=stop, on_start=on_start))
    for _ in range(100):
        if started:
            break
        await asyncio.sleep(0.02)
    fake = FakeFreeswitch()
    try:
        call = await fake.call("127.0.0.1", started[0], CallerScript(hangup_at="play_and_get_digits#1"), wait_s=5)
        assert call.commands[:4] == ["connect", "myevents", "linger 10", "sendmsg execute answer"]
    finally:
        await fake.close()
        stop.set()
        await asyncio.wait_for(serving, 5)
    assert serving.done() and serving.exception() is None
