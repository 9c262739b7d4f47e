"""Fixtures for the dialogue tests: the NLU bot engine, a frozen clock and a chat starter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from dialogue_kit import T0, Chat

from gasdesk import clock
from gasdesk.config import reset_settings_cache
from tests.factories import bot_conversation


@pytest.fixture(autouse=True)
def nlu_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    reset_settings_cache()
    clock.set_now(T0)


@pytest.fixture
def new_chat(session) -> Callable[..., Awaitable[Chat]]:
    async def make(customer_id: int | None = None) -> Chat:
        return Chat(session, await bot_conversation(session, customer_id=customer_id))

    return make
