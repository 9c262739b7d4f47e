"""A call from ringing to its records, driven by a caller double through the real controller, IVR engine,
ACD and domains: the stored rows are what is asserted."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from telephony_kit import FakeCaller, SilentRenderer, assert_consistent, call_rows

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.auth.models import User
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Conversation, Message
from gasdesk.conversations.service import do_transfer
from gasdesk.db import commit, transaction
from gasdesk.notifications.models import Notification
from gasdesk.outbound.models import OutboundMessage
from gasdesk.routing import service as acd
from gasdesk.telephony import controller
from gasdesk.telephony.models import CallRecording
from gasdesk.tickets.models import Ticket
from tests.factories import desk_agent, queued_conversation, reload_conversation, staff_user

pytestmark = pytest.mark.usefixtures("quick_queue")


async def _call(caller: FakeCaller, prompts: SilentRenderer) -> None:
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)


async def test_pressing_1_reports_a_leak_and_an_agent_takes_the_call(session, factory, prompts) -> None:
    customer = await factory.customer(phones=["13900000001"])
    agent = await desk_agent(factory)
    dispatcher = await staff_user(session, "dispatcher")
    caller = FakeCaller(inputs=["1"], caller="13900000001")

    await _call(caller, prompts)

    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    call = rows.call
    assert call.customer_id == customer.id and rows.conversation.customer_id == customer.id
    assert rows.conversation.channel == "voice" and rows.conversation.priority == 10
    assert rows.conversation.handoff_reason == "emergency"
    assert rows.conversation.handoff_summary == {"intent": "gas_leak", "ivr_path": ["main", "leak"]}
    assert [(v.node_id, v.outcome) for v in rows.visits] == [("main", "digit"), ("leak", "next")]
    assert rows.kinds == ["ringing", "answered", "ivr_node", "dtmf", "ivr_node", "queued", "bridged",
                          "recording_started", "recording_stopped", "hung_up"]
    assert rows.events[3].data == {"node": "main", "digits": "1"}
    assert (call.hangup_by, call.agent_id, call.ivr_script_version) == ("agent", agent.id, 1)
    assert call.connected_at is not None and call.talk_s is not None and call.hold_s == 0
    assert caller.bridged[0].agent_id == agent.id and caller.bridged[0].endpoint == f"agent:{agent.id}"
    assert any("燃气泄漏紧急提示" in text for text in caller.heard)
    # the number is encrypted at rest with its lookup index, and never in the events
    assert call.caller == "13900000001" and call.caller_index
    assert all("13900000001" not in str(e.data) for e in rows.events)

    ticket = await session.scalar(select(Ticket).where(Ticket.conversation_id == call.conversation_id))
    assert (ticket.type, ticket.priority, ticket.channel) == ("gas_leak", "urgent", "voice")
    alerted = set(await session.scalars(select(Notification.user_id).where(Notification.kind == "emergency.gas_leak")))
    assert {agent.id, dispatcher.id} <= alerted
    recording = await session.scalar(select(CallRecording).where(CallRecording.call_id == call.id))
    assert recording.path.startswith("recordings/") and recording.bytes > 44 and len(recording.sha256) == 64
    actions = set(await session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_id == str(call.conversation_id), AuditEntry.entity_type == "conversation")))
    assert {"conversation.accept", "conversation.close"} <= actions
    assert await session.scalar(select(AuditEntry.id).where(AuditEntry.action == "call.end",
                                                            AuditEntry.entity_id == str(call.id)))
    texts = [m.text for m in await session.scalars(select(Message).where(
        Message.conversation_id == call.conversation_id).order_by(Message.seq))]
    assert texts[0] == "热线来电（已识别客户）"
    assert any(t.startswith("来电人报告燃气泄漏，已生成紧急工单") for t in texts)
    assert any(t.startswith("通话结束：坐席挂机") for t in texts)
    assert all("13900000001" not in (t or "") for t in texts)


async def test_a_leak_call_goes_ahead_of_waiting_calls(session, factory, prompts) -> None:
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session, channel="voice")  # a call takes the agent's voice slot
    chat = await queued_conversation(session, channel="voice")  # another caller waits
    caller = FakeCaller(inputs=["1"], caller="13900000002")
    task = asyncio.create_task(_call(caller, prompts))
    for _ in range(200):
        await asyncio.sleep(0.02)
        if caller.ops and (rows := await call_rows(caller.info.call_ref)).call.state == "queued":
            break
    assert rows.call.state == "queued"
    order = [c.id for c in await acd.queued_in_order(session, 1)]
    assert order == [rows.call.conversation_id, chat.id]
    caller.gone = True  # the caller hangs up while waiting
    await task
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert rows.call.hangup_by == "caller" and rows.call.queue_wait_s is not None and rows.call.connected_at is None
    assert (await reload_conversation(chat.id)).state == "queued"


async def test_pressing_0_queues_for_a_person_and_the_wait_is_bounded(session, factory, prompts,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_WAIT_LIMIT_S", "0.3")
    reset_settings_cache()
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session, channel="voice")  # the only agent is on a call
    caller = FakeCaller(inputs=["0", ""], caller="13900000003")
    await _call(caller, prompts)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert [(v.node_id, v.outcome) for v in rows.visits] == [
        ("main", "digit"), ("office_hours", "next"), ("to_agent", "next")]
    assert (rows.call.hangup_by, rows.call.hangup_cause) == ("system", "queue_timeout")
    assert rows.call.queue_wait_s is not None and rows.call.talk_s is None
    assert rows.conversation.closed_by == "system"
    assert "坐席正忙，请您耐心等待，我们将尽快为您接通。" in caller.heard


async def test_a_stranger_identifies_by_account_number_and_hears_the_balance(session, factory, prompts) -> None:
    customer = await factory.customer(phones=["13912345678"], account_no="2100000077")
    caller = FakeCaller(inputs=["3", "2100000077", "5678", "9"], caller="13800000009")
    await _call(caller, prompts)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert rows.call.customer_id == customer.id and rows.conversation.customer_id == customer.id
    assert rows.path == ["main", "id_balance", "balance", "after_info", "main"]
    assert rows.visits[-1].outcome == "hangup" and rows.call.hangup_by == "caller"
    assert any("户号尾号0077，账户余额" in text for text in caller.heard)
    dtmf = [e.data for e in rows.events if e.kind == "dtmf"]
    assert {"node": "id_balance", "count": 10} in dtmf and "2100000077" not in str(dtmf)
    link = await session.scalar(select(AuditEntry).where(AuditEntry.action == "conversation.link_customer",
                                                         AuditEntry.entity_id == str(rows.conversation.id)))
    assert link.changes["after"] == {"customer_id": customer.id, "how": "resident_identity"}


async def test_a_wrong_last4_fails_the_check_and_goes_to_a_person(session, factory, prompts) -> None:
    await factory.customer(phones=["13912345678"], account_no="2100000078")
    caller = FakeCaller(inputs=["3", "2100000078", "0000", "2100000078", "0001", "2100000078", "0002"],
                        caller="13800000010")
    await _call(caller, prompts)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert [(v.node_id, v.outcome) for v in rows.visits][:2] == [("main", "digit"), ("id_balance", "invalid")]
    assert rows.conversation.customer_id is None


async def test_outage_notices_for_the_callers_area(session, factory, prompts) -> None:
    from datetime import timedelta

    from gasdesk.outages.service import do_announce_outage
    from tests.factories import wo_actor

    await factory.customer(phones=["13900000004"])  # 朝阳区
    now = clock.utcnow()
    await do_announce_outage(session, wo_actor(), kind="gas", district="朝阳区", communities=[],
                             starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=6), reason="管线改造")
    await do_announce_outage(session, wo_actor(), kind="heating", district="海淀区", communities=[],
                             starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=6), reason="检修")
    await commit(session)
    caller = FakeCaller(inputs=["2"], caller="13900000004")
    await _call(caller, prompts)
    said = next(text for text in caller.heard if text.startswith("您所在区域近期的停气停暖通知"))
    assert "朝阳区" in said and "管线改造" in said and "海淀区" not in said
    assert_consistent(await call_rows(caller.info.call_ref))


async def test_a_caller_in_the_notice_area_hears_it_before_the_menu(session, factory, prompts) -> None:
    from datetime import timedelta

    from gasdesk.outages.service import AreaSpec, check_outage, do_create_outage, do_publish_outage
    from tests.factories import wo_actor

    address = {"district": "朝阳区", "community": "幸福里小区", "building": "3", "unit": "1", "room": "101"}
    await factory.customer(phones=["13900000014"], address=address)
    await factory.customer(phones=["13900000015"], address={**address, "building": "4"})
    now = clock.utcnow()
    notice = await do_create_outage(session, wo_actor(), check_outage(
        kind="gas", planned=False, areas=[AreaSpec(district="朝阳区", community="幸福里小区", building="3")],
        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3), reason="楼内立管漏气抢修"))
    await do_publish_outage(session, wo_actor(), notice)
    await commit(session)
    inside = FakeCaller(inputs=[], caller="13900000014")
    await _call(inside, prompts)
    assert inside.heard[0].startswith("您好，您所在区域有停气停暖通知") and "立管漏气" in inside.heard[0]
    assert_consistent(await call_rows(inside.info.call_ref))
    next_door = FakeCaller(inputs=[], caller="13900000015")
    await _call(next_door, prompts)
    assert not any("立管漏气" in text for text in next_door.heard)


async def test_a_long_queue_offers_an_sms_link_instead_of_waiting(session, factory, prompts, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_GUIDANCE_URL", "https://g.example.cn/z")
    reset_settings_cache()
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session, channel="voice")  # the agent's call
    await queued_conversation(session, channel="voice")  # one caller waiting: the next waits about 8 minutes
    await queued_conversation(session)  # chats wait for chat slots: they do not lengthen a caller's wait
    await queued_conversation(session)
    caller = FakeCaller(inputs=["0", "1"], caller="13900000005")
    await _call(caller, prompts)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert [(v.node_id, v.outcome) for v in rows.visits] == [
        ("main", "digit"), ("office_hours", "next"), ("to_agent", "digit"), ("sms_guide", "next"), ("bye", "next")]
    assert any("您前面还有1位，预计等待约8分钟" in text for text in caller.heard)
    sms = await session.scalar(select(OutboundMessage).where(OutboundMessage.conversation_id == rows.conversation.id))
    assert (sms.channel, sms.purpose, sms.recipient) == ("sms", "guidance", "13900000005")
    assert sms.params["link"] == "https://g.example.cn/z"
    assert rows.call.queued_at is None and (rows.call.hangup_by, rows.call.hangup_cause) == ("system", "ivr_done")


@pytest.mark.parametrize(("inputs", "agent"), [(["1"], True), (["0"], True), (["2", "9", "4", "2100000079", "1111"], False),
                                               (["7", "7", "7"], False)])
async def test_hanging_up_at_every_step_leaves_consistent_records(session, factory, prompts, inputs, agent) -> None:
    if agent:
        await desk_agent(factory, max_concurrent=50)
    await factory.customer(phones=["13912340000"], account_no="2100000079")
    full = FakeCaller(inputs=list(inputs), caller="13900000006")
    await _call(full, prompts)
    assert_consistent(await call_rows(full.info.call_ref))
    for step in range(1, len(full.ops) + 1):
        caller = FakeCaller(inputs=list(inputs), caller="13900000006", hang_up_at_op=step)
        await _call(caller, prompts)
        rows = await call_rows(caller.info.call_ref)
        assert_consistent(rows)
        assert rows.call.hangup_by == "caller", (step, caller.ops)
        if rows.visits:
            assert rows.visits[-1].outcome in ("hangup", "next")


async def test_calls_beyond_capacity_hear_the_overflow_prompt(session, factory, prompts, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_TELEPHONY_MAX_CONCURRENT_CALLS", "2")
    reset_settings_cache()
    waiting = [FakeCaller(inputs=["1"], caller=f"1390000010{i}") for i in range(2)]  # leaks: they queue
    tasks = [asyncio.create_task(_call(c, prompts)) for c in waiting]
    for _ in range(200):
        if controller.active_call_count() == 2 and all(c.ops for c in waiting):
            break
        await asyncio.sleep(0.01)
    flood = [FakeCaller(caller=f"1380000020{i}") for i in range(6)]
    await asyncio.gather(*(_call(c, prompts) for c in flood))
    for caller in flood:
        assert caller.ops == ["answer", "play", "hangup"] and caller.heard == [
            "您好，当前线路繁忙，请稍后再拨。燃气泄漏等紧急情况请拨打 119。"]
        rows = await call_rows(caller.info.call_ref)
        assert (rows.call.state, rows.call.hangup_cause, rows.call.conversation_id) == ("ended", "over_capacity", None)
    for caller in waiting:
        caller.gone = True
    await asyncio.gather(*tasks)
    assert controller.active_call_count() == 0
    for caller in waiting:
        assert_consistent(await call_rows(caller.info.call_ref))


async def test_an_agent_who_does_not_answer_gives_the_call_back_to_the_queue(session, factory, prompts,
                                                                            monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_TELEPHONY_AGENT_ANSWER_TIMEOUT_S", "0.3")
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_WAIT_LIMIT_S", "1")
    reset_settings_cache()
    agent = await desk_agent(factory)
    caller = FakeCaller(inputs=["0"], caller="13900000007", agent_answers=False)
    await _call(caller, prompts)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    missed = [e.data for e in rows.events if e.kind == "transferred"]
    assert missed and missed[0] == {"agent_id": agent.id, "reason": "no_answer"}
    assert rows.call.connected_at is None and rows.call.hangup_cause == "queue_timeout"
    assert len(caller.bridged) == 1  # rung once: then set away (redirect on no answer), not rung again
    assert (await acd.agent_profile(session, agent.id)).presence == "away"


async def _until(check, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_transfer_holds_the_caller_and_bridges_the_colleague(session, factory, prompts) -> None:
    first, second = await desk_agent(factory), await desk_agent(factory)
    caller = FakeCaller(inputs=["0"], talk_s=8)
    task = asyncio.create_task(controller.handle_call(caller, prompts=prompts))
    try:
        await _until(lambda: len(caller.bridged) == 1)
        bridged = caller.bridged[0].agent_id
        colleague = second if bridged == first.id else first
        rows = await call_rows(caller.info.call_ref)
        await _until(lambda: "record" in caller.ops)  # talking
        async with transaction() as s:  # the agent transfers the call's conversation to a colleague
            conversation = await s.get(Conversation, rows.call.conversation_id)
            await do_transfer(s, await s.get(User, bridged), conversation, to_agent_id=colleague.id)
        await _until(lambda: len(caller.bridged) == 2)
        assert caller.bridged[1].agent_id == colleague.id
        caller.end_call.set()
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert rows.call.agent_id == colleague.id and rows.call.hangup_by == "agent"
    assert rows.kinds.count("bridged") == 2 and rows.kinds.count("transferred") == 1
    assert rows.kinds.count("recording_started") == 1  # one recording for the whole call
    assert caller.ops.count("hold") == 2  # on hold while the colleague's phone rang, then back
    assert rows.conversation.agent_id == colleague.id
