"""The bot reads messages in context: a follow-up keeps the topic, a second request in one message is offered
as the next step, and a refused request is not acted on. Driven through the real pipeline."""

from __future__ import annotations

import pytest

from gasdesk.branches.service import do_save_branch
from gasdesk.db import commit
from tests.factories import desk_agent, wo_actor


@pytest.fixture(autouse=True)
async def branch_and_busy_agent(session, factory) -> None:
    await desk_agent(factory, presence="busy")  # a hand-off would queue: visible in the state
    await do_save_branch(session, wo_actor(), branch=None, name="朝阳营业厅", district="朝阳区",
                         address="朝阳区建设路88号", phone="024-88880001", weekly_hours={"1": "08:30-17:00"})
    await commit(session)


async def test_a_second_request_is_offered_and_taken_up(new_chat) -> None:
    chat = await new_chat()
    text = await chat.say("帮我查下燃气余额，另外问一下营业厅几点开门")
    assert "请输入您的户号" in text and await chat.flow() == "balance"
    assert "您还提到了「营业厅地址和时间」" in text
    assert any("接着办：营业厅地址和时间" in label for label in chat.buttons())
    text = await chat.press("接着办")
    assert await chat.flow() == "branch" and "哪个区" in text
    turns = await chat.turns()
    assert turns[0]["intent"] == "balance_query"


async def test_a_follow_up_keeps_the_topic_of_the_last_request(new_chat) -> None:
    chat = await new_chat()
    await chat.say("营业厅在哪")
    await chat.press("朝阳区")
    assert await chat.flow() is None  # the branch answer is done
    text = await chat.say("那和平区的呢")
    assert (await chat.turns())[-1]["intent"] == "branch_info"
    assert "营业厅" in text


async def test_refusing_a_person_does_not_hand_off(new_chat) -> None:
    chat = await new_chat()
    await chat.say("查一下余额")
    await chat.say("不用转人工了")
    stored = await chat.stored()
    assert (stored.state, stored.handoff_reason) == ("bot", None)
    assert await chat.flow() == "balance"  # still asking for the account number
