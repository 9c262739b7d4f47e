"""回访 on SMS and WeChat (gasdesk/followups/remote.py): the invitation goes where the ticket came from, a
bare score sent back answers it, anything else is chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock, db
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.channels.inbound import Inbound, receive_from_contact
from gasdesk.conversations.models import Message
from gasdesk.customers.contacts import do_bind_contact, do_record_inbound_contact
from gasdesk.customers.models import ContactKind
from gasdesk.db import commit
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.followups.remote import parse_score
from gasdesk.followups.service import dispatch_due
from gasdesk.outbound.models import OutboundMessage
from gasdesk.tickets.models import Ticket
from tests.factories import staff_user, wo_ticket

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai
PHONE = "13812345678"


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


async def _rows(**where) -> list[OutboundMessage]:
    async with db.sessionmaker()() as s:
        query = select(OutboundMessage).order_by(OutboundMessage.id)
        for key, value in where.items():
            query = query.where(getattr(OutboundMessage, key) == value)
        return list(await s.scalars(query))


async def _survey(ticket_id: int) -> FollowUpSurvey:
    async with db.sessionmaker()() as s:
        return await s.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket_id)
                              .order_by(FollowUpSurvey.id.desc()))


async def _resolved_from(session, factory, kind: ContactKind, value: str):
    """A customer who wrote on ``kind``; a ticket from that conversation, resolved at T0."""
    customer = await factory.customer(phones=[PHONE])
    contact = await do_record_inbound_contact(session, kind, value)
    if contact.customer_id is None:
        await do_bind_contact(session, Actor.system("test", "test"), contact, customer, how="agent")
    conversation = await receive_from_contact(session, contact, kind.value, Inbound(text="燃气灶打不着火"))
    await commit(session)
    assert conversation is not None
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="resolved", crew_id=crew.id, channel=kind.value,
                             conversation_id=conversation.id, customer_id=customer.id)
    return contact, ticket


async def _dispatch(session, minutes: float) -> dict[str, int]:
    clock.set_now(T0 + timedelta(minutes=minutes))
    counts = await dispatch_due(session)
    await commit(session)
    return counts


@pytest.mark.parametrize(("text", "expected"), [
    ("4", (4, True)), ("４", (4, True)), (" 5分 ", (5, True)), ("2", (2, False)), ("3 未解决", (3, False)),
    ("4，没有解决", (4, False)), ("6", None), ("45", None), ("4号楼漏气", None), ("", None), ("好评", None)])
def test_parse_score(text, expected) -> None:
    assert parse_score(text) == expected


async def test_sms_survey_answered_by_a_digit(session, factory) -> None:
    contact, ticket = await _resolved_from(session, factory, ContactKind.sms, PHONE)
    assert contact.customer_id is not None  # bound by the phone on file
    survey = await _survey(ticket.id)
    assert survey.channel == "sms"
    assert await _dispatch(session, 60) == {"sent": 1, "unreachable": 0}
    [invite] = await _rows(purpose="followup_invite")
    assert (invite.channel, invite.method, invite.recipient, invite.template_key, invite.followup_id) == (
        "sms", "sms", PHONE, "followup_invite", survey.id)
    assert invite.params == {"service": "维修工单"}
    assert (await _survey(ticket.id)).status == "sent"
    async with db.sessionmaker()() as s:
        audits = [a.action for a in await s.scalars(select(AuditEntry).where(
            AuditEntry.entity_type.in_(["outbound", "followup"])).order_by(AuditEntry.id))]
    assert "followup.send" in audits and "outbound.queue" in audits

    clock.set_now(T0 + timedelta(hours=3))
    assert await receive_from_contact(session, contact, "sms", Inbound(text="４")) is None
    await commit(session)
    answered = await _survey(ticket.id)
    assert (answered.status, answered.score, answered.solved, answered.outcome) == ("answered", 4, True, "ok")
    [thanks] = await _rows(followup_id=survey.id, purpose="chat")
    assert (thanks.channel, thanks.recipient, thanks.params) == ("sms", PHONE, {"text": "感谢您参与回访，您的评价我们已记录。"})
    # The score is not chat: nothing was added to the conversation.
    async with db.sessionmaker()() as s:
        resident_texts = [m.text for m in await s.scalars(select(Message).where(Message.sender_type == "resident"))]
    assert resident_texts == ["燃气灶打不着火"]


async def test_unsolved_answer_reopens_the_ticket(session, factory) -> None:
    contact, ticket = await _resolved_from(session, factory, ContactKind.sms, PHONE)
    await _dispatch(session, 60)
    await receive_from_contact(session, contact, "sms", Inbound(text="2 未解决"))
    await commit(session)
    survey = await _survey(ticket.id)
    assert (survey.score, survey.solved, survey.outcome) == (2, False, "reopened")
    async with db.sessionmaker()() as s:
        assert (await s.get(Ticket, ticket.id)).status == "reopened"


async def test_a_digit_without_an_open_survey_is_chat(session, factory) -> None:
    stranger = await do_record_inbound_contact(session, ContactKind.sms, "13811112222")
    conversation = await receive_from_contact(session, stranger, "sms", Inbound(text="4"))
    await commit(session)
    assert conversation is not None
    async with db.sessionmaker()() as s:
        texts = [m.text for m in await s.scalars(select(Message).where(
            Message.conversation_id == conversation.id, Message.sender_type == "resident"))]
    assert texts == ["4"]
    assert await _rows(purpose="chat", followup_id=None) != []  # the bot answered in the chat, as usual


async def test_a_second_score_after_answering_is_chat(session, factory) -> None:
    contact, ticket = await _resolved_from(session, factory, ContactKind.sms, PHONE)
    await _dispatch(session, 60)
    await receive_from_contact(session, contact, "sms", Inbound(text="5"))
    conversation = await receive_from_contact(session, contact, "sms", Inbound(text="5"))
    await commit(session)
    assert conversation is not None and (await _survey(ticket.id)).score == 5


async def test_wechat_survey_is_a_template_message_and_the_answer_is_thanked_by_custom_message(session,
                                                                                                factory) -> None:
    contact, ticket = await _resolved_from(session, factory, ContactKind.wechat, "oWechatSurvey0001")
    survey = await _survey(ticket.id)
    await _dispatch(session, 60)
    [invite] = await _rows(purpose="followup_invite")
    assert (invite.channel, invite.method, invite.followup_id) == ("wechat", "template", survey.id)
    assert invite.params == {"service": "维修工单", "ticket_no": ticket.number}
    await receive_from_contact(session, contact, "wechat", Inbound(text="5"))
    await commit(session)
    assert (await _survey(ticket.id)).score == 5
    [thanks] = await _rows(followup_id=survey.id, purpose="chat")
    assert (thanks.channel, thanks.method) == ("wechat", "custom")


async def test_hotline_ticket_is_surveyed_by_sms_to_the_contact_phone(session, factory) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="resolved", crew_id=crew.id, channel="voice",
                             contact_phone="13899990000")
    await _dispatch(session, 60)
    [invite] = await _rows(purpose="followup_invite")
    assert (invite.channel, invite.recipient, invite.ticket_id) == ("sms", "13899990000", ticket.id)
    caller = await do_record_inbound_contact(session, ContactKind.sms, "13899990000")
    await receive_from_contact(session, caller, "sms", Inbound(text="3"))
    await commit(session)
    assert (await _survey(ticket.id)).score == 3


async def test_a_digit_picking_the_bots_newer_options_is_chat(session, factory) -> None:
    contact, ticket = await _resolved_from(session, factory, ContactKind.sms, PHONE)
    await _dispatch(session, 60)
    clock.set_now(T0 + timedelta(hours=2))
    await receive_from_contact(session, contact, "sms", Inbound(text="你好"))  # the bot answers with a menu
    await commit(session)
    clock.set_now(T0 + timedelta(hours=2, minutes=1))
    conversation = await receive_from_contact(session, contact, "sms", Inbound(text="1"))
    await commit(session)
    assert conversation is not None  # went to the chat: the menu came after the survey
    assert (await _survey(ticket.id)).status == "sent"
