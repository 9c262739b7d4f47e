"""The IVR's part of issue 13: the holiday notice after answering, and at peak hours a callback that keeps the
caller's place (driven by the caller double through the real controller, engine, ACD and domains)."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from telephony_kit import FakeCaller, SilentRenderer, call_rows

from gasdesk import clock
from gasdesk.callbacks.models import CallbackRequest
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import service as conversations
from gasdesk.db import commit
from gasdesk.routing import service as acd
from gasdesk.telephony import controller
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT, script_problems
from tests.factories import desk_agent, queued_conversation, reload_conversation

pytestmark = pytest.mark.usefixtures("quick_queue")
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _call(caller: FakeCaller, prompts: SilentRenderer) -> None:
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)


async def test_callers_hear_the_holiday_notice_only_inside_its_window(session, prompts) -> None:
    clock.set_now(datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI))
    caller = FakeCaller(inputs=[])
    await _call(caller, prompts)
    assert caller.heard[0].startswith("温馨提示：国庆期间营业厅 10月1日至7日休息，10月10日（周六）调休正常上班")
    clock.set_now(datetime(2026, 11, 3, 10, 0, tzinfo=SHANGHAI))
    quiet = FakeCaller(inputs=[])
    await _call(quiet, prompts)
    assert not any("温馨提示" in text for text in quiet.heard)


async def test_below_the_threshold_no_peak_offer_is_made(session, factory, prompts, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_PEAK_WAIT_THRESHOLD_S", "600")
    reset_settings_cache()
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session, channel="voice")  # the agent's call
    await queued_conversation(session, channel="voice")  # one waiting: the next waits about 8 minutes
    caller = FakeCaller(inputs=["0"], caller="13900000021")
    await _call(caller, prompts)
    assert not any("预约回拨" in text for text in caller.heard)
    assert await session.scalar(select(CallbackRequest)) is None


async def test_pressing_2_books_a_callback_that_keeps_the_callers_place(session, factory, prompts) -> None:
    agent = await desk_agent(factory, max_concurrent=1)
    busy = await queued_conversation(session, channel="voice")  # the agent's call
    ahead = await queued_conversation(session, channel="voice")  # one caller waiting: about 8 min (peak: > 300 s)
    caller = FakeCaller(inputs=["0", "2"], caller="13900000022")
    await _call(caller, prompts)
    assert any("按2 预约回拨" in text for text in caller.heard)
    assert any(text.startswith("已为您预约回拨，排队位置已为您保留，您前面还有1位") for text in caller.heard)
    rows = await call_rows(caller.info.call_ref)
    assert rows.call.state == "ended" and rows.call.hangup_cause == "ivr_done"
    conversation = rows.conversation
    assert conversation is not None and conversation.state == "queued", "the hang-up keeps the place"
    callback = await session.scalar(select(CallbackRequest).where(CallbackRequest.conversation_id == conversation.id))
    assert callback is not None and (callback.phone, callback.channel, callback.status) == (
        "13900000022", "voice", "waiting")
    spots = await acd.queue_spots(session, conversation.skill_group_id)
    assert spots[conversation.id].position == 2
    # the agent finishes their call: the caller ahead comes first, then the callback is offered like a call
    await conversations.do_close(session, busy, by="agent", user=agent)
    await commit(session)
    assert (await reload_conversation(ahead.id)).agent_id == agent.id
    assert (await reload_conversation(conversation.id)).state == "queued"
    await session.refresh(ahead)
    await conversations.do_close(session, ahead, by="agent", user=agent)
    await commit(session)
    offered = await reload_conversation(conversation.id)
    assert (offered.state, offered.agent_id) == ("assigned", agent.id)


async def test_a_caller_without_a_mobile_number_is_not_booked(session, factory, prompts) -> None:
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session, channel="voice")
    await queued_conversation(session, channel="voice")
    caller = FakeCaller(inputs=["0", "2"], caller="02423416600")
    await _call(caller, prompts)
    assert not any(text.startswith("已为您预约回拨") for text in caller.heard)
    assert await session.scalar(select(CallbackRequest)) is None


def test_the_callback_digit_must_differ_from_the_sms_offer_digit() -> None:
    body = copy.deepcopy(DEFAULT_SCRIPT)
    assert script_problems(body) == []
    body["nodes"]["to_agent"]["callback_digit"] = "1"
    assert "节点“to_agent”的预约回拨按键与短信分流按键相同" in script_problems(body)
    body["nodes"]["to_agent"]["callback_digit"] = ""  # no callback offer: allowed
    assert script_problems(body) == []
