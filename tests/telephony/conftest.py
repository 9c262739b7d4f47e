"""Fixtures shared by the call-logic tests (the controller, the speech menu)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gasdesk.config import reset_settings_cache
from tests.telephony.telephony_kit import SilentRenderer


@pytest.fixture
def quick_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiting call checks the queue every 20 ms and gives up after 2 s (instead of 1 s and 10 minutes)."""
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_POLL_S", "0.02")
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_WAIT_LIMIT_S", "2")
    reset_settings_cache()


@pytest.fixture
def prompts(tmp_path: Path) -> SilentRenderer:
    return SilentRenderer(tmp_path / "prompts")
