"""Agents correct the intent the bot understood; supervisors and admins review (docs/architecture.md, "Learning from
production"). Stored state, audit rows, events, access by role, and no personal number in what training reads."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from gasdesk.audit.models import AuditEntry
from gasdesk.bot.nlu.intents import INTENTS
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.intent_corrections import service
from gasdesk.intent_corrections.models import IntentCorrection
from tests.factories import (
    agent_with_conversation,
    login,
    page_csrf_token,
    resident_said,
    staff_user,
    wo_audit_rows,
    wo_headers,
)

SAID = "我家户号2103345678，电话 138-1234-5678，上个月的燃气费交了吗"


async def _audit(session, action: str, entity_id: int) -> list[AuditEntry]:
    return await wo_audit_rows(session, "intent_correction", entity_id, action)


async def test_do_correct_intent_stores_masked_text_and_the_bots_reading(session, factory, events) -> None:
    agent, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, SAID, bot_intent="payment_howto", confidence=0.38)
    events.clear()

    row = await service.do_correct_intent(session, agent, message, conversation, "balance_query")
    await commit(session)

    stored = await session.get(IntentCorrection, row.id)
    assert (stored.message_id, stored.conversation_id, stored.intent, stored.status) == (
        message.id,
        conversation.id,
        "balance_query",
        "pending",
    )
    assert (stored.predicted_intent, stored.predicted_confidence, stored.created_by) == (
        "payment_howto",
        0.38,
        agent.id,
    )
    assert stored.text == "我家户号[户号]，电话 [手机号]，上个月的燃气费交了吗"
    # encrypted at rest like the message itself: the column holds neither the text nor a number of it
    raw = await session.scalar(text("SELECT text FROM intent_corrections WHERE id = :i"), {"i": row.id})
    assert "燃气费" not in raw and "2103345678" not in raw
    [entry] = await _audit(session, "bot.correct_intent", row.id)
    assert entry.actor_id == agent.id
    assert entry.changes["after"] == {
        "intent": "balance_query",
        "message_id": message.id,
        "conversation_id": conversation.id,
        "predicted_intent": "payment_howto",
    }
    [event] = [e for e in events if e.type == "bot.intent_corrected"]
    assert event.payload == {
        "correction_id": row.id,
        "conversation_id": conversation.id,
        "message_id": message.id,
        "intent": "balance_query",
    }


async def test_no_event_before_commit_and_none_after_rollback(session, factory, events) -> None:
    agent, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, "人呢", bot_intent="out_of_scope")
    events.clear()
    await service.do_correct_intent(session, agent, message, conversation, "greeting")
    assert [e for e in events if e.type.startswith("bot.")] == []
    await session.rollback()
    assert [e for e in events if e.type.startswith("bot.")] == []
    assert await session.scalar(select(IntentCorrection.id)) is None


async def test_a_second_correction_before_review_changes_the_intent_after_review_it_is_refused(
    session, factory
) -> None:
    agent, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, "想问下气价", bot_intent="balance_query")
    first = await service.do_correct_intent(session, agent, message, conversation, "payment_howto")
    await commit(session)
    again = await service.do_correct_intent(session, agent, message, conversation, "price_query")
    await commit(session)
    assert again.id == first.id and again.intent == "price_query"
    entries = await _audit(session, "bot.correct_intent", first.id)
    assert [e.changes["after"]["intent"] for e in entries] == ["payment_howto", "price_query"]
    assert entries[1].changes["before"] == {"intent": "payment_howto"}

    supervisor = await staff_user(session, "supervisor")
    await service.do_review_correction(session, supervisor, again, "approve")
    await commit(session)
    with pytest.raises(Conflict):
        await service.do_correct_intent(session, agent, message, conversation, "complaint")


async def test_bad_corrections_are_refused(session, factory) -> None:
    agent, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, "余额多少", bot_intent="balance_query")
    with pytest.raises(InvalidInput) as unknown:
        await service.do_correct_intent(session, agent, message, conversation, "weather")
    assert "unknown intent" in unknown.value.message and "未知的意图" in unknown.value.message
    with pytest.raises(InvalidInput) as same:
        await service.do_correct_intent(session, agent, message, conversation, "balance_query")
    assert same.value.code == "intent_unchanged"
    # only a resident's text: not an agent's reply
    from gasdesk.conversations.models import SenderType
    from gasdesk.conversations.service import do_post_message

    reply = (await do_post_message(session, conversation, SenderType.agent, text="您好", user=agent)).message
    await commit(session)
    with pytest.raises(InvalidInput):
        await service.access_message_to_correct(session, agent, reply.id)
    with pytest.raises(NotFound):
        await service.access_message_to_correct(session, agent, 999_999)


async def test_an_agent_may_correct_only_conversations_they_can_see(session, factory) -> None:
    _, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, "我要投诉", bot_intent="praise")
    other = await staff_user(session, "agent")
    with pytest.raises(PermissionDenied):
        await service.access_message_to_correct(session, other, message.id)
    supervisor = await staff_user(session, "supervisor")
    assert (await service.access_message_to_correct(session, supervisor, message.id))[0].id == message.id


async def test_review_approves_or_rejects_once_by_a_manager(session, factory, events) -> None:
    agent, conversation = await agent_with_conversation(factory)
    one = await resident_said(session, conversation, "燃气表怎么看读数", bot_intent="balance_query")
    two = await resident_said(session, conversation, "你们真棒", bot_intent="complaint")
    a = await service.do_correct_intent(session, agent, one, conversation, "meter_guidance")
    b = await service.do_correct_intent(session, agent, two, conversation, "praise")
    await commit(session)
    with pytest.raises(PermissionDenied):
        await service.do_review_correction(session, agent, a, "approve")
    supervisor = await staff_user(session, "supervisor")
    with pytest.raises(InvalidInput):
        await service.do_review_correction(session, supervisor, a, "maybe")
    events.clear()

    await service.do_review_correction(session, supervisor, a, "approve")
    await service.do_review_correction(session, supervisor, b, "reject")
    await commit(session)

    stored = await session.execute(
        select(IntentCorrection.id, IntentCorrection.status, IntentCorrection.reviewed_by).order_by(
            IntentCorrection.id
        )
    )
    assert [tuple(r) for r in stored] == [
        (a.id, "approved", supervisor.id),
        (b.id, "rejected", supervisor.id),
    ]
    [entry] = await _audit(session, "bot.review_correction", a.id)
    assert entry.actor_id == supervisor.id and entry.changes == {
        "before": {"status": "pending"},
        "after": {"status": "approved", "intent": "meter_guidance"},
    }
    assert [e.payload for e in events if e.type == "bot.correction_reviewed"] == [
        {"correction_id": a.id, "status": "approved"},
        {"correction_id": b.id, "status": "rejected"},
    ]
    with pytest.raises(Conflict):
        await service.do_review_correction(session, supervisor, a, "reject")
    # only approved ones become training data, masked
    assert [(e.correction_id, e.intent) for e in await service.approved_examples(session)] == [
        (a.id, "meter_guidance")
    ]


@pytest.mark.parametrize(
    "said",
    [
        "我的户号是2103345678，查下欠费",
        "户号：21 0334 5678 帮我查",
        "电话13812345678，没气了",
        "+86 138 1234 5678 回个电话",
        "座机024-23456789",
        "身份证110101199003071234办过户",
        "卡号6222020200112233445交费失败",
        "表号后面是0012345678901",
        "联系我 abc@example.com",
    ],
)
def test_masked_training_text_holds_no_phone_or_account_number(said: str) -> None:
    masked = service.mask_text(said)
    trained = service.training_text(masked)
    for form in (masked, trained):
        assert not any(run in form for run in _digit_runs(said, 6)), form
        assert "example.com" not in form
    # what training reads: only the neutral number where a personal one was
    assert not any(ch.isdigit() for ch in trained.replace("00000000000", "")), trained


def _digit_runs(text_: str, length: int) -> set[str]:
    runs, current = set(), ""
    for ch in text_ + " ":
        if ch.isdigit():
            current += ch
        else:
            if len(current) >= length:
                runs.add(current)
            current = ""
    return runs


def test_every_intent_has_a_chinese_name() -> None:
    assert set(service.INTENT_NAMES) == set(INTENTS)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for label in service.INTENT_NAMES.values())


# ---------------------------------------------------------------- routes and roles


async def test_routes_agent_marks_supervisor_reviews(client, session, factory) -> None:
    agent, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, SAID, bot_intent="payment_howto")
    as_agent = await wo_headers(factory, agent)

    options = (await client.get("/api/v1/bot/intents", headers=as_agent)).json()
    assert len(options) == len(INTENTS) and {"intent": "gas_leak", "label": "燃气泄漏（紧急）"} in options

    bad = await client.post(
        "/api/v1/bot/corrections", headers=as_agent, json={"message_id": message.id, "intent": "weather"}
    )
    assert bad.status_code == 422 and "unknown intent" in bad.json()["error"]["message"]
    made = await client.post(
        "/api/v1/bot/corrections",
        headers=as_agent,
        json={"message_id": message.id, "intent": "balance_query"},
    )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["status"] == "pending" and body["intent_label"] == "查询余额/欠费"
    assert "2103345678" not in body["text"] and "[户号]" in body["text"]

    # an agent lists the corrections of a conversation they can see, not everyone's
    listed = await client.get(f"/api/v1/bot/corrections?conversation_id={conversation.id}", headers=as_agent)
    assert [i["id"] for i in listed.json()["items"]] == [body["id"]]
    assert (await client.get("/api/v1/bot/corrections", headers=as_agent)).status_code == 422
    stranger = await wo_headers(factory, await staff_user(session, "agent"))
    assert (
        await client.get(f"/api/v1/bot/corrections?conversation_id={conversation.id}", headers=stranger)
    ).status_code == 403
    assert (
        await client.post(
            "/api/v1/bot/corrections",
            headers=stranger,
            json={"message_id": message.id, "intent": "complaint"},
        )
    ).status_code == 403

    # agents do not review; supervisors do
    review = f"/api/v1/bot/corrections/{body['id']}/review"
    assert (await client.post(review, headers=as_agent, json={"decision": "approve"})).status_code == 403
    supervisor = await wo_headers(factory, await staff_user(session, "supervisor"))
    assert (await client.post(review, headers=supervisor, json={"decision": "maybe"})).status_code == 422
    pending = (await client.get("/api/v1/bot/corrections?status=pending", headers=supervisor)).json()
    assert pending["total"] == 1
    done = await client.post(review, headers=supervisor, json={"decision": "approve"})
    assert done.status_code == 200 and done.json()["status"] == "approved"
    again = await client.post(review, headers=supervisor, json={"decision": "reject"})
    assert again.status_code == 409 and "already reviewed" in again.json()["error"]["message"]
    assert (await client.get("/api/v1/bot/corrections?status=bogus", headers=supervisor)).status_code == 422


@pytest.mark.parametrize("role", ["field_crew", "dispatcher", "wall"])
async def test_other_roles_cannot_mark_or_review(client, session, factory, role) -> None:
    _, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, "你好", bot_intent="goodbye")
    headers = await factory.headers(role)
    mark = await client.post(
        "/api/v1/bot/corrections", headers=headers, json={"message_id": message.id, "intent": "greeting"}
    )
    assert mark.status_code == 403
    assert (
        await client.post("/api/v1/bot/corrections/1/review", headers=headers, json={"decision": "approve"})
    ).status_code == 403
    assert await session.scalar(select(IntentCorrection.id)) is None


async def test_a_resident_cannot_mark(client, session, factory) -> None:
    _, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, "你好", bot_intent="goodbye")
    visitor = (await client.post("/api/v1/webchat/visitors")).json()
    token = visitor.get("token") or visitor.get("visitor_token")
    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        response = await client.post(
            "/api/v1/bot/corrections", headers=headers, json={"message_id": message.id, "intent": "greeting"}
        )
        assert response.status_code == 401, response.text
    assert await session.scalar(select(IntentCorrection.id)) is None


async def test_review_page_lists_pending_and_reviews_in_place(client, session, factory) -> None:
    agent, conversation = await agent_with_conversation(factory)
    message = await resident_said(session, conversation, SAID, bot_intent="payment_howto")
    row = await service.do_correct_intent(session, agent, message, conversation, "balance_query")
    await commit(session)

    await login(client, agent.username)
    assert (await client.get("/admin/bot/corrections")).status_code == 403

    supervisor = await staff_user(session, "supervisor")
    await login(client, supervisor.username)
    page = await client.get("/admin/bot/corrections")
    assert page.status_code == 200
    assert "意图纠正审核" in page.text and "[户号]" in page.text and "2103345678" not in page.text
    assert f'data-id="{row.id}"' in page.text and "查询余额/欠费" in page.text
    token = await page_csrf_token(client)

    done = await client.post(
        f"/admin/bot/corrections/{row.id}/review",
        data={"decision": "approve"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert done.status_code == 200 and "已采纳" in done.text and f'data-id="{row.id}"' not in done.text
    status = await session.scalar(select(IntentCorrection.status).where(IntentCorrection.id == row.id))
    assert status == "approved"
    # an htmx post shows the error in place; a plain form post answers with the error's status
    again = await client.post(
        f"/admin/bot/corrections/{row.id}/review",
        data={"decision": "reject"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert again.status_code == 200 and "已审核" in again.text
    plain = await client.post(
        f"/admin/bot/corrections/{row.id}/review", data={"decision": "reject", "csrf_token": token}
    )
    assert plain.status_code == 409
    approved = await client.get("/admin/bot/corrections?status=approved")
    assert f'data-id="{row.id}"' in approved.text
