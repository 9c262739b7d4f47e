"""A clear new request in the middle of a flow is answered, never repeated at or handed off because of the flow:
the flow is paused, the new request answered, and the paused flow offered once (继续 asks its question again).
Answers to the flow's question (buttons, slots, yes/no, a self-check's findings, a complaint's details) stay in it."""

from __future__ import annotations

import pytest
from dialogue_kit import tickets

from gasdesk.branches.service import do_save_branch
from gasdesk.db import commit
from tests.factories import desk_agent, wo_actor

SELF_CHECK_PROMPT = "检查完成后请点击下方按钮"  # what the old bot repeated at every other request
IC_BATTERY_GUIDE = "【IC卡表 · 换电池/电量低】"


@pytest.fixture(autouse=True)
async def branch_and_busy_agent(session, factory) -> None:
    await desk_agent(factory, presence="busy")  # a hand-off would queue: visible in the state
    await do_save_branch(session, wo_actor(), branch=None, name="朝阳营业厅", district="朝阳区",
                         address="朝阳区建设路88号", phone="024-88880001", weekly_hours={"1": "08:30-17:00"})
    await commit(session)


async def _never_handed_off(chat) -> None:
    stored = await chat.stored()
    assert (stored.state, stored.handoff_reason, stored.bot_misses) == ("bot", None, 0)


async def test_the_reported_sequence_answers_every_request_and_comes_back(session, new_chat) -> None:
    chat = await new_chat()
    await chat.say("家里没气了")
    text = await chat.press("跳过")
    assert "请先按以下步骤自查" in text
    text = await chat.say("营业厅几点开门")
    assert "哪个区" in text and SELF_CHECK_PROMPT not in text and await chat.flow() == "branch"
    text = await chat.say("查一下余额")
    assert "请输入您的户号" in text and SELF_CHECK_PROMPT not in text and await chat.flow() == "balance"
    await _never_handed_off(chat)
    turns = await chat.turns()
    assert [t.get("paused") for t in turns[-2:]] == ["no_gas", "branch"]
    assert [t["intent"] for t in turns[-2:]] == ["branch_info", "balance_query"]

    # The balance check is dropped; the paused flows are offered one at a time, newest first.
    text = await chat.say("算了")
    assert "已取消" in text and "刚才的「查询营业厅」还没有办完" in text
    text = await chat.press("继续")
    assert "我们继续「查询营业厅」" in text and "哪个区" in text and await chat.flow() == "branch"
    text = await chat.press("朝阳区")
    assert "朝阳营业厅" in text and "刚才的「无气报修」还没有办完" in text
    text = await chat.press("继续")
    assert "我们继续「无气报修」" in text and "请先按以下步骤自查" in text
    text = await chat.press("已检查，还是没气")
    assert "联系电话" in text and await chat.flow() == "no_gas"
    await _never_handed_off(chat)


async def _no_gas_at(chat, step: str) -> None:
    """Walk an anonymous no-gas report to the question ``step``."""
    await chat.say("家里没气了")
    if step in ("check", "phone", "address"):
        await chat.press("跳过")
    if step in ("phone", "address"):
        await chat.press("已检查，还是没气")
    if step == "address":
        await chat.say("13800001111")
    assert (await chat.state())["flow_state"]["asking"] == step


@pytest.mark.parametrize("step", ["area", "check", "phone", "address"])
async def test_heating_not_warm_in_a_no_gas_report_is_answered(session, new_chat, step: str) -> None:
    chat = await new_chat()
    await _no_gas_at(chat, step)
    text = await chat.say("暖气不热")
    assert "查一下有没有计划停暖" in text and await chat.flow() == "heating_not_warm"
    assert (await chat.turns())[-1]["paused"] == "no_gas"
    assert await tickets() == []  # not taken as the address of a no-gas ticket either
    await _never_handed_off(chat)


@pytest.mark.parametrize("step", ["area", "check", "phone", "address"])
async def test_a_meter_question_in_a_no_gas_report_is_answered_then_offered_back(session, new_chat, step) -> None:
    chat = await new_chat()
    await _no_gas_at(chat, step)
    question = chat.last[-1].text
    text = await chat.say("IC卡表怎么换电池")
    assert IC_BATTERY_GUIDE in text and "刚才的「无气报修」还没有办完" in text
    assert await chat.flow() is None and await tickets() == []
    text = await chat.press("继续")
    assert question in text and await chat.flow() == "no_gas"
    assert (await chat.state())["flow_state"]["asking"] == step
    await _never_handed_off(chat)


async def test_a_meter_question_in_a_heating_report(session, new_chat) -> None:
    chat = await new_chat()
    await chat.say("暖气不热")
    await chat.press("跳过")
    text = await chat.say("IC卡表怎么换电池")
    assert IC_BATTERY_GUIDE in text and "刚才的「暖气不热报修」还没有办完" in text
    await _never_handed_off(chat)


# (first message, its flow, a clearly different request, a phrase of the answer to it)
OTHER_REQUESTS = [
    ("我想预约安检", "booking", "营业厅几点开门", "哪个区"),
    ("查一下我的预约进度", "progress", "暖气不热", "计划停暖"),
    ("我想取消预约", "change_appointment", "IC卡表怎么换电池", IC_BATTERY_GUIDE),
    ("营业厅在哪", "branch", "查一下余额", "请输入您的户号"),
    ("自闭阀跳了怎么复位", "meter_guidance", "营业厅几点开门", "哪个区"),
    ("家里没气了", "no_gas", "我想预约安检", "预约上门服务前需要核实身份"),
    ("暖气不热", "heating_not_warm", "查一下余额", "请输入您的户号"),
    ("我要反映问题", "complaint", "营业厅几点开门", "哪个区"),
    ("我要表扬", "praise", "怎么交燃气费", "微信"),
    ("查询余额", "balance", "暖气不热", "计划停暖"),
]


@pytest.mark.parametrize(("first", "flow", "other", "answer"), OTHER_REQUESTS)
async def test_every_flow_answers_a_clear_new_request(session, new_chat, first, flow, other, answer) -> None:
    chat = await new_chat()
    await chat.say(first)
    assert await chat.flow() == flow
    question = chat.last[-1].text
    text = await chat.say(other)
    assert answer in text and question not in text
    assert await chat.flow() != flow and (await chat.turns())[-1]["paused"] == flow
    await _never_handed_off(chat)
    # Once the new request is done (or dropped), the paused flow is offered and asks its question again.
    if await chat.flow():
        text = await chat.say("算了")
    assert "还没有办完，需要继续吗" in text
    text = await chat.press("继续")
    assert question in text and await chat.flow() == flow


async def test_declining_the_offer_lets_the_flow_go(session, new_chat) -> None:
    chat = await new_chat()
    await chat.say("家里没气了")
    await chat.say("IC卡表怎么换电池")
    text = await chat.press("不用了")
    assert "还有其他可以帮您的吗" in text and (await chat.state()).get("paused_flows") is None
    text = await chat.say("营业厅几点开门")
    assert "还没有办完" not in text  # offered once, never again


async def test_a_button_of_the_paused_question_goes_straight_on(session, new_chat) -> None:
    chat = await new_chat()
    await chat.say("家里没气了")
    await chat.press("跳过")
    await chat.say("IC卡表怎么换电池")
    text = await chat.say("已检查，还是没气", value="still")  # pressed on the self-check message above
    assert "联系电话" in text and await chat.flow() == "no_gas"


@pytest.mark.parametrize(("reply", "why"), [
    ("我看了，卡里还有钱", "a finding of the self-check, though classified as a balance query"),
    ("表前阀是开着的", "a finding of the self-check, though classified as meter guidance"),
    ("随便说点什么", "not a request at all"),
])
async def test_statements_in_a_self_check_stay_in_it(session, new_chat, reply: str, why: str) -> None:
    chat = await new_chat()
    await chat.say("家里没气了")
    await chat.press("跳过")
    text = await chat.say(reply)
    assert SELF_CHECK_PROMPT in text and await chat.flow() == "no_gas", why


async def test_answers_that_look_like_other_intents_stay_in_their_flow(session, factory, new_chat) -> None:
    chat = await new_chat()
    await chat.say("我要投诉")
    text = await chat.say("营业厅的工作人员态度很差，让我白跑了两趟")  # the complaint itself
    assert "联系电话" in text and await chat.flow() == "complaint"
    chat = await new_chat()
    await chat.say("我想预约安检")
    text = await chat.say("2100003344")  # the 户号 the identity check asked for
    assert "后四位" in text and await chat.flow() == "booking"
    text = await chat.say("是的")
    assert await chat.flow() == "booking"


async def test_a_flow_asking_again_never_hands_off_and_offers_the_other_request(session, new_chat) -> None:
    chat = await new_chat()
    await chat.say("家里没气了")
    await chat.press("跳过")
    await chat.say("随便说点什么")
    text = await chat.say("卡里的钱呢")  # a balance question the classifier is not sure of (0.45 to 0.8)
    assert SELF_CHECK_PROMPT in text and "我想问：查询余额/欠费" in chat.buttons()
    await _never_handed_off(chat)  # two answers the flow could not use are its own retries, not bot misses
    text = await chat.press("我想问：查询余额")
    assert "请输入您的户号" in text and await chat.flow() == "balance"
    assert (await chat.turns())[-1]["paused"] == "no_gas"


async def test_what_the_resident_found_in_the_self_check_goes_to_the_crew(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("家里没气了")
    text = await chat.say("卡里还有200多块钱，热水器也打不着")
    assert "已记下" in text and await chat.flow() == "no_gas"
    await chat.press("已检查，还是没气")
    [ticket] = await tickets("no_gas")
    assert "居民自查情况：卡里还有200多块钱，热水器也打不着" in ticket.description
