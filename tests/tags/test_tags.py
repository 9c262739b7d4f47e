"""Smart tags and data links (gasdesk/tags): rules applied when a conversation closes, agents' tags, strangers'
numbers, the address lookup with confirm/remove — stored state, audit rows, events and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation
from gasdesk.customers.contacts import do_bind_contact, do_record_inbound_contact, visitor_id_of
from gasdesk.customers.models import ContactKind
from gasdesk.db import commit
from gasdesk.errors import NotFound
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.outages.models import OutageArea, OutageNotice
from gasdesk.tags import service
from gasdesk.tags.models import AddressLink, TagAssignment
from gasdesk.tags.schemas import RuleIn
from gasdesk.telephony.media import CallInfo
from gasdesk.telephony.service import do_start_call
from tests.factories import (
    agent_with_conversation,
    bot_conversation,
    resident_said,
    staff_user,
    wo_audit_rows,
    wo_headers,
    wo_ticket,
)

HOME = {"district": "朝阳区", "community": "幸福里小区", "building": "3", "unit": "2", "room": "501"}


async def _rules(session, admin) -> dict[str, int]:
    made = {}
    for tag, kind, params in [
        ("催缴关注", "intent", {"intents": ["payment_howto"]}),
        ("投诉倾向", "keyword", {"keywords": ["投诉"]}),
        ("旧改小区", "address", {"district": "朝阳区", "communities": ["幸福里"]}),
        ("频繁停气区域", "outage_area", {"days": 90, "min_count": 3}),
        ("海淀老旧", "address", {"district": "海淀区", "communities": []}),
    ]:
        rule = await service.do_create_rule(
            session, admin, RuleIn(tag=tag, kind=kind, params=params, colour="#aa3300")
        )
        made[tag] = rule.id
    await commit(session)
    return made


async def _outages(session, n: int, *, days_ago: int = 10) -> None:
    """``n`` past notices over 朝阳区 幸福里 (history, inserted as it would stand after closing)."""
    now = clock.utcnow()
    for i in range(n):
        starts = now - timedelta(days=days_ago + i)
        notice = OutageNotice(
            kind="gas",
            district="朝阳区",
            communities=["幸福里小区"],
            starts_at=starts,
            ends_at=starts + timedelta(hours=4),
            status="closed",
            published=False,
            version=1,
            content_hash="x",
            title="管线维修",
        )
        notice.areas = [OutageArea(district="朝阳区", community="幸福里小区")]
        session.add(notice)
    await commit(session)


async def _closed_with_customer(session, factory, customer, text: str, intent: str | None = None):
    """A web chat of ``customer`` (linked by an agent) in which the resident said ``text``, closed by the agent."""
    agent = await staff_user(session, "agent")
    conversation = await bot_conversation(session)
    await conversations.do_link_customer(session, Actor.of(agent), conversation, customer, how="agent")
    await resident_said(session, conversation, text, bot_intent=intent)
    await conversations.do_close(session, conversation, by="agent", user=agent)
    await commit(session)
    return agent, conversation


async def _tags(session, **where) -> set[str]:
    column = getattr(TagAssignment, next(iter(where)))
    return set(
        await session.scalars(
            select(TagAssignment.tag).where(
                column == next(iter(where.values())), TagAssignment.removed_at.is_(None)
            )
        )
    )


# ---------------------------------------------------------------- automatic tags on close


async def test_rules_tag_customer_and_conversation_when_it_closes(session, factory, events) -> None:
    admin = await staff_user(session, "admin")
    rules = await _rules(session, admin)
    await _outages(session, 3)
    customer = await factory.customer(address=HOME)
    events.clear()
    _, conversation = await _closed_with_customer(
        session, factory, customer, "上月燃气费怎么交？我要投诉", intent="payment_howto"
    )
    # the close queued the evaluation in its own transaction (outbox); the job tags
    jobs = list(await session.scalars(select(Job).where(Job.name == service.JOB)))
    assert [j.payload for j in jobs] == [{"conversation_id": conversation.id}]
    assert await _tags(session, conversation_id=conversation.id) == set()
    assert await run_due_jobs() >= 1

    assert await _tags(session, conversation_id=conversation.id) == {"催缴关注", "投诉倾向"}
    assert await _tags(session, customer_id=customer.id) == {"旧改小区", "频繁停气区域"}
    row = await session.scalar(select(TagAssignment).where(TagAssignment.tag == "旧改小区"))
    assert (row.source, row.rule_id) == ("rule", rules["旧改小区"])
    [audit] = await wo_audit_rows(session, "conversation", conversation.id, "tag.auto")
    assert {t["tag"] for t in audit.changes["after"]["tags"]} == {
        "催缴关注",
        "投诉倾向",
        "旧改小区",
        "频繁停气区域",
    }
    assert [e.payload for e in events if e.type == "tags.changed"] == [
        {"customer_id": customer.id, "conversation_id": conversation.id}
    ]

    # the customer's tags, with the rule's colour
    shown = [t.model_dump() for t in await service.customer_tags(session, customer.id)]
    assert {(t["tag"], t["colour"], t["source_label"]) for t in shown} == {
        ("旧改小区", "#aa3300", "规则"),
        ("频繁停气区域", "#aa3300", "规则"),
    }


async def test_outage_rule_needs_enough_recent_notices_and_disabled_rules_do_nothing(
    session, factory
) -> None:
    admin = await staff_user(session, "admin")
    rules = await _rules(session, admin)
    await _outages(session, 2)
    await _outages(session, 2, days_ago=200)  # too old to count
    rule = await service.access_rule(session, rules["旧改小区"])
    await service.do_update_rule(
        session,
        admin,
        rule,
        RuleIn(
            tag="旧改小区",
            kind="address",
            enabled=False,
            params={"district": "朝阳区", "communities": ["幸福里"]},
        ),
    )
    await commit(session)
    customer = await factory.customer(address=HOME)
    _, conversation = await _closed_with_customer(session, factory, customer, "你好")
    await service.do_apply_rules(session, conversation.id)
    await commit(session)
    assert await _tags(session, customer_id=customer.id) == set()
    [audit] = await wo_audit_rows(session, "tag_rule", rule.id, "tag_rule.update")
    assert (audit.changes["before"]["enabled"], audit.changes["after"]["enabled"]) == (True, False)


async def test_no_rule_no_job_and_an_open_conversation_is_not_tagged(session, factory) -> None:
    customer = await factory.customer(address=HOME)
    await _closed_with_customer(session, factory, customer, "投诉")
    assert await session.scalar(select(func.count()).select_from(Job).where(Job.name == service.JOB)) == 0
    admin = await staff_user(session, "admin")
    await _rules(session, admin)
    open_one = await bot_conversation(session)
    await resident_said(session, open_one, "我要投诉")
    assert await service.do_apply_rules(session, open_one.id) == []


async def test_a_tag_an_agent_took_off_is_not_put_back_and_manual_tags_are_audited(
    session, factory, events
) -> None:
    admin = await staff_user(session, "admin")
    await _rules(session, admin)
    customer = await factory.customer(address=HOME)
    agent, first = await _closed_with_customer(session, factory, customer, "你好")
    await service.do_apply_rules(session, first.id)
    await commit(session)
    row = await session.scalar(
        select(TagAssignment).where(TagAssignment.customer_id == customer.id, TagAssignment.tag == "旧改小区")
    )
    events.clear()
    await service.do_remove_tag(session, agent, row)
    await commit(session)
    [removed] = await wo_audit_rows(session, "customer", customer.id, "tag.remove")
    assert removed.changes["before"]["tag"] == "旧改小区"
    assert [e.payload for e in events if e.type == "tags.changed"] == [
        {"customer_id": customer.id, "conversation_id": None}
    ]

    _, second = await _closed_with_customer(session, factory, customer, "再问一下")
    assert await service.do_apply_rules(session, second.id) == []
    assert await _tags(session, customer_id=customer.id) == set()

    added = await service.do_add_tag(session, agent, "重点关注", customer=customer)
    again = await service.do_add_tag(session, agent, "重点关注", customer=customer)
    await commit(session)
    assert again.id == added.id and (added.source, added.created_by) == ("manual", agent.id)
    assert len(await wo_audit_rows(session, "customer", customer.id, "tag.add")) == 1


# ---------------------------------------------------------------- strangers' numbers


async def _sms_conversation(session, number: str):
    contact = await do_record_inbound_contact(session, ContactKind.sms, number)
    conversation = await conversations.do_start_conversation(
        session, channel="sms", visitor_id=visitor_id_of(contact), customer_id=contact.customer_id
    )
    await commit(session)
    return contact, conversation


async def test_a_new_number_without_a_customer_is_marked_stranger_until_linked(
    session, factory, events
) -> None:
    events.clear()
    contact, conversation = await _sms_conversation(session, "13712345678")
    [mark] = list(
        await session.scalars(
            select(TagAssignment).where(TagAssignment.visitor_id == conversation.visitor_id)
        )
    )
    assert (mark.tag, mark.source) == ("陌生号码", "system")
    assert len(await wo_audit_rows(session, "conversation", conversation.id, "tag.stranger")) == 1
    assert {"customer_id": None, "conversation_id": conversation.id} in [
        e.payload for e in events if e.type == "tags.changed"
    ]
    [badge] = await service.badges(session, [conversation.id])
    assert badge.stranger and [t.tag for t in badge.tags] == []

    # it writes again: still a stranger, no second mark
    await conversations.do_close(session, conversation, by="system")
    _, again = await _sms_conversation(session, "13712345678")
    assert (await service.conversation_tags(session, again)).stranger
    assert await session.scalar(select(func.count()).select_from(TagAssignment)) == 1

    # bound to a customer: no longer shown as a stranger
    customer = await factory.customer()
    await do_bind_contact(session, Actor.system("t", "test"), contact, customer, how="agent")
    await commit(session)
    assert not (await service.badges(session, [again.id]))[0].stranger


async def test_known_numbers_web_visitors_and_withheld_callers_are_not_strangers(session, factory) -> None:
    await factory.customer(phones=["13811112222"])
    _, known = await _sms_conversation(session, "13811112222")
    assert known.customer_id is not None
    web = await bot_conversation(session)
    withheld = await do_start_call(
        session, CallInfo(call_ref="t-anon", caller="", callee="96777", backend="sip"), script_version=None
    )
    await commit(session)
    assert await service.strangers_among(session, [known, web]) == set()
    assert await session.scalar(select(func.count()).select_from(TagAssignment)) == 0
    assert withheld.conversation_id is not None


async def test_a_landline_caller_seen_first_is_a_stranger(session) -> None:
    call = await do_start_call(
        session,
        CallInfo(call_ref="t-land", caller="01065551234", callee="96777", backend="sip"),
        script_version=None,
    )
    await commit(session)
    conversation = await session.get(Conversation, call.conversation_id)
    assert conversation.visitor_id.startswith("voice:")
    assert await service.strangers_among(session, [conversation]) == {conversation.id}


# ---------------------------------------------------------------- address lookup, confirm / remove


async def _address_world(session, factory):
    """A customer at HOME with a phone on file and a bound WeChat; a landline call about the home linked to
    the conversation by an agent (not to the customer's data); a ticket at the home with another number."""
    customer = await factory.customer(phones=["13900001111"], address=HOME)
    address = customer.addresses[0]
    wechat = await do_record_inbound_contact(session, ContactKind.wechat, "oWeChatOpenId0123456789")
    await do_bind_contact(session, Actor.system("t", "test"), wechat, customer, how="oauth")
    call = await do_start_call(
        session,
        CallInfo(call_ref="t-addr", caller="01065559876", callee="96777", backend="sip"),
        script_version=None,
    )
    conversation = await session.get(Conversation, call.conversation_id)
    agent = await staff_user(session, "agent")
    await conversations.do_link_customer(session, Actor.of(agent), conversation, customer, how="agent")
    await commit(session)
    ticket = await wo_ticket(
        session, "repair", address_id=address.id, customer_id=customer.id, contact_phone="13655556666"
    )
    return customer, address, conversation, ticket, agent


async def test_address_lookup_lists_linked_and_suggested_numbers_masked_for_agents(session, factory) -> None:
    customer, address, conversation, ticket, agent = await _address_world(session, factory)
    await factory.customer(
        phones=["13900002222"], address={**HOME, "district": "海淀区"}
    )  # same name elsewhere

    seen = await service.lookup_address(session, agent, "朝阳区", "幸福里小区3号楼2单元501室")
    assert [a.id for a in seen.addresses] == [address.id]
    assert seen.addresses[0].customer_name == customer.name[0] + "*" * (len(customer.name) - 1)
    rows = {(e.kind, e.shown): e for e in seen.entries}
    assert set(rows) == {
        ("phone", "139****1111"),
        ("wechat", "oWeC…6789"),
        ("phone", "010****9876"),
        ("phone", "136****6666"),
    }
    assert rows[("phone", "139****1111")].status == "linked" and rows[("phone", "139****1111")].ref is None
    assert rows[("wechat", "oWeC…6789")].via == ["已绑定微信"]
    landline = rows[("phone", "010****9876")]
    assert (landline.status, landline.via, landline.ref) == (
        "suggested",
        ["热线来电"],
        f"conv:{conversation.id}",
    )
    assert landline.first_seen is not None and landline.last_seen >= landline.first_seen
    assert rows[("phone", "136****6666")].ref == f"ticket:{ticket.id}"

    # community level, no district: both homes; a supervisor sees full numbers and names
    supervisor = await staff_user(session, "supervisor")
    wide = await service.lookup_address(session, supervisor, "", "幸福里")
    assert len(wide.addresses) == 2
    assert {"13900001111", "13900002222", "01065559876"} <= {e.shown for e in wide.entries}
    assert customer.name in {a.customer_name for a in wide.addresses}


async def test_confirm_and_remove_links_store_state_audit_and_announce(session, factory, events) -> None:
    customer, address, conversation, ticket, agent = await _address_world(session, factory)
    events.clear()
    link = await service.do_confirm_link(session, agent, address, f"conv:{conversation.id}")
    await commit(session)
    stored = await session.get(AddressLink, link.id)
    assert (stored.status, stored.kind, stored.value, stored.decided_by) == (
        "confirmed",
        "phone",
        "01065559876",
        agent.id,
    )
    [audit] = await wo_audit_rows(session, "address", address.id, "address_link.confirm")
    assert audit.changes["after"] == {
        "link_id": link.id,
        "kind": "phone",
        "from": f"conv:{conversation.id}",
        "status": "confirmed",
    }
    assert [e.payload for e in events if e.type == "tags.address_link"] == [
        {"link_id": link.id, "address_id": address.id, "status": "confirmed"}
    ]
    seen = await service.lookup_address(session, agent, "朝阳区", "幸福里3号楼2单元501")
    landline = next(e for e in seen.entries if e.shown == "010****9876")
    assert (landline.status, landline.ref) == ("confirmed", f"link:{link.id}")

    # dismiss the ticket's number: not suggested again
    dismissed = await service.do_remove_link(session, agent, address, f"ticket:{ticket.id}")
    await commit(session)
    assert (await session.get(AddressLink, dismissed.id)).status == "removed"
    seen = await service.lookup_address(session, agent, "朝阳区", "幸福里3号楼2单元501")
    assert "136****6666" not in {e.shown for e in seen.entries}

    # withdraw the confirmed link: a removed row, audited
    await service.do_remove_link(session, agent, address, f"link:{link.id}")
    await commit(session)
    assert (await session.get(AddressLink, link.id)).status == "removed"
    assert len(await wo_audit_rows(session, "address", address.id, "address_link.remove")) == 2

    # a reference that is not a suggestion for this home is refused
    with pytest.raises(NotFound) as refused:
        await service.do_confirm_link(session, agent, address, "conv:999999")
    assert refused.value.code == "link_not_found"


# ---------------------------------------------------------------- REST: roles and shapes


async def test_api_roles_for_rules_tags_and_lookup(session, factory, client) -> None:
    customer, address, conversation, _, _ = await _address_world(session, factory)
    admin, agent = await staff_user(session, "admin"), await staff_user(session, "agent")
    dispatcher = await staff_user(session, "dispatcher")
    rule = {"tag": "旧改小区", "kind": "address", "params": {"district": "朝阳区", "communities": ["幸福里"]}}
    assert (
        await client.post("/api/v1/tags/rules", json=rule, headers=await wo_headers(factory, agent))
    ).status_code == 403
    made = await client.post("/api/v1/tags/rules", json=rule, headers=await wo_headers(factory, admin))
    assert made.status_code == 201 and made.json()["target"] == "customer"
    bad = await client.post(
        "/api/v1/tags/rules", json={**rule, "params": {}}, headers=await wo_headers(factory, admin)
    )
    assert bad.status_code == 422

    query = {"district": "朝阳区", "text": "幸福里小区3号楼2单元501"}
    assert (
        await client.post(
            "/api/v1/tags/address-lookup", json=query, headers=await wo_headers(factory, dispatcher)
        )
    ).status_code == 403
    found = await client.post(
        "/api/v1/tags/address-lookup", json=query, headers=await wo_headers(factory, agent)
    )
    assert found.status_code == 200
    suggested = [e for e in found.json()["entries"] if e["status"] == "suggested"]
    assert suggested and all("****" in e["shown"] for e in found.json()["entries"] if e["kind"] == "phone")
    confirmed = await client.post(
        "/api/v1/tags/address-links/confirm",
        headers=await wo_headers(factory, agent),
        json={"address_id": address.id, "ref": suggested[0]["ref"]},
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"

    # tags on a conversation: only the agent holding it (or a manager)
    holder, mine = await agent_with_conversation(factory)
    other = await wo_headers(factory, agent)
    assert (
        await client.post(
            "/api/v1/tags/assignments", json={"tag": "回访", "conversation_id": mine.id}, headers=other
        )
    ).status_code == 403
    added = await client.post(
        "/api/v1/tags/assignments",
        json={"tag": "回访", "conversation_id": mine.id},
        headers=await wo_headers(factory, holder),
    )
    assert added.status_code == 201
    badge = await client.get(
        "/api/v1/tags/badges",
        params={"conversation_id": [mine.id]},
        headers=await wo_headers(factory, holder),
    )
    assert [t["tag"] for t in badge.json()[0]["tags"]] == ["回访"]
    removed = await client.post(
        f"/api/v1/tags/assignments/{added.json()['id']}/remove", headers=await wo_headers(factory, holder)
    )
    assert removed.status_code == 200
    assert (
        await client.post("/api/v1/tags/assignments", json={"tag": "x"}, headers=other)
    ).status_code == 422
