"""One report, one ticket: the agent's 生成工单 on a conversation that already has a ticket (the bot's leak
ticket) offers to add to it, and a second ticket is never unlinked; the draft does not mix a leak with an
inspection booked earlier, carries no time that has passed, and never reads the identity-check answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select, update

from gasdesk import clock
from gasdesk.bot.base import BOT_ACTOR
from gasdesk.conversations.models import SenderType
from gasdesk.conversations.service import do_post_message
from gasdesk.db import commit
from gasdesk.tickets.draft import DraftLine, draft_from_conversation, draft_from_lines, draft_from_texts
from gasdesk.tickets.models import Ticket
from gasdesk.tickets.service import do_update_ticket_contact
from tests.factories import (
    bot_conversation,
    login,
    staff_user,
    wo_audit_rows,
    wo_headers,
    wo_reload,
    wo_ticket,
    wo_ticket_events,
)

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 7 Dec 2026, 10:00 in Shanghai


async def _chat(session, lines: list[tuple[str, str]], **kw):
    """A conversation with (sender, text) lines: "r" resident, "b" bot, "a" agent."""
    conversation = await bot_conversation(session, **kw)
    senders = {"r": SenderType.resident, "b": SenderType.bot, "a": SenderType.agent}
    for sender, text in lines:
        await do_post_message(session, conversation, senders[sender], text=text)
    await commit(session)
    return conversation


# ---------------------------------------------------------------- the draft


def test_a_leak_draft_carries_no_service_or_visit_time_from_an_earlier_booking() -> None:
    draft = draft_from_texts(["我想预约安检", "明天上午可以吗", "等一下，厨房里好大一股煤气味"], NOW)
    assert (draft.type, draft.service_type, draft.preferred_time) == ("gas_leak", None, None)
    complaint = draft_from_texts(["你们的维修师傅态度太差了，约好的时间没来"], NOW)
    assert (complaint.type, complaint.service_type) == ("complaint", None)


def test_a_visit_time_is_read_when_it_was_said_and_dropped_once_passed() -> None:
    said_saturday = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    lines = [DraftLine("燃气灶打不着火，想预约维修", said_saturday), DraftLine("明天上午来吧", said_saturday)]
    assert draft_from_lines(lines, NOW).preferred_time is None  # Sunday the 6th is over on Monday the 7th
    lines[1] = DraftLine("后天下午来吧", said_saturday)
    assert draft_from_lines(lines, NOW).preferred_time == "12月07日 下午"  # today, said two days ago
    # a corrected wish replaces the first one
    draft = draft_from_texts(["想约个安检", "明天上午", "不对，改成后天下午"], NOW)
    assert (draft.service_type, draft.preferred_time) == ("安检", "12月09日 下午")


async def test_the_draft_never_reads_identity_answers_or_copies_every_line(session, factory) -> None:
    clock.set_now(NOW)
    customer = await factory.customer(phones=["13866667777"], account_no="2100445566")
    conversation = await _chat(session, [
        ("r", "你好"), ("r", "燃气灶打不着火了，想预约维修"),
        ("b", "为保护您的信息安全，预约上门服务前需要核实身份。请输入您的户号（在缴费单或燃气卡上）。"),
        ("r", "2100445566"), ("b", "请输入户主预留手机号的后四位。"), ("r", "7777"),
        ("b", "户号或手机号后四位不匹配，无法核实身份。请重新输入户号。"), ("r", "户号2100445566，后四位6677"),
        ("a", "您好，为了核实您的身份，请提供户号和预留手机号后四位。"), ("r", "2100445566 7777"),
        ("r", "灶头一直打不着，麻烦快点派人"), ("r", "谢谢"),
    ])
    draft = await draft_from_conversation(session, conversation)
    assert draft.description == "燃气灶打不着火了，想预约维修\n灶头一直打不着，麻烦快点派人"
    everything = repr(draft.to_dict())
    for answer in ("2100445566", "7777", "6677"):
        assert answer not in everything  # not in the description, not in any field
    # unverified, so no customer is linked by the 户号 typed into the identity check
    assert draft.customer_id is None and customer.id


async def test_a_message_that_only_names_the_identity_documents_asks_nothing(session, factory) -> None:
    clock.set_now(NOW)
    conversation = await _chat(session, [
        ("r", "营业厅在哪"), ("b", "朝阳区的营业厅信息如下：……办理业务请携带户主身份证和户号（缴费单或燃气卡）。"),
        ("r", "另外我家暖气不热，屋里才15度"),
    ])
    draft = await draft_from_conversation(session, conversation)
    assert draft.type == "repair" and "暖气不热" in draft.description


async def test_a_spontaneous_account_number_still_links_but_is_redacted(session, factory) -> None:
    clock.set_now(NOW)
    customer = await factory.customer(phones=["13866667777"], account_no="2100445566")
    conversation = await _chat(session, [("r", "家里没气了，我户号是2100445566，电话13866667777")])
    draft = await draft_from_conversation(session, conversation)
    assert draft.customer_id == customer.id and draft.account_no == "2100445566"
    assert draft.description == "家里没气了，我户号是[户号]，电话[手机号]"
    assert not re.search(r"\d{8,}", draft.description)


# ---------------------------------------------------------------- a conversation that already has a ticket


async def _leak_conversation(session):
    conversation = await _chat(session, [("r", "厨房里好大一股煤气味"), ("r", "和平区幸福里小区3号楼2单元501")])
    leak = await wo_ticket(session, "gas_leak", priority="urgent", conversation_id=conversation.id,
                           channel="webchat", title="燃气泄漏（在线报警）")
    return conversation, leak


async def test_the_new_ticket_page_offers_the_conversations_ticket(client, factory, session) -> None:
    clock.set_now(NOW)
    conversation, leak = await _leak_conversation(session)
    supervisor = await staff_user(session, "supervisor")
    await login(client, supervisor.username)
    page = await client.get(f"/tickets/new?conversation_id={conversation.id}")
    assert page.status_code == 200
    assert "该会话已有工单" in page.text and leak.number in page.text and "补充到此工单" in page.text
    assert f'name="parent_ticket_id" value="{leak.id}"' in page.text
    assert f"仍要新建工单（关联 {leak.number}）" in page.text

    # 补充到此工单: a note on the leak ticket, no second ticket
    r = await client.post(f"/tickets/{leak.id}/note", data={"note": "居民补充：门口楼道也有味"})
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{leak.id}?done=note"
    assert [t.id for t in await session.scalars(select(Ticket))] == [leak.id]
    detail = await client.get(r.headers["location"])
    assert "已补充到工单" in detail.text and "补充说明" in detail.text and "门口楼道也有味" in detail.text
    [audit] = await wo_audit_rows(session, "ticket", leak.id, "ticket.note")
    assert audit.actor_id == supervisor.id

    # 仍要新建: the second ticket is linked, and both pages show the link
    form = {"type": "repair", "description": "顺便检查一下热水器", "conversation_id": str(conversation.id),
            "parent_ticket_id": str(leak.id)}
    r = await client.post("/tickets/new", data=form)
    assert r.status_code == 303
    second = await session.scalar(select(Ticket).where(Ticket.id != leak.id))
    assert second.parent_ticket_id == leak.id
    assert leak.number in (await client.get(f"/tickets/{second.id}")).text
    assert second.number in (await client.get(f"/tickets/{leak.id}")).text


async def test_the_api_links_a_second_ticket_and_takes_notes(client, factory, session) -> None:
    clock.set_now(NOW)
    conversation, leak = await _leak_conversation(session)
    supervisor = await staff_user(session, "supervisor")
    headers = await wo_headers(factory, supervisor)
    draft = (await client.get(f"/api/v1/conversations/{conversation.id}/ticket-draft", headers=headers)).json()
    assert [t["number"] for t in draft["open_tickets"]] == [leak.number]
    r = await client.post(f"/api/v1/tickets/{leak.id}/notes", json={"note": "居民已到室外"}, headers=headers)
    assert r.status_code == 200 and r.json()["events"][-1]["action"] == "note"
    assert r.json()["status"] == "new"  # a note changes no state
    r = await client.post("/api/v1/tickets", json={"type": "gas_leak", "conversation_id": conversation.id,
                                                   "description": "同一次报警"}, headers=headers)
    assert r.status_code == 201 and r.json()["parent_ticket_id"] == leak.id  # never an unlinked duplicate
    r = await client.post(f"/api/v1/tickets/{leak.id}/notes", json={"note": ""}, headers=headers)
    assert r.status_code == 422


async def test_a_closed_ticket_is_not_offered(client, factory, session) -> None:
    clock.set_now(NOW)
    conversation, leak = await _leak_conversation(session)
    await session.execute(update(Ticket).where(Ticket.id == leak.id).values(status="closed"))
    await commit(session)
    supervisor = await staff_user(session, "supervisor")
    draft = await draft_from_conversation(session, await wo_reload(type(conversation), conversation.id))
    assert draft.open_tickets == []
    headers = await wo_headers(factory, supervisor)
    r = await client.post("/api/v1/tickets", json={"type": "repair", "conversation_id": conversation.id},
                          headers=headers)
    assert r.json()["parent_ticket_id"] is None


# ---------------------------------------------------------------- notes are stored free text: redacted


async def test_a_note_is_stored_with_identifiers_redacted(client, factory, session) -> None:
    clock.set_now(NOW)
    conversation, leak = await _leak_conversation(session)
    supervisor = await staff_user(session, "supervisor")
    headers = await wo_headers(factory, supervisor)
    note = "居民说户号2100003344，身份证110101199003071234，电话13800001111，门口楼道也有味"
    r = await client.post(f"/api/v1/tickets/{leak.id}/notes", json={"note": note}, headers=headers)
    assert r.status_code == 200
    stored = [e.note for e in await wo_ticket_events(leak.id) if e.action == "note"]
    assert stored == ["居民说户号[户号]，身份证[身份证号]，电话[手机号]，门口楼道也有味"]
    assert "13800001111" not in r.text and "2100003344" not in r.text and "110101199003071234" not in r.text


async def test_a_contact_change_names_the_phone_masked_in_the_history(factory, session) -> None:
    clock.set_now(NOW)
    _, leak = await _leak_conversation(session)
    ticket = await session.get(Ticket, leak.id)
    await do_update_ticket_contact(session, BOT_ACTOR, ticket, address_text="和平区幸福里小区3号楼2单元501",
                                   district="和平区", contact_phone="13800001111")
    await commit(session)
    assert ticket.contact_phone == "13800001111"  # the field whom to call keeps the number
    [event] = [e for e in await wo_ticket_events(leak.id) if e.action == "contact"]
    assert "幸福里小区3号楼2单元501" in event.note and "138****1111" in event.note
    assert "13800001111" not in event.note
