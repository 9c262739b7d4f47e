"""Every change of state leaves an audit row: each mutating route of the app (REST and page form posts) and
each background job that changes something is run here, with a body that succeeds, and must write the audit
row of its change in that request or run. A route or job without a scenario fails the coverage tests, so a
new one has to be given one (or an entry in EXEMPT with the reason it changes nothing worth recording)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk import clock
from gasdesk.appointments.models import AppointmentSlot
from gasdesk.appointments.service import book_appointment, do_generate_slots
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.auth.access import iter_routes
from gasdesk.auth.models import User
from gasdesk.branches.service import do_save_branch
from gasdesk.callbacks.service import do_request_callback
from gasdesk.channels.wechat.service import DEFAULT_MENU
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation
from gasdesk.customers.contacts import do_bind_contact, do_record_inbound_contact
from gasdesk.customers.models import ContactKind
from gasdesk.db import commit, transaction
from gasdesk.hours.service import do_set_override
from gasdesk.jobs.queue import HANDLERS, PERIODIC, enqueue, run_due_jobs
from gasdesk.kb.service import access_article, check_article, do_create_article, do_update_article
from gasdesk.notifications.service import do_notify
from gasdesk.outbound.models import Purpose
from gasdesk.outbound.service import do_queue_outbound
from gasdesk.routing.models import SkillGroup
from gasdesk.tickets.routing import do_create_routing_rule
from gasdesk.tickets.service import do_save_view
from tests.factories import (
    TEST_PASSWORD,
    WO_PNG,
    Factory,
    agent_with_conversation,
    desk_agent,
    login,
    queued_conversation,
    resident_said,
    staff_user,
    wo_actor,
    wo_ticket,
)

SETUP = Actor.system("audit-coverage", "test")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
WEEKDAY_HOURS = {"1": "08:30-17:00", "2": "08:30-17:00", "3": "08:30-17:00", "4": "08:30-17:00",
                 "5": "08:30-17:00"}
KB_CSV = "标题,问法,答案,分类\n停气通知在哪看,哪里看停气通知,在网站公告栏,停气\n".encode()


@dataclass
class Ctx:
    """What a scenario may use: the app's client, a session for prerequisites, the factory."""

    client: httpx.AsyncClient
    session: AsyncSession
    factory: Factory

    async def log_in(self, user: User) -> User:
        """Log ``user`` in through the form (a cookie session with its CSRF token, as the pages do)."""
        response = await login(self.client, user.username)
        assert response.status_code == 303, response.text[:200]
        return user

    async def as_role(self, role: str) -> User:
        return await self.log_in(await staff_user(self.session, role))

    def csrf_form(self, **fields: Any) -> dict[str, Any]:
        """Multipart forms carry the CSRF token as a field (read once the parts are parsed)."""
        return {"csrf_token": self.client.headers["X-CSRF-Token"], **fields}


@dataclass
class Call:
    """One request and the audit actions it must write (each at least once)."""

    method: str
    url: str
    actions: tuple[str, ...]
    json: Any = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Scenario = Callable[[Ctx], Awaitable[Call]]
SCENARIOS: dict[tuple[str, str], Scenario] = {}


def scenario(method: str, path: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        assert (method, path) not in SCENARIOS, (method, path)
        SCENARIOS[(method, path)] = fn
        return fn

    return register


# Mutating routes that by design write no audit row, each with the reason.
EXEMPT: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/customers/search"): "a search; a POST only to keep phone numbers and 户号 out of URLs",
    ("POST", "/customers/search"): "the search form; a POST only to keep personal data out of URLs",
    ("POST", "/tickets/new/customers"): "customer search of the create form; a POST only to keep personal data out of URLs",
    ("POST", "/api/v1/progress"): "a progress lookup; a POST only to keep phone numbers and 户号 out of URLs",
    ("POST", "/api/v1/tags/address-lookup"): "an address lookup; a POST only to keep addresses out of URLs",
    ("POST", "/tags/address"): "the address lookup form; a POST only to keep addresses out of URLs",
    ("POST", "/api/v1/bot/understand"): "runs the NLU on a text and returns what it understood; stores nothing",
    ("POST", "/api/v1/ivr/scripts/validate"): "checks an IVR script and lists its problems; stores nothing",
    ("POST", "/admin/kb/preview"): "renders an answer's Markdown for the editor; stores nothing",
    ("POST", "/api/v1/webchat/visitors"): "issues a signed anonymous visitor token; stores nothing",
    ("POST", "/api/v1/webchat/uploads"): "a resident's file for their chat: content (like a message), not a change of state",
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): "a chat message is content, stored with its sender "
                                                                   "and seq, not a change of state",
    ("POST", "/api/v1/kb/articles/{article_id}/feedback"): "an anonymous 有帮助/没帮助 vote, counted on the article",
    ("POST", "/dev/simulator/wechat/send"): "the development simulator playing WeChat: it posts a signed callback to "
                                            "/channels/wechat/callback (exempt above) and stores nothing itself",
    ("POST", "/dev/simulator/sms/inbox"): "reads the SMS sent to a phone; a POST only to keep the number out of URLs",
    ("POST", "/dev/simulator/sms/send"): "the development simulator playing an SMS provider: it posts an uplink push "
                                         "to /channels/sms/aliyun/uplink and stores nothing itself",
    ("POST", "/api/v1/internal-chats/search"): "a search of one's own staff chats; a POST only to keep typed words "
                                              "(which may quote residents) out of URLs",
    ("POST", "/channels/wechat/callback"): "a resident's WeChat message is content like a chat message; the follows, "
                                           "unfollows and bindings it causes are audited (tests/channels/wechat)",
}

# Registered jobs and periodic tasks that by design write no audit row, each with the reason.
JOB_EXEMPT: dict[str, str] = {
    "auth.prune": "forgets sessions, tokens and throttles that ended a day ago: housekeeping, no decision",
    "webhooks.deliver": "delivers an already audited change to a receiver; each attempt is in the delivery log",
    "channels.prune_receipts": "forgets inbound de-duplication keys older than any provider retry: housekeeping",
    "outbound.deliver": "sends a message whose queueing was audited; each attempt is on the outbound row, and a "
                        "failure writes outbound.fail (tests/outbound/test_outbound_delivery.py)",
    "analytics.ingest": "writes report facts of already audited changes (a retry of a failed write); no decision",
    "analytics.rollup": "sums report facts into hourly buckets: derived figures, no decision",
    "broadcasts.kick": "re-queues the broadcast drain job when deliveries wait and none is queued: no decision",
}


# ---------------------------------------------------------------- helpers for prerequisites


async def _assigned_conversation(ctx: Ctx) -> tuple[User, Conversation]:
    """An online agent (logged in) holding a conversation the ACD assigned to them."""
    agent = await desk_agent(ctx.factory)
    conversation = await queued_conversation(ctx.session)
    await ctx.session.refresh(conversation)
    assert conversation.agent_id == agent.id
    await ctx.log_in(agent)
    return agent, conversation


async def _slots(ctx: Ctx, district: str = "朝阳区", first_day: date | None = None) -> list[AppointmentSlot]:
    first_day = first_day or (clock.utcnow() + timedelta(days=7)).date()
    await do_generate_slots(ctx.session, district=district, first_day=first_day, days=1,
                            windows=[("09:00", "12:00"), ("14:00", "17:00")], capacity=3)
    await commit(ctx.session)
    return list(await ctx.session.scalars(select(AppointmentSlot).where(AppointmentSlot.district == district)
                                          .order_by(AppointmentSlot.start)))


async def _booking(ctx: Ctx) -> tuple[int, int]:
    """A booked appointment and another free slot: (appointment id, other slot id)."""
    customer = await ctx.factory.customer()
    first, second = await _slots(ctx)
    booking = await book_appointment(ctx.session, SETUP, customer_id=customer.id, service_code="安检",
                                     slot_id=first.id)
    await commit(ctx.session)
    return booking.appointment.id, second.id


async def _article(ctx: Ctx, *, status: str = "draft") -> int:
    data = check_article(title=f"测试条目{id(ctx)}", questions="怎么测试", answer="这样测试", category="常见问题")
    article = await do_create_article(ctx.session, SETUP, data, status=status)
    await commit(ctx.session)
    return article.id


async def _notification(ctx: Ctx, user: User) -> int:
    note = do_notify(ctx.session, user.id, "ticket", "新工单", "请处理", link="/tickets")
    await commit(ctx.session)
    return note.id


def _kb_form(**changes: str) -> dict[str, str]:
    return {"title": "营业厅在哪里", "questions": "营业厅地址", "answer": "和平路 1 号", "category": "营业厅",
            **changes}


# ---------------------------------------------------------------- auth


@scenario("POST", "/api/v1/auth/token")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "agent")
    return Call("POST", "/api/v1/auth/token", ("auth.token_issue",),
                json={"username": user.username, "password": TEST_PASSWORD})


@scenario("POST", "/api/v1/auth/revoke")
async def _(ctx: Ctx) -> Call:
    token = await ctx.factory.token(await staff_user(ctx.session, "agent"))
    return Call("POST", "/api/v1/auth/revoke", ("auth.token_revoke",), headers={"Authorization": f"Bearer {token}"})


@scenario("POST", "/api/v1/users")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/users", ("user.create",),
                json={"username": "newdesk", "password": TEST_PASSWORD, "role": "agent"})


@scenario("PATCH", "/api/v1/users/{user_id}")
async def _(ctx: Ctx) -> Call:
    target = await staff_user(ctx.session, "agent")
    await ctx.as_role("admin")
    return Call("PATCH", f"/api/v1/users/{target.id}", ("user.update",), json={"display_name": "新名字"})


@scenario("POST", "/login")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "agent")
    return Call("POST", "/login", ("auth.login",), data={"username": user.username, "password": TEST_PASSWORD})


@scenario("POST", "/logout")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("agent")
    return Call("POST", "/logout", ("auth.logout",))


@scenario("POST", "/admin/users")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/users", ("user.create",),
                data={"username": "formdesk", "password": TEST_PASSWORD, "role": "dispatcher"})


@scenario("POST", "/admin/users/{user_id}/role")
async def _(ctx: Ctx) -> Call:
    target = await staff_user(ctx.session, "agent")
    await ctx.as_role("admin")
    return Call("POST", f"/admin/users/{target.id}/role", ("user.update",), data={"role": "dispatcher"})


@scenario("POST", "/admin/users/{user_id}/password")
async def _(ctx: Ctx) -> Call:
    target = await staff_user(ctx.session, "agent")
    await ctx.as_role("admin")
    return Call("POST", f"/admin/users/{target.id}/password", ("user.update",), data={"password": "another-long-pass"})


@scenario("POST", "/admin/users/{user_id}/active")
async def _(ctx: Ctx) -> Call:
    target = await staff_user(ctx.session, "agent")
    await ctx.as_role("admin")
    return Call("POST", f"/admin/users/{target.id}/active", ("user.update",), data={"active": "false"})


# ---------------------------------------------------------------- customers and branches


@scenario("POST", "/api/v1/customers")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("agent")
    return Call("POST", "/api/v1/customers", ("customer.create",), json={
        "name": "李娜", "phones": ["13912345678"],
        "address": {"district": "和平区", "community": "幸福里小区", "building": "3", "unit": "1", "room": "201"}})


@scenario("PATCH", "/api/v1/customers/{customer_id}")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    await ctx.as_role("agent")
    return Call("PATCH", f"/api/v1/customers/{customer.id}", ("customer.update",), json={"name": "李娜娜"})


@scenario("POST", "/api/v1/customers/{customer_id}/addresses")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    await ctx.as_role("agent")
    return Call("POST", f"/api/v1/customers/{customer.id}/addresses", ("customer.address_add",),
                json={"district": "沈河区", "community": "青年小区", "building": "8", "unit": "2", "room": "602"})


@scenario("POST", "/api/v1/customers/{customer_id}/accounts")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/customers/{customer.id}/accounts", ("account.create",),
                json={"account_no": "2199887766", "address_id": customer.addresses[0].id})


async def _branch(ctx: Ctx) -> int:
    branch = await do_save_branch(ctx.session, SETUP, branch=None, name="和平营业厅", district="和平区",
                                  address="和平路 1 号", phone="024-12345678", weekly_hours=WEEKDAY_HOURS,
                                  services=[], is_active=True)
    await commit(ctx.session)
    return branch.id


@scenario("POST", "/api/v1/branches")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/branches", ("branch.create",), json={
        "name": "沈河营业厅", "district": "沈河区", "address": "青年大街 2 号", "phone": "024-87654321",
        "weekly_hours": WEEKDAY_HOURS})


@scenario("PUT", "/api/v1/branches/{branch_id}")
async def _(ctx: Ctx) -> Call:
    branch_id = await _branch(ctx)
    await ctx.as_role("admin")
    return Call("PUT", f"/api/v1/branches/{branch_id}", ("branch.update",), json={
        "name": "和平营业厅", "district": "和平区", "address": "和平路 3 号", "phone": "024-12345678",
        "weekly_hours": WEEKDAY_HOURS})


@scenario("PUT", "/api/v1/branches/{branch_id}/holidays")
async def _(ctx: Ctx) -> Call:
    branch_id = await _branch(ctx)
    await ctx.as_role("admin")
    return Call("PUT", f"/api/v1/branches/{branch_id}/holidays", ("branch.holiday",),
                json={"day": "2026-10-01", "hours": "", "note": "国庆节"})


async def _hours_override(ctx: Ctx) -> int:
    row = await do_set_override(ctx.session, SETUP, line="counters", day=date(2027, 10, 1), hours="", note="国庆")
    await commit(ctx.session)
    return row.id


@scenario("PUT", "/api/v1/hours/overrides")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/hours/overrides", ("hours.override",),
                json={"line": "counters", "day": "2027-10-01", "hours": "", "note": "国庆"})


@scenario("DELETE", "/api/v1/hours/overrides/{override_id}")
async def _(ctx: Ctx) -> Call:
    override_id = await _hours_override(ctx)
    await ctx.as_role("admin")
    return Call("DELETE", f"/api/v1/hours/overrides/{override_id}", ("hours.override_delete",))


@scenario("POST", "/admin/hours")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/hours", ("hours.override",),
                data={"line": "hotline", "day": "2027-10-02", "hours": "09:00-12:00", "note": "国庆值班"})


@scenario("POST", "/admin/hours/{override_id}/delete")
async def _(ctx: Ctx) -> Call:
    override_id = await _hours_override(ctx)
    await ctx.as_role("admin")
    return Call("POST", f"/admin/hours/{override_id}/delete", ("hours.override_delete",))


async def _accepted_callback(ctx: Ctx) -> int:
    agent = await desk_agent(ctx.factory, max_concurrent=1)
    busy = await queued_conversation(ctx.session)
    waiting = await queued_conversation(ctx.session)
    booked = await do_request_callback(ctx.session, SETUP, waiting, "13900004444")
    await conversations.do_close(ctx.session, busy, by="agent", user=agent)
    await commit(ctx.session)
    await ctx.session.refresh(waiting)
    await conversations.do_accept(ctx.session, agent, waiting)
    await commit(ctx.session)
    await ctx.log_in(agent)
    return booked.callback.id


@scenario("POST", "/api/v1/callbacks/{callback_id}/dial")
async def _(ctx: Ctx) -> Call:
    callback_id = await _accepted_callback(ctx)
    return Call("POST", f"/api/v1/callbacks/{callback_id}/dial", ("callback.dial",))


@scenario("POST", "/api/v1/callbacks/{callback_id}/outcome")
async def _(ctx: Ctx) -> Call:
    callback_id = await _accepted_callback(ctx)
    return Call("POST", f"/api/v1/callbacks/{callback_id}/outcome", ("callback.outcome",),
                json={"outcome": "reached"})


# ---------------------------------------------------------------- intent corrections (learning from production)


async def _intent_correction(ctx: Ctx, *, log_in_agent: bool = False) -> tuple[int, int]:
    """(message id, correction id or 0): a resident's message in an agent's chat, corrected unless the agent is
    the one to log in and do it."""
    from gasdesk.intent_corrections.service import do_correct_intent

    agent, conversation = await agent_with_conversation(ctx.factory)
    message = await resident_said(ctx.session, conversation, "燃气费怎么交", bot_intent="balance_query")
    if log_in_agent:
        await ctx.log_in(agent)
        return message.id, 0
    row = await do_correct_intent(ctx.session, agent, message, conversation, "payment_howto")
    await commit(ctx.session)
    await ctx.as_role("supervisor")
    return message.id, row.id


@scenario("POST", "/api/v1/bot/corrections")
async def _(ctx: Ctx) -> Call:
    message_id, _ = await _intent_correction(ctx, log_in_agent=True)
    return Call("POST", "/api/v1/bot/corrections", ("bot.correct_intent",),
                json={"message_id": message_id, "intent": "payment_howto"})


@scenario("POST", "/api/v1/bot/corrections/{correction_id}/review")
async def _(ctx: Ctx) -> Call:
    _, correction_id = await _intent_correction(ctx)
    return Call("POST", f"/api/v1/bot/corrections/{correction_id}/review", ("bot.review_correction",),
                json={"decision": "approve"})


@scenario("POST", "/admin/bot/corrections/{correction_id}/review")
async def _(ctx: Ctx) -> Call:
    _, correction_id = await _intent_correction(ctx)
    return Call("POST", f"/admin/bot/corrections/{correction_id}/review", ("bot.review_correction",),
                data={"decision": "reject"})


# ---------------------------------------------------------------- the job queue


async def _dead_job(ctx: Ctx) -> int:
    """A job whose only attempt failed (no handler is registered for its name), with a supervisor logged in."""
    item = enqueue(ctx.session, "audit.no_such_handler", {"n": 1}, max_attempts=1)
    await commit(ctx.session)
    job_id = item.id
    assert await run_due_jobs() == 1
    await ctx.as_role("supervisor")
    return job_id


@scenario("POST", "/api/v1/jobs/{job_id}/retry")
async def _(ctx: Ctx) -> Call:
    return Call("POST", f"/api/v1/jobs/{await _dead_job(ctx)}/retry", ("job.retry",))


@scenario("POST", "/api/v1/jobs/{job_id}/discard")
async def _(ctx: Ctx) -> Call:
    return Call("POST", f"/api/v1/jobs/{await _dead_job(ctx)}/discard", ("job.discard",))


@scenario("POST", "/admin/jobs/{job_id}/retry")
async def _(ctx: Ctx) -> Call:
    return Call("POST", f"/admin/jobs/{await _dead_job(ctx)}/retry", ("job.retry",))


@scenario("POST", "/admin/jobs/{job_id}/discard")
async def _(ctx: Ctx) -> Call:
    return Call("POST", f"/admin/jobs/{await _dead_job(ctx)}/discard", ("job.discard",))

# ---------------------------------------------------------------- smart tags and data links


TAG_RULE = {"tag": "旧改小区", "kind": "address", "params": {"district": "朝阳区", "communities": ["幸福里"]}}
TAG_RULE_FORM = {"tag": "旧改小区", "kind": "address", "district": "朝阳区", "values": "幸福里", "enabled": "on"}


async def _tag_rule(ctx: Ctx) -> int:
    from gasdesk.tags.schemas import RuleIn
    from gasdesk.tags.service import do_create_rule

    admin = await ctx.as_role("admin")
    rule = await do_create_rule(ctx.session, admin, RuleIn.model_validate(TAG_RULE))
    await commit(ctx.session)
    return rule.id


@scenario("POST", "/api/v1/tags/rules")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/tags/rules", ("tag_rule.create",), json=TAG_RULE)


@scenario("PUT", "/api/v1/tags/rules/{rule_id}")
async def _(ctx: Ctx) -> Call:
    rule_id = await _tag_rule(ctx)
    return Call("PUT", f"/api/v1/tags/rules/{rule_id}", ("tag_rule.update",), json={**TAG_RULE, "enabled": False})


@scenario("POST", "/admin/tags/rules")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/tags/rules", ("tag_rule.create",), data=TAG_RULE_FORM)


@scenario("POST", "/admin/tags/rules/{rule_id}")
async def _(ctx: Ctx) -> Call:
    rule_id = await _tag_rule(ctx)
    return Call("POST", f"/admin/tags/rules/{rule_id}", ("tag_rule.update",), data={**TAG_RULE_FORM, "tag": "老旧小区"})


@scenario("POST", "/api/v1/tags/assignments")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    await ctx.as_role("agent")
    return Call("POST", "/api/v1/tags/assignments", ("tag.add",), json={"tag": "重点关注", "customer_id": customer.id})


@scenario("POST", "/api/v1/tags/assignments/{assignment_id}/remove")
async def _(ctx: Ctx) -> Call:
    from gasdesk.tags.service import do_add_tag

    customer = await ctx.factory.customer()
    agent = await ctx.as_role("agent")
    row = await do_add_tag(ctx.session, agent, "重点关注", customer=customer)
    await commit(ctx.session)
    return Call("POST", f"/api/v1/tags/assignments/{row.id}/remove", ("tag.remove",))


async def _address_suggestion(ctx: Ctx) -> tuple[int, str]:
    """(address id, the suggestion's ref): a landline call about a customer's home, linked to the call's
    conversation by an agent but not to the customer's data."""
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_start_call

    customer = await ctx.factory.customer()
    call = await do_start_call(ctx.session, CallInfo(call_ref="audit-tags", caller="01065550000", callee="96777",
                                                     backend="sip"), script_version=None)
    conversation = await ctx.session.get(Conversation, call.conversation_id)
    await conversations.do_link_customer(ctx.session, SETUP, conversation, customer, how="agent")
    await commit(ctx.session)
    await ctx.as_role("agent")
    return customer.addresses[0].id, f"conv:{conversation.id}"


@scenario("POST", "/api/v1/tags/address-links/confirm")
async def _(ctx: Ctx) -> Call:
    address_id, ref = await _address_suggestion(ctx)
    return Call("POST", "/api/v1/tags/address-links/confirm", ("address_link.confirm",),
                json={"address_id": address_id, "ref": ref})


@scenario("POST", "/api/v1/tags/address-links/remove")
async def _(ctx: Ctx) -> Call:
    address_id, ref = await _address_suggestion(ctx)
    return Call("POST", "/api/v1/tags/address-links/remove", ("address_link.remove",),
                json={"address_id": address_id, "ref": ref})


@scenario("POST", "/tags/address/confirm")
async def _(ctx: Ctx) -> Call:
    address_id, ref = await _address_suggestion(ctx)
    return Call("POST", "/tags/address/confirm", ("address_link.confirm",),
                data={"address_id": str(address_id), "ref": ref, "district": "朝阳区", "text": "幸福里"})


@scenario("POST", "/tags/address/remove")
async def _(ctx: Ctx) -> Call:
    address_id, ref = await _address_suggestion(ctx)
    return Call("POST", "/tags/address/remove", ("address_link.remove",),
                data={"address_id": str(address_id), "ref": ref, "district": "朝阳区", "text": "幸福里"})


# ---------------------------------------------------------------- conversations and routing


@scenario("POST", "/api/v1/conversations/{conversation_id}/accept")
async def _(ctx: Ctx) -> Call:
    agent = await desk_agent(ctx.factory, presence="busy")  # staffed, but takes nothing automatically
    conversation = await queued_conversation(ctx.session)
    await ctx.log_in(agent)
    return Call("POST", f"/api/v1/conversations/{conversation.id}/accept", ("conversation.accept",))


@scenario("POST", "/api/v1/conversations/{conversation_id}/transfer")
async def _(ctx: Ctx) -> Call:
    _, conversation = await _assigned_conversation(ctx)
    other = await ctx.session.scalar(select(SkillGroup.id).where(SkillGroup.id != conversation.skill_group_id)
                                     .order_by(SkillGroup.id).limit(1))
    return Call("POST", f"/api/v1/conversations/{conversation.id}/transfer", ("conversation.transfer",),
                json={"to_group_id": other})


@scenario("POST", "/api/v1/conversations/{conversation_id}/close")
async def _(ctx: Ctx) -> Call:
    _, conversation = await _assigned_conversation(ctx)
    return Call("POST", f"/api/v1/conversations/{conversation.id}/close", ("conversation.close",))


@scenario("PUT", "/api/v1/conversations/{conversation_id}/customer")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    _, conversation = await _assigned_conversation(ctx)
    return Call("PUT", f"/api/v1/conversations/{conversation.id}/customer", ("conversation.link_customer",),
                json={"customer_id": customer.id})


@scenario("PUT", "/api/v1/agent/presence")
async def _(ctx: Ctx) -> Call:
    await ctx.log_in(await desk_agent(ctx.factory, presence="offline"))
    return Call("PUT", "/api/v1/agent/presence", ("agent.presence",), json={"presence": "online"})


@scenario("POST", "/api/v1/left-messages/{left_id}/handled")
async def _(ctx: Ctx) -> Call:
    left = await conversations.do_leave_message(ctx.session, None, phone="13912340000", content="请回电",
                                                reason="after_hours")
    await commit(ctx.session)
    await ctx.as_role("agent")
    return Call("POST", f"/api/v1/left-messages/{left.id}/handled", ("left_message.handled",))


@scenario("PUT", "/api/v1/skill-groups/{group_id}")
async def _(ctx: Ctx) -> Call:
    group = await ctx.session.get(SkillGroup, 1)
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/skill-groups/1", ("config.skill_group",), json={
        "name": group.name + "（新）", "routing_mode": group.routing_mode, "sticky_returning": group.sticky_returning,
        "queue_capacity": group.queue_capacity, "working_hours": group.working_hours,
        "default_handle_s": group.default_handle_s})


@scenario("POST", "/api/v1/handoff-rules")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/handoff-rules", ("config.handoff_rule",), json={
        "position": 3, "name": "说到投诉就转人工", "kind": "keyword", "params": {"keywords": ["投诉"]},
        "skill_group_id": 1, "priority": 2})


@scenario("PUT", "/api/v1/agents/{user_id}/skills")
async def _(ctx: Ctx) -> Call:
    agent = await staff_user(ctx.session, "agent")
    await ctx.as_role("supervisor")
    return Call("PUT", f"/api/v1/agents/{agent.id}/skills", ("config.agent_skills",),
                json={"skill_group_ids": [1], "max_concurrent": 3})


# ---------------------------------------------------------------- tickets (REST)


@scenario("POST", "/api/v1/tickets")
async def _(ctx: Ctx) -> Call:
    # From a left message: the ticket and the message's new status are both recorded.
    left = await conversations.do_leave_message(ctx.session, None, phone="13912340001", content="厨房有燃气味",
                                                reason="no_agent")
    await commit(ctx.session)
    await ctx.as_role("agent")
    return Call("POST", "/api/v1/tickets", ("ticket.create", "left_message.ticketed"),
                json={"type": "repair", "description": "", "left_message_id": left.id})


@scenario("POST", "/api/v1/tickets/{ticket_id}/actions")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/api/v1/tickets/{ticket.id}/actions", ("ticket.assign",),
                json={"action": "assign", "crew_id": crew.id})


@scenario("POST", "/api/v1/tickets/{ticket_id}/notes")
async def _(ctx: Ctx) -> Call:
    ticket = await wo_ticket(ctx.session)
    await ctx.as_role("agent")
    return Call("POST", f"/api/v1/tickets/{ticket.id}/notes", ("ticket.note",), json={"note": "居民补充：下午在家"})


@scenario("POST", "/api/v1/tickets/{ticket_id}/writeback")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session, status="in_progress", crew_id=crew.id)
    await ctx.log_in(crew)
    return Call("POST", f"/api/v1/tickets/{ticket.id}/writeback", ("ticket.writeback",),
                json={"result": "需要备件，明天再来", "resolved": False})


@scenario("POST", "/api/v1/tickets/{ticket_id}/photos")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session, status="in_progress", crew_id=crew.id)
    await ctx.log_in(crew)
    return Call("POST", f"/api/v1/tickets/{ticket.id}/photos", ("ticket.photo",), data=ctx.csrf_form(),
                files={"file": ("meter.png", WO_PNG, "image/png")})


@scenario("POST", "/api/v1/config/ticket-routing-rules")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/config/ticket-routing-rules", ("config.ticket_routing_rule",),
                json={"position": 5, "name": "维修按区分派", "ticket_types": ["repair"], "districts": ["和平区"],
                      "priority": "high"})


@scenario("PUT", "/api/v1/config/ticket-routing-rules/{rule_id}")
async def _(ctx: Ctx) -> Call:
    rule = await do_create_routing_rule(ctx.session, SETUP, {"position": 5, "name": "维修按区分派",
                                                              "ticket_types": ["repair"], "priority": "high"})
    await commit(ctx.session)
    await ctx.as_role("admin")
    return Call("PUT", f"/api/v1/config/ticket-routing-rules/{rule.id}", ("config.ticket_routing_rule",),
                json={"position": 6, "name": "维修按区分派", "ticket_types": ["repair"], "priority": "urgent"})


@scenario("PUT", "/api/v1/config/sla-policies")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/config/sla-policies", ("config.sla_policy",), json={
        "ticket_type": "repair", "priority": "normal", "respond_minutes": 17, "resolve_minutes": 601})


@scenario("PUT", "/api/v1/config/followup-policies/{ticket_type}")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/config/followup-policies/repair", ("config.followup_policy",),
                json={"delay_minutes": 31, "max_attempts": 2, "retry_minutes": 61})


# ---------------------------------------------------------------- tickets (pages)


@scenario("POST", "/tickets/views")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("agent")
    return Call("POST", "/tickets/views", ("view.save",), data={"view_name": "我的新工单", "status": "new"})


@scenario("POST", "/tickets/views/{view_id}/delete")
async def _(ctx: Ctx) -> Call:
    user = await ctx.as_role("agent")
    view = await do_save_view(ctx.session, user, "tickets", "我的新工单", "status=new")
    await commit(ctx.session)
    return Call("POST", f"/tickets/views/{view.id}/delete", ("view.delete",))


@scenario("POST", "/tickets/new")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("agent")
    return Call("POST", "/tickets/new", ("ticket.create",),
                data={"type": "repair", "priority": "normal", "description": "灶具打不着火"})


@scenario("POST", "/tickets/{ticket_id}/action")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/tickets/{ticket.id}/action", ("ticket.assign",),
                data={"action": "assign", "crew_id": str(crew.id)})


@scenario("POST", "/tickets/{ticket_id}/guidance")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    follower = await do_record_inbound_contact(ctx.session, ContactKind.wechat, "oAuditGuidance0001")
    await do_bind_contact(ctx.session, SETUP, follower, customer, how="agent")
    ticket = await wo_ticket(ctx.session, "consultation", customer_id=customer.id)
    await ctx.as_role("agent")
    return Call("POST", f"/tickets/{ticket.id}/guidance", ("outbound.queue",), data={"service_code": "阀管改造"})


@scenario("POST", "/tickets/{ticket_id}/note")
async def _(ctx: Ctx) -> Call:
    ticket = await wo_ticket(ctx.session)
    await ctx.as_role("agent")
    return Call("POST", f"/tickets/{ticket.id}/note", ("ticket.note",), data={"note": "居民补充：门铃坏了请敲门"})


@scenario("POST", "/dispatch/{ticket_id}/assign")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/dispatch/{ticket.id}/assign", ("ticket.assign",), data={"crew_id": str(crew.id)})


@scenario("POST", "/appointments/calendar/generate")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("dispatcher")
    first_day = (clock.utcnow() + timedelta(days=14)).date().isoformat()
    return Call("POST", "/appointments/calendar/generate", ("config.appointment_slots",),
                data={"district": "和平区", "first_day": first_day, "days": "2"})


@scenario("POST", "/crew/tickets/{ticket_id}/start")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session, status="assigned", crew_id=crew.id)
    await ctx.log_in(crew)
    return Call("POST", f"/crew/tickets/{ticket.id}/start", ("ticket.start",))


@scenario("POST", "/crew/tickets/{ticket_id}/writeback")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    ticket = await wo_ticket(ctx.session, status="in_progress", crew_id=crew.id)
    await ctx.log_in(crew)
    return Call("POST", f"/crew/tickets/{ticket.id}/writeback", ("ticket.photo", "ticket.writeback", "ticket.resolve"),
                data=ctx.csrf_form(result="更换表后阀门", resolved="on", material_name="表后阀门", material_qty="1"),
                files={"photos": ("valve.png", WO_PNG, "image/png")})


@scenario("POST", "/admin/webhooks")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/webhooks", ("config.webhook",),
                data={"url": "https://erp.example.com/hook", "name": "营收", "events": ["ticket.created"]})


@scenario("PUT", "/api/v1/wechat/menu")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/wechat/menu", ("config.wechat_menu",), json=DEFAULT_MENU)


@scenario("POST", "/api/v1/wechat/menu/push")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")  # no GASDESK_WECHAT_* in tests: the simulator's account and its in-process fake API
    return Call("POST", "/api/v1/wechat/menu/push", ("config.wechat_menu_push",))


@scenario("POST", "/admin/wechat-menu")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/wechat-menu", ("config.wechat_menu", "config.wechat_menu_push"),
                data={"menu": json.dumps(DEFAULT_MENU, ensure_ascii=False), "action": "push"})


# ---------------------------------------------------------------- appointments, webhooks, outages


@scenario("POST", "/api/v1/appointment-slots/generate")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("dispatcher")
    first_day = (clock.utcnow() + timedelta(days=21)).date().isoformat()
    return Call("POST", "/api/v1/appointment-slots/generate", ("config.appointment_slots",), json={
        "district": "和平区", "first_day": first_day, "days": 2, "windows": [["09:00", "12:00"]], "capacity": 4})


@scenario("POST", "/api/v1/appointments")
async def _(ctx: Ctx) -> Call:
    customer = await ctx.factory.customer()
    [slot, _] = await _slots(ctx)
    await ctx.as_role("agent")
    return Call("POST", "/api/v1/appointments", ("appointment.book", "ticket.create"),
                json={"customer_id": customer.id, "service": "安检", "slot_id": slot.id})


@scenario("POST", "/api/v1/appointments/{appointment_id}/reschedule")
async def _(ctx: Ctx) -> Call:
    appointment_id, other_slot = await _booking(ctx)
    await ctx.as_role("agent")
    return Call("POST", f"/api/v1/appointments/{appointment_id}/reschedule", ("appointment.reschedule",),
                json={"slot_id": other_slot})


@scenario("POST", "/api/v1/appointments/{appointment_id}/cancel")
async def _(ctx: Ctx) -> Call:
    appointment_id, _ = await _booking(ctx)
    await ctx.as_role("agent")
    return Call("POST", f"/api/v1/appointments/{appointment_id}/cancel", ("appointment.cancel",),
                json={"reason": "居民出差"})


@scenario("POST", "/api/v1/webhooks")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/webhooks", ("config.webhook",),
                json={"name": "营收", "url": "https://erp.example.com/hook", "events": ["ticket.created"]})


@scenario("POST", "/api/v1/outages")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/outages", ("config.outage",), json={
        "kind": "gas", "district": "和平区", "communities": ["幸福里小区"],
        "starts_at": "2026-12-01T09:00:00+08:00", "ends_at": "2026-12-01T18:00:00+08:00", "reason": "管网检修"})


async def _outage_notice(ctx: Ctx, *, publish: bool = False) -> int:
    from gasdesk.outages.service import AreaSpec, check_outage, do_create_outage, do_publish_outage

    await ctx.factory.customer(account_no="2100000077")  # 朝阳区幸福里小区
    now = clock.utcnow()
    notice = await do_create_outage(ctx.session, SETUP, check_outage(
        kind="gas", areas=[AreaSpec(district="朝阳区", community="幸福里小区")], starts_at=now,
        ends_at=now + timedelta(hours=6), reason="管网检修"))
    if publish:
        await do_publish_outage(ctx.session, SETUP, notice)
    await commit(ctx.session)
    return notice.id


OUTAGE_BODY = {"kind": "gas", "areas": [{"district": "朝阳区", "community": "幸福里小区"}],
               "starts_at": "2026-12-08T09:00:00+08:00", "ends_at": "2026-12-08T18:00:00+08:00", "reason": "管网检修"}
OUTAGE_FORM = {"kind": "gas", "planned": "sudden", "areas": "朝阳区,,幸福里小区,3", "starts_at": "2026-12-08T09:00",
               "ends_at": "2026-12-08T18:00", "reason": "管网检修"}


@scenario("POST", "/api/v1/outages/notices")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("dispatcher")
    return Call("POST", "/api/v1/outages/notices", ("outage.create",), json=OUTAGE_BODY)


@scenario("PUT", "/api/v1/outages/notices/{outage_id}")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx, publish=True)
    await ctx.as_role("dispatcher")
    return Call("PUT", f"/api/v1/outages/notices/{outage_id}", ("outage.update",),
                json={**OUTAGE_BODY, "progress_note": "抢修中"})


@scenario("POST", "/api/v1/outages/notices/{outage_id}/publish")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/outages/notices/{outage_id}/publish", ("outage.publish",))


@scenario("POST", "/api/v1/outages/notices/{outage_id}/close")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx, publish=True)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/api/v1/outages/notices/{outage_id}/close", ("outage.close",), json={"note": "已恢复"})


@scenario("POST", "/api/v1/outages/notices/{outage_id}/customers")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/api/v1/outages/notices/{outage_id}/customers", ("outage.import_customers",),
                data=ctx.csrf_form(), files={"file": ("list.csv", b"2100000077\n", "text/csv")})


@scenario("POST", "/outages/new")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("dispatcher")
    return Call("POST", "/outages/new", ("outage.create",), data=OUTAGE_FORM)


@scenario("POST", "/outages/{outage_id}/edit")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/outages/{outage_id}/edit", ("outage.edit",), data=OUTAGE_FORM)


@scenario("POST", "/outages/{outage_id}/publish")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/outages/{outage_id}/publish", ("outage.publish",))


@scenario("POST", "/outages/{outage_id}/close")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx, publish=True)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/outages/{outage_id}/close", ("outage.close",), data={"note": "已恢复"})


@scenario("POST", "/outages/{outage_id}/customers")
async def _(ctx: Ctx) -> Call:
    outage_id = await _outage_notice(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/outages/{outage_id}/customers", ("outage.import_customers",),
                data=ctx.csrf_form(), files={"file": ("list.csv", b"2100000077\n", "text/csv")})


# ---------------------------------------------------------------- knowledge base


@scenario("POST", "/api/v1/kb/articles")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/kb/articles", ("config.kb_article",),
                json={"title": "营业厅在哪里", "questions": ["营业厅地址"], "answer": "和平路 1 号"})


@scenario("PUT", "/api/v1/kb/articles/{article_id}")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx)
    await ctx.as_role("supervisor")
    return Call("PUT", f"/api/v1/kb/articles/{article_id}", ("config.kb_article",),
                json={"title": "改过的标题", "questions": ["怎么测试"], "answer": "换一种说法"})


@scenario("DELETE", "/api/v1/kb/articles/{article_id}")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx)
    await ctx.as_role("supervisor")
    return Call("DELETE", f"/api/v1/kb/articles/{article_id}", ("config.kb_article",))


@scenario("POST", "/api/v1/kb/articles/{article_id}/publish")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/kb/articles/{article_id}/publish", ("config.kb_article",))


@scenario("POST", "/api/v1/kb/articles/{article_id}/archive")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx, status="published")
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/kb/articles/{article_id}/archive", ("config.kb_article",))


async def _article_with_two_versions(ctx: Ctx) -> int:
    article_id = await _article(ctx)
    article = await access_article(ctx.session, article_id)
    data = check_article(title=article.title, questions="怎么测试", answer="第二版答案", category="常见问题")
    await do_update_article(ctx.session, SETUP, article, data)
    await commit(ctx.session)
    return article_id


@scenario("POST", "/api/v1/kb/articles/{article_id}/restore")
async def _(ctx: Ctx) -> Call:
    article_id = await _article_with_two_versions(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/kb/articles/{article_id}/restore", ("config.kb_article",), json={"version": 1})


@scenario("POST", "/api/v1/kb/import")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/kb/import", ("config.kb_article",), data=ctx.csrf_form(),
                files={"file": ("kb.csv", KB_CSV, "text/csv")})


@scenario("POST", "/admin/kb/new")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/kb/new", ("config.kb_article",), data=_kb_form())


@scenario("POST", "/admin/kb/import")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/kb/import", ("config.kb_article",), data=ctx.csrf_form(),
                files={"file": ("kb.csv", KB_CSV, "text/csv")})


@scenario("POST", "/admin/kb/{article_id}")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/kb/{article_id}", ("config.kb_article",), data=_kb_form(answer="和平路 3 号"))


@scenario("POST", "/admin/kb/{article_id}/status")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/kb/{article_id}/status", ("config.kb_article",), data={"status": "published"})


@scenario("POST", "/admin/kb/{article_id}/restore")
async def _(ctx: Ctx) -> Call:
    article_id = await _article_with_two_versions(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/kb/{article_id}/restore", ("config.kb_article",), data={"version": "1"})


async def _kb_suggestion(ctx: Ctx) -> str:
    from gasdesk.kb.service import record_miss
    from gasdesk.kb.suggestions import list_suggestions

    for question in ("发票抬头能改成公司吗", "发票抬头可以改成公司吗"):
        await record_miss(ctx.session, question, channel="webchat", intent=None, best_article_id=None, best_score=0.0)
    await commit(ctx.session)
    return (await list_suggestions(ctx.session))[0].key


@scenario("POST", "/admin/kb/suggestions/dismiss")
async def _(ctx: Ctx) -> Call:
    key = await _kb_suggestion(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/kb/suggestions/dismiss", ("config.kb_suggestion",), data={"key": key})


@scenario("POST", "/admin/kb/suggestions/draft")
async def _(ctx: Ctx) -> Call:
    key = await _kb_suggestion(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/kb/suggestions/draft", ("config.kb_suggestion", "config.kb_article"), data={"key": key})


@scenario("POST", "/admin/kb/{article_id}/delete")
async def _(ctx: Ctx) -> Call:
    article_id = await _article(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/kb/{article_id}/delete", ("config.kb_article",))


# ---------------------------------------------------------------- SMS callbacks, outbound notices

# Settings a scenario changes for its request (the SMS callback token); undone after every test.
_ENV = pytest.MonkeyPatch()
SMS_TOKEN = "audit-coverage-token"


@pytest.fixture(autouse=True)
def _undo_env() -> Any:
    yield
    _ENV.undo()
    reset_settings_cache()


def _sms_callbacks_on() -> None:
    _ENV.setenv("GASDESK_SMS_CALLBACK_TOKEN", SMS_TOKEN)
    reset_settings_cache()


@scenario("POST", "/channels/sms/{provider}/receipts")
async def _(ctx: Ctx) -> Call:
    _sms_callbacks_on()
    row = await do_queue_outbound(ctx.session, channel="sms", purpose=Purpose.chat, method="sms",
                                  recipient="13800138000", template_key="chat_reply", params={"text": "您好"})
    row.status, row.provider_id = "sent", "biz-audit-1"
    await commit(ctx.session)
    receipt = [{"phone_number": "13800138000", "send_time": "2024-05-06 11:00:00",
                "report_time": "2024-05-06 11:00:05", "success": False, "err_code": "MK:0001", "err_msg": "关机",
                "sms_size": "1", "biz_id": "biz-audit-1", "out_id": ""}]
    return Call("POST", f"/channels/sms/aliyun/receipts?token={SMS_TOKEN}", ("outbound.fail",), json=receipt)


@scenario("POST", "/channels/sms/{provider}/uplink")
async def _(ctx: Ctx) -> Call:
    _sms_callbacks_on()
    await ctx.factory.customer(phones=["13800138011"])
    reply = {"extend": "", "mobile": "13800138011", "nationcode": "86", "sign": "燃气客服", "text": "你好",
             "time": int(clock.utcnow().timestamp())}
    # A number on file is bound to its customer, and so is the conversation it starts.
    return Call("POST", f"/channels/sms/tencent/uplink?token={SMS_TOKEN}",
                ("contact.bind", "conversation.link_customer"), json=reply)


@scenario("POST", "/admin/notice-templates")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/notice-templates", ("config.notice_template",),
                data={"channel": "sms", "purpose": "ticket_progress", "provider_template_id": "SMS_123456",
                      "fields": "ticket_no\nstatus\nhotline", "body": "", "enabled": "1"})


@scenario("PUT", "/api/v1/notice-templates/{channel}/{purpose}")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/notice-templates/sms/chat_reply", ("config.notice_template",),
                json={"provider_template_id": "1234567", "fields": {"1": "text"}, "body": "", "enabled": True})


# ---------------------------------------------------------------- wall screen


@scenario("PUT", "/api/v1/wall/thresholds")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/wall/thresholds", ("config.wall_threshold",),
                json={"waiting": {"amber": 5, "red": 15}})


@scenario("POST", "/admin/wall")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/wall", ("config.wall_threshold",),
                data={"waiting.amber": "8", "waiting.red": "16", "longest_wait_s.amber": "60",
                      "longest_wait_s.red": "180", "sla_breached.red": "0", "sla_at_risk.amber": "0",
                      "sla_at_risk.red": "10", "emergencies.red": "0"})


# ---------------------------------------------------------------- notifications


@scenario("POST", "/api/v1/notifications/read-all")
async def _(ctx: Ctx) -> Call:
    user = await ctx.as_role("dispatcher")
    await _notification(ctx, user)
    return Call("POST", "/api/v1/notifications/read-all", ("notification.read_all",))


@scenario("POST", "/api/v1/notifications/{notification_id}/read")
async def _(ctx: Ctx) -> Call:
    user = await ctx.as_role("field_crew")
    note_id = await _notification(ctx, user)
    return Call("POST", f"/api/v1/notifications/{note_id}/read", ("notification.read",))


@scenario("POST", "/notifications/read-all")
async def _(ctx: Ctx) -> Call:
    user = await ctx.as_role("agent")
    await _notification(ctx, user)
    return Call("POST", "/notifications/read-all", ("notification.read_all",))


@scenario("POST", "/notifications/{notification_id}/read")
async def _(ctx: Ctx) -> Call:
    user = await ctx.as_role("supervisor")
    note_id = await _notification(ctx, user)
    return Call("POST", f"/notifications/{note_id}/read", ("notification.read",))


# ---------------------------------------------------------------- the hotline (scenarios must be registered
# before the parametrized route test below, which lists SCENARIOS when it is defined)


@scenario("POST", "/api/v1/ivr/scripts")
async def _(ctx: Ctx) -> Call:
    from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT

    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/ivr/scripts", ("ivr_script.save",), json={"body": DEFAULT_SCRIPT, "note": "复制"})


@scenario("POST", "/api/v1/ivr/scripts/{version}/activate")
async def _(ctx: Ctx) -> Call:
    from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT
    from gasdesk.telephony.service import do_save_ivr_script

    row = await do_save_ivr_script(ctx.session, SETUP, DEFAULT_SCRIPT)
    await commit(ctx.session)
    await ctx.as_role("admin")
    return Call("POST", f"/api/v1/ivr/scripts/{row.version}/activate", ("ivr_script.activate",))


@scenario("POST", "/admin/ivr")
async def _(ctx: Ctx) -> Call:
    import json

    from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT

    await ctx.as_role("admin")
    return Call("POST", "/admin/ivr", ("ivr_script.save", "ivr_script.activate"),
                data={"script": json.dumps(DEFAULT_SCRIPT, ensure_ascii=False), "note": "页面保存", "activate": "1"})


@scenario("POST", "/admin/ivr/{version}/activate")
async def _(ctx: Ctx) -> Call:
    from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT
    from gasdesk.telephony.service import do_save_ivr_script

    row = await do_save_ivr_script(ctx.session, SETUP, DEFAULT_SCRIPT)
    await commit(ctx.session)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/ivr/{row.version}/activate", ("ivr_script.activate",))


def _prompt_wav() -> bytes:
    """A 0.3 s 440 Hz tone as an 8 kHz mono WAV (a recorded prompt)."""
    import io
    import math
    import struct
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                                 for i in range(2400)))
    return out.getvalue()


async def _uploaded_prompt(ctx: Ctx, key: str) -> None:
    from gasdesk.config import get_settings
    from gasdesk.telephony.tts import do_upload_prompt

    await do_upload_prompt(ctx.session, SETUP, get_settings(), key=key, filename="p.wav", data=_prompt_wav())
    await commit(ctx.session)


@scenario("POST", "/api/v1/ivr/prompts/{key}")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/api/v1/ivr/prompts/main.prompt", ("prompt.upload",), data=ctx.csrf_form(),
                files={"file": ("welcome.wav", _prompt_wav(), "audio/wav")})


@scenario("DELETE", "/api/v1/ivr/prompts/{key}")
async def _(ctx: Ctx) -> Call:
    await _uploaded_prompt(ctx, "bye.prompt")
    await ctx.as_role("admin")
    return Call("DELETE", "/api/v1/ivr/prompts/bye.prompt", ("prompt.delete",))


@scenario("POST", "/admin/ivr/prompts/{key}")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/ivr/prompts/prompts.wait", ("prompt.upload",), data=ctx.csrf_form(),
                files={"file": ("wait.wav", _prompt_wav(), "audio/wav")})


@scenario("POST", "/admin/ivr/prompts/{key}/delete")
async def _(ctx: Ctx) -> Call:
    await _uploaded_prompt(ctx, "main.invalid_prompt")
    await ctx.as_role("admin")
    return Call("POST", "/admin/ivr/prompts/main.invalid_prompt/delete", ("prompt.delete",))


# ---------------------------------------------------------------- the browser softphone (embedded hotline)

# Peer connections a scenario opens for its request (the "browser"): closed after every test, with the provider.
_BROWSERS: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_softphones() -> Any:
    yield
    from gasdesk.telephony.softphone import installed_provider

    provider = installed_provider()
    if provider is not None:
        await provider.close()
    while _BROWSERS:
        await _BROWSERS.pop().close()


async def _offered_call(ctx: Ctx, *, answered: bool = False, assigned: bool = False) -> tuple[int, Any]:
    """A hotline call offered to a logged-in agent's softphone (answered by an in-process aiortc "browser")."""
    from gasdesk.telephony.media import BridgeTarget, CallInfo
    from gasdesk.telephony.service import do_start_call
    from gasdesk.telephony.softphone import WebRtcBridgeProvider
    from tests.telephony.softphone_kit import FakeBrowser

    agent = await desk_agent(ctx.factory)
    info = CallInfo(call_ref=f"audit-{agent.id}", caller="13900000091", callee="96777", backend="sip")
    call = await do_start_call(ctx.session, info, script_version=None)
    await commit(ctx.session)
    if assigned:
        conversation = await ctx.session.get(Conversation, call.conversation_id)
        group = await ctx.session.get(SkillGroup, 1)
        await conversations.do_handoff(ctx.session, conversation, group=group, reason="request", priority=0)
        await commit(ctx.session)
    provider = WebRtcBridgeProvider()
    provider.install()
    leg = await provider(BridgeTarget(agent.id, f"agent:{agent.id}"), info)
    browser = FakeBrowser()
    _BROWSERS.append(browser)
    if answered:
        from aiortc import RTCSessionDescription

        answer = await leg.answer(await browser.offer())
        await browser.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(leg.wait_answered(), 10)

        class Media:  # the SIP session's hold, as far as this route reaches it
            async def hold(self, on: bool) -> None:
                pass

        leg.media = Media()
    await ctx.log_in(agent)
    return call.id, browser


@scenario("POST", "/api/v1/calls/{call_id}/softphone/answer")
async def _(ctx: Ctx) -> Call:
    call_id, browser = await _offered_call(ctx)
    return Call("POST", f"/api/v1/calls/{call_id}/softphone/answer", ("call.softphone_answer",),
                json={"sdp": await browser.offer()})


@scenario("POST", "/api/v1/calls/{call_id}/softphone/reject")
async def _(ctx: Ctx) -> Call:
    call_id, _ = await _offered_call(ctx)
    return Call("POST", f"/api/v1/calls/{call_id}/softphone/reject", ("call.softphone_reject",))


@scenario("POST", "/api/v1/calls/{call_id}/softphone/hangup")
async def _(ctx: Ctx) -> Call:
    call_id, _ = await _offered_call(ctx, answered=True)
    return Call("POST", f"/api/v1/calls/{call_id}/softphone/hangup", ("call.softphone_hangup",))


@scenario("POST", "/api/v1/calls/{call_id}/softphone/hold")
async def _(ctx: Ctx) -> Call:
    call_id, _ = await _offered_call(ctx, answered=True)
    return Call("POST", f"/api/v1/calls/{call_id}/softphone/hold", ("call.softphone_hold",), json={"on": True})


@scenario("POST", "/api/v1/calls/{call_id}/softphone/transfer")
async def _(ctx: Ctx) -> Call:
    call_id, _ = await _offered_call(ctx, answered=True, assigned=True)
    return Call("POST", f"/api/v1/calls/{call_id}/softphone/transfer",
                ("call.softphone_transfer", "conversation.transfer"), json={"to_group_id": 1})


# ---------------------------------------------------------------- quality inspection (质检)


async def _quality_score(ctx: Ctx) -> tuple[User, int]:
    """A conversation an agent answered and closed, scored by the quality job: (the agent, the score id)."""
    from gasdesk.conversations.models import SenderType
    from gasdesk.quality.service import do_score_conversation

    agent, conversation = await _assigned_conversation(ctx)
    await conversations.do_accept(ctx.session, agent, conversation)
    await conversations.do_post_message(ctx.session, conversation, SenderType.agent, text="户号多少？", user=agent)
    await conversations.do_close(ctx.session, conversation, by="agent", user=agent)
    await commit(ctx.session)
    row = await do_score_conversation(ctx.session, conversation)
    assert row is not None
    await commit(ctx.session)
    return agent, row.id


async def _quality_appealed(ctx: Ctx) -> int:
    from gasdesk.quality.service import access_score, do_appeal

    agent, score_id = await _quality_score(ctx)
    await do_appeal(ctx.session, agent, await access_score(ctx.session, agent, score_id), reason="居民未回复")
    await commit(ctx.session)
    return score_id


@scenario("POST", "/api/v1/quality/scores/{score_id}/adjust")
async def _(ctx: Ctx) -> Call:
    _, score_id = await _quality_score(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/quality/scores/{score_id}/adjust", ("quality.adjust",),
                json={"score": 88, "reason": "复核后调整"})


@scenario("POST", "/api/v1/quality/scores/{score_id}/appeal")
async def _(ctx: Ctx) -> Call:
    _, score_id = await _quality_score(ctx)  # the agent is logged in
    return Call("POST", f"/api/v1/quality/scores/{score_id}/appeal", ("quality.appeal",), json={"reason": "已及时回复"})


@scenario("POST", "/api/v1/quality/scores/{score_id}/appeal/resolve")
async def _(ctx: Ctx) -> Call:
    score_id = await _quality_appealed(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/quality/scores/{score_id}/appeal/resolve", ("quality.appeal_resolve",),
                json={"outcome": "rejected", "note": "维持原分"})


@scenario("POST", "/quality/sheets")
async def _(ctx: Ctx) -> Call:
    import json

    from gasdesk.quality.rules import DEFAULT_SHEET

    await ctx.as_role("supervisor")
    return Call("POST", "/quality/sheets", ("quality_sheet.save", "quality_sheet.activate"),
                data={"sheet": json.dumps(DEFAULT_SHEET, ensure_ascii=False), "note": "页面保存", "activate": "1"})


@scenario("POST", "/quality/sheets/{sheet_id}/activate")
async def _(ctx: Ctx) -> Call:
    from gasdesk.quality.rules import DEFAULT_SHEET
    from gasdesk.quality.service import do_save_sheet

    row = await do_save_sheet(ctx.session, SETUP, team_id=None, body=DEFAULT_SHEET)
    await commit(ctx.session)
    await ctx.as_role("admin")
    return Call("POST", f"/quality/sheets/{row.id}/activate", ("quality_sheet.activate",))


@scenario("POST", "/quality/scores/{score_id}/adjust")
async def _(ctx: Ctx) -> Call:
    _, score_id = await _quality_score(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/quality/scores/{score_id}/adjust", ("quality.adjust",),
                data={"score": "92.5", "reason": "页面调整"})


@scenario("POST", "/quality/scores/{score_id}/review")
async def _(ctx: Ctx) -> Call:
    _, score_id = await _quality_score(ctx)  # low score: sampled, pending review
    await ctx.as_role("supervisor")
    return Call("POST", f"/quality/scores/{score_id}/review", ("quality.review",))


@scenario("POST", "/quality/scores/{score_id}/appeal")
async def _(ctx: Ctx) -> Call:
    _, score_id = await _quality_score(ctx)
    return Call("POST", f"/quality/scores/{score_id}/appeal", ("quality.appeal",), data={"reason": "页面申诉"})


@scenario("POST", "/quality/scores/{score_id}/appeal/resolve")
async def _(ctx: Ctx) -> Call:
    score_id = await _quality_appealed(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/quality/scores/{score_id}/appeal/resolve", ("quality.appeal_resolve",),
                data={"outcome": "upheld", "score": "95", "note": "申诉成立"})


# ---------------------------------------------------------------- emergency escalation (gasdesk/emergency)


async def _emergency(ctx: Ctx, *, acknowledged: bool = False) -> int:
    """An open emergency event (level Ⅱ, the built-in path), acknowledged by a supervisor if asked."""
    from gasdesk.emergency.service import do_acknowledge, do_open_emergency

    event = await do_open_emergency(ctx.session, SETUP, source="manual", level=2, title="调压站泄漏", description="")
    if acknowledged:
        await do_acknowledge(ctx.session, await staff_user(ctx.session, "supervisor"), event)
    await commit(ctx.session)
    return event.id


async def _duty(ctx: Ctx) -> int:
    from gasdesk.emergency.service import do_add_duty

    user = await staff_user(ctx.session, "dispatcher")
    now = clock.utcnow()
    row = await do_add_duty(ctx.session, SETUP, user_id=user.id, duty_role="repair_dispatch", starts_at=now,
                            ends_at=now + timedelta(hours=8))
    await commit(ctx.session)
    return row.id


@scenario("POST", "/api/v1/emergency/events")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("dispatcher")
    return Call("POST", "/api/v1/emergency/events", ("emergency.open", "emergency.escalate"),
                json={"level": 1, "title": "和平路调压站泄漏", "description": "现场有明显气味"})


@scenario("POST", "/api/v1/emergency/events/{event_id}/acknowledge")
async def _(ctx: Ctx) -> Call:
    event_id = await _emergency(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/emergency/events/{event_id}/acknowledge", ("emergency.acknowledge",))


@scenario("POST", "/api/v1/emergency/events/{event_id}/close")
async def _(ctx: Ctx) -> Call:
    event_id = await _emergency(ctx, acknowledged=True)
    await ctx.as_role("supervisor")
    return Call("POST", f"/api/v1/emergency/events/{event_id}/close", ("emergency.close",),
                json={"summary": "关阀抢修完毕，现场已恢复"})


@scenario("POST", "/api/v1/emergency/events/{event_id}/cancel")
async def _(ctx: Ctx) -> Call:
    event_id = await _emergency(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/api/v1/emergency/events/{event_id}/cancel", ("emergency.cancel",), json={"reason": "误报"})


@scenario("PUT", "/api/v1/emergency/policies/{level}")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("PUT", "/api/v1/emergency/policies/3", ("config.emergency_policy",), json={"steps": [
        {"duty_roles": ["repair_dispatch"], "channels": ["in_app"], "timeout_min": 10}]})


@scenario("POST", "/api/v1/emergency/duty")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "dispatcher")
    await ctx.as_role("admin")
    now = clock.utcnow()
    return Call("POST", "/api/v1/emergency/duty", ("config.duty_add",), json={
        "user_id": user.id, "duty_role": "shift_lead", "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=8)).isoformat()})


@scenario("DELETE", "/api/v1/emergency/duty/{duty_id}")
async def _(ctx: Ctx) -> Call:
    duty_id = await _duty(ctx)
    await ctx.as_role("admin")
    return Call("DELETE", f"/api/v1/emergency/duty/{duty_id}", ("config.duty_remove",))


@scenario("PUT", "/api/v1/emergency/contacts/{user_id}")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "dispatcher")
    await ctx.as_role("admin")
    return Call("PUT", f"/api/v1/emergency/contacts/{user.id}", ("config.staff_contact",),
                json={"mobile": "13800138011", "wechat_openid": ""})


@scenario("POST", "/emergency")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/emergency", ("emergency.open",), data={"level": "2", "title": "主干管破损", "description": ""})


@scenario("POST", "/emergency/{event_id}/acknowledge")
async def _(ctx: Ctx) -> Call:
    event_id = await _emergency(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/emergency/{event_id}/acknowledge", ("emergency.acknowledge",), data={"back": "board"})


@scenario("POST", "/emergency/{event_id}/close")
async def _(ctx: Ctx) -> Call:
    event_id = await _emergency(ctx, acknowledged=True)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/emergency/{event_id}/close", ("emergency.close",), data={"summary": "抢修完毕，恢复供气"})


@scenario("POST", "/emergency/{event_id}/cancel")
async def _(ctx: Ctx) -> Call:
    event_id = await _emergency(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", f"/emergency/{event_id}/cancel", ("emergency.cancel",), data={"reason": "演练"})


@scenario("POST", "/admin/emergency")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/emergency", ("config.emergency_policy",), data={
        "level": "4", "s1_duty": "repair_dispatch", "s1_channels": "in_app", "s1_timeout": "30", "s1_next": ""})


@scenario("POST", "/admin/duty")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "supervisor")
    await ctx.as_role("admin")
    return Call("POST", "/admin/duty", ("config.duty_add",), data={
        "user_id": str(user.id), "duty_role": "safety_lead", "starts_at": "2026-12-07T08:00",
        "ends_at": "2026-12-07T20:00"})


@scenario("POST", "/admin/duty/{duty_id}/delete")
async def _(ctx: Ctx) -> Call:
    duty_id = await _duty(ctx)
    await ctx.as_role("admin")
    return Call("POST", f"/admin/duty/{duty_id}/delete", ("config.duty_remove",))


@scenario("POST", "/admin/duty/contacts/{user_id}")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "supervisor")
    await ctx.as_role("admin")
    return Call("POST", f"/admin/duty/contacts/{user.id}", ("config.staff_contact",),
                data={"mobile": "13800138012", "wechat_openid": "oAbCdEfGhIjK"})


# ---------------------------------------------------------------- internal chat (staff)


async def _staff_chat(ctx: Ctx, *, log_in_as_owner: bool = True) -> tuple[User, User, int]:
    """A group chat of a dispatcher (owner, logged in) and a field crew member: (owner, crew, chat id)."""
    from gasdesk.internal_chat.service import do_create_group

    owner = await staff_user(ctx.session, "dispatcher")
    crew = await staff_user(ctx.session, "field_crew")
    chat = await do_create_group(ctx.session, owner, "巡线组", [crew.id])
    await commit(ctx.session)
    if log_in_as_owner:
        await ctx.log_in(owner)
    return owner, crew, chat.id


@scenario("POST", "/api/v1/internal-chats")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    await ctx.as_role("dispatcher")
    return Call("POST", "/api/v1/internal-chats", ("ichat.create",), json={"name": "改线一班", "member_ids": [crew.id]})


@scenario("POST", "/api/v1/internal-chats/direct")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    await ctx.as_role("agent")
    return Call("POST", "/api/v1/internal-chats/direct", ("ichat.create",), json={"user_id": crew.id})


@scenario("POST", "/api/v1/internal-chats/{chat_id}/members")
async def _(ctx: Ctx) -> Call:
    _, _, chat_id = await _staff_chat(ctx)
    newcomer = await staff_user(ctx.session, "agent")
    return Call("POST", f"/api/v1/internal-chats/{chat_id}/members", ("ichat.member_add",), json={"user_id": newcomer.id})


@scenario("DELETE", "/api/v1/internal-chats/{chat_id}/members/{user_id}")
async def _(ctx: Ctx) -> Call:
    _, crew, chat_id = await _staff_chat(ctx)
    return Call("DELETE", f"/api/v1/internal-chats/{chat_id}/members/{crew.id}", ("ichat.member_remove",))


@scenario("POST", "/api/v1/internal-chats/{chat_id}/messages")
async def _(ctx: Ctx) -> Call:
    _, _, chat_id = await _staff_chat(ctx)
    return Call("POST", f"/api/v1/internal-chats/{chat_id}/messages", ("ichat.message",), json={"text": "明早巡线"})


@scenario("POST", "/api/v1/internal-chats/{chat_id}/files")
async def _(ctx: Ctx) -> Call:
    _, _, chat_id = await _staff_chat(ctx)
    return Call("POST", f"/api/v1/internal-chats/{chat_id}/files", ("ichat.file",), data=ctx.csrf_form(),
                files={"file": ("现场.png", WO_PNG, "image/png")})


async def _video_session(ctx: Ctx, *, recording: bool) -> int:
    """An accepted video assist session of a logged-in agent's conversation (gasdesk/video)."""
    from gasdesk.video import service as video

    agent = await ctx.log_in(await desk_agent(ctx.factory))
    conversation = await queued_conversation(ctx.session)
    conversation = await video.access_conversation_to_invite(ctx.session, agent, conversation.id)
    session = await video.do_invite(ctx.session, agent, conversation, recording=recording)
    await video.do_answer_invite(ctx.session, session, accept=True, recording=recording)
    await commit(ctx.session)
    return session.id


@scenario("POST", "/api/v1/video/{session_id}/snapshots")
async def _(ctx: Ctx) -> Call:
    sid = await _video_session(ctx, recording=False)
    return Call("POST", f"/api/v1/video/{sid}/snapshots", ("video.snapshot",), data=ctx.csrf_form(),
                files={"file": ("截图.png", WO_PNG, "image/png")})


@scenario("POST", "/api/v1/video/{session_id}/recordings")
async def _(ctx: Ctx) -> Call:
    sid = await _video_session(ctx, recording=True)
    return Call("POST", f"/api/v1/video/{sid}/recordings", ("video.recording",), data=ctx.csrf_form(),
                files={"file": ("录像.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 64, "video/webm")})


@scenario("POST", "/api/v1/internal-chats/{chat_id}/cards")
async def _(ctx: Ctx) -> Call:
    _, _, chat_id = await _staff_chat(ctx)
    ticket = await wo_ticket(ctx.session, "repair")
    return Call("POST", f"/api/v1/internal-chats/{chat_id}/cards", ("ichat.share",),
                json={"type": "ticket", "ref": ticket.number})


@scenario("POST", "/api/v1/internal-chats/{chat_id}/read")
async def _(ctx: Ctx) -> Call:
    from gasdesk.internal_chat.service import access_chat, do_post_message

    owner, crew, chat_id = await _staff_chat(ctx, log_in_as_owner=False)
    await do_post_message(ctx.session, owner, await access_chat(ctx.session, owner, chat_id), "收到请回复")
    await commit(ctx.session)
    await ctx.log_in(crew)
    return Call("POST", f"/api/v1/internal-chats/{chat_id}/read", ("ichat.read",), json={})


@scenario("POST", "/ichat/groups")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    await ctx.as_role("supervisor")
    return Call("POST", "/ichat/groups", ("ichat.create",), data={"name": "安检组", "member_ids": [str(crew.id)]})


@scenario("POST", "/ichat/direct")
async def _(ctx: Ctx) -> Call:
    crew = await staff_user(ctx.session, "field_crew")
    await ctx.as_role("dispatcher")
    return Call("POST", "/ichat/direct", ("ichat.create",), data={"user_id": str(crew.id)})

# ---------------------------------------------------------------- rostering (gasdesk/rostering)


async def _roster_draft(ctx: Ctx) -> int:
    """A draft roster of February 2027 (one early shift, stored without solving); a supervisor logs in."""
    from gasdesk.rostering.service import build_problem, do_store_roster, shift_templates
    from gasdesk.rostering.solver import Solution

    agent = await staff_user(ctx.session, "agent")
    early = next(s for s in await shift_templates(ctx.session) if s.code == "early")
    problem = await build_problem(ctx.session, date(2027, 2, 1))
    roster = await do_store_roster(ctx.session, SETUP, problem, Solution(
        status="FEASIBLE", objective=0.0, seconds=0.0, assignments={(agent.id, date(2027, 2, 2)): early.id},
        unmet=[], staff_short=[]))
    await commit(ctx.session)
    await ctx.as_role("supervisor")
    return roster.id


@scenario("POST", "/api/v1/roster/generate")
async def _(ctx: Ctx) -> Call:
    await staff_user(ctx.session, "agent")
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/roster/generate", ("roster.generate",), json={"month": "2027-02", "time_limit_s": 1})


@scenario("POST", "/admin/roster/generate")
async def _(ctx: Ctx) -> Call:
    await staff_user(ctx.session, "agent")
    await ctx.as_role("admin")
    return Call("POST", "/admin/roster/generate", ("roster.generate",), data={"month": "2027-02", "time_limit_s": "1"})


@scenario("PUT", "/api/v1/roster/{roster_id}/cells")
async def _(ctx: Ctx) -> Call:
    roster_id = await _roster_draft(ctx)
    user = await staff_user(ctx.session, "agent")
    return Call("PUT", f"/api/v1/roster/{roster_id}/cells", ("roster.edit",), json={"user_id": user.id,
                                                                                  "day": "2027-02-03"})


@scenario("POST", "/admin/roster/{roster_id}/cell")
async def _(ctx: Ctx) -> Call:
    from gasdesk.rostering.service import shift_templates

    roster_id = await _roster_draft(ctx)
    user = await staff_user(ctx.session, "agent")
    middle = next(s for s in await shift_templates(ctx.session) if s.code == "middle")
    return Call("POST", f"/admin/roster/{roster_id}/cell", ("roster.edit",), headers={"HX-Request": "true"},
                data={"user_id": str(user.id), "day": "2027-02-04", "shift_id": str(middle.id)})


@scenario("POST", "/api/v1/roster/{roster_id}/publish")
async def _(ctx: Ctx) -> Call:
    roster_id = await _roster_draft(ctx)
    return Call("POST", f"/api/v1/roster/{roster_id}/publish", ("roster.publish",))


@scenario("POST", "/admin/roster/{roster_id}/publish")
async def _(ctx: Ctx) -> Call:
    roster_id = await _roster_draft(ctx)
    return Call("POST", f"/admin/roster/{roster_id}/publish", ("roster.publish",))


@scenario("POST", "/admin/roster/setup/rules")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/roster/setup/rules", ("config.roster_rules",),
                data={"history_weeks": "6", "agents_per_contact": "0.3", "min_rest_hours": "12"})


@scenario("POST", "/admin/roster/setup/shifts")
async def _(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/roster/setup/shifts", ("config.roster_shift",),
                data={"code": "late", "name": "晚班", "start": "18:00", "hours": "6", "covers_contacts": "on",
                      "active": "on"})


@scenario("POST", "/admin/roster/setup/shifts/{shift_id}")
async def _(ctx: Ctx) -> Call:
    from gasdesk.rostering.service import shift_templates

    early = next(s for s in await shift_templates(ctx.session) if s.code == "early")
    await ctx.as_role("admin")
    return Call("POST", f"/admin/roster/setup/shifts/{early.id}", ("config.roster_shift",),
                data={"code": "early", "name": "早班", "start": "07:30", "hours": "8", "covers_contacts": "on",
                      "roles": ["agent", "supervisor"], "active": "on"})


@scenario("POST", "/admin/roster/setup/leave")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "agent")
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/roster/setup/leave", ("roster.leave_add",),
                data={"user_id": str(user.id), "start_day": "2027-02-08", "end_day": "2027-02-10", "note": "年假"})


@scenario("POST", "/admin/roster/setup/leave/{leave_id}/delete")
async def _(ctx: Ctx) -> Call:
    from gasdesk.rostering.schemas import LeaveIn
    from gasdesk.rostering.service import do_add_leave

    user = await staff_user(ctx.session, "agent")
    row = await do_add_leave(ctx.session, SETUP, LeaveIn(user_id=user.id, start_day=date(2027, 2, 8),
                                                          end_day=date(2027, 2, 9)))
    await commit(ctx.session)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/roster/setup/leave/{row.id}/delete", ("roster.leave_remove",))


@scenario("POST", "/admin/roster/setup/preferences")
async def _(ctx: Ctx) -> Call:
    user = await staff_user(ctx.session, "agent")
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/roster/setup/preferences", ("roster.preference_add",),
                data={"user_id": str(user.id), "kind": "avoid", "weekday": "6"})


@scenario("POST", "/admin/roster/setup/preferences/{preference_id}/delete")
async def _(ctx: Ctx) -> Call:
    from gasdesk.rostering.schemas import PreferenceIn
    from gasdesk.rostering.service import do_add_preference

    user = await staff_user(ctx.session, "agent")
    row = await do_add_preference(ctx.session, SETUP, PreferenceIn(user_id=user.id, kind="prefer", weekday=1))
    await commit(ctx.session)
    await ctx.as_role("supervisor")
    return Call("POST", f"/admin/roster/setup/preferences/{row.id}/delete", ("roster.preference_remove",))


# ---------------------------------------------------------------- training (gasdesk/training)


async def _training_exam(ctx: Ctx) -> int:
    """A bank of two questions and an exam of both."""
    from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn
    from gasdesk.training.service import do_add_question, do_create_bank, do_create_exam

    bank = await do_create_bank(ctx.session, SETUP, BankIn(name="审计题库"))
    await do_add_question(ctx.session, SETUP, bank, QuestionIn(kind="true_false", prompt="对吗", value=True))
    await do_add_question(ctx.session, SETUP, bank, QuestionIn(kind="short_answer", prompt="要点", keywords=["开窗"]))
    exam = await do_create_exam(ctx.session, SETUP, ExamIn(bank_id=bank.id, title="审计考试", question_count=2,
                                                           time_limit_min=10, pass_mark=60))
    await commit(ctx.session)
    return exam.id


async def _training_attempt(ctx: Ctx) -> int:
    """An agent logs in and starts the exam."""
    from gasdesk.training.service import access_exam, do_start_attempt

    exam = await access_exam(ctx.session, await _training_exam(ctx))
    user = await ctx.as_role("agent")
    attempt = await do_start_attempt(ctx.session, user, exam)
    await commit(ctx.session)
    return attempt.id


async def _training_sparring(ctx: Ctx) -> int:
    """An agent logs in and starts the gas-leak sparring scenario."""
    from gasdesk.training.service import do_install_default_scenarios, do_start_sparring, list_scenarios

    await do_install_default_scenarios(ctx.session, SETUP)
    await commit(ctx.session)
    scenario = next(s for s in await list_scenarios(ctx.session) if s.code == "gas_leak_report")
    user = await ctx.as_role("agent")
    row = await do_start_sparring(ctx.session, user, scenario)
    await commit(ctx.session)
    return row.id


async def _training_article(ctx: Ctx) -> int:
    article = await do_create_article(ctx.session, SETUP, check_article(
        title="培训用文章", questions=["怎么办"], answer="开窗通风", category="安全用气"), status="published")
    await commit(ctx.session)
    return article.id


@scenario("POST", "/api/v1/training/materials")
async def _api_training_material(ctx: Ctx) -> Call:
    article_id = await _training_article(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/training/materials", ("training.material_add",), json={"kb_article_id": article_id})


@scenario("POST", "/admin/training/materials")
async def _page_training_material(ctx: Ctx) -> Call:
    article_id = await _training_article(ctx)
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/training/materials", ("training.material_add",), data={"kb_article_id": str(article_id)})


@scenario("POST", "/api/v1/training/materials/upload")
async def _api_training_upload(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/training/materials/upload", ("training.material_add",), data=ctx.csrf_form(title="话术"),
                files={"file": ("话术.txt", "先问候".encode(), "text/plain")})


@scenario("POST", "/admin/training/materials/upload")
async def _page_training_upload(ctx: Ctx) -> Call:
    await ctx.as_role("admin")
    return Call("POST", "/admin/training/materials/upload", ("training.material_add",),
                data=ctx.csrf_form(title="话术"), files={"file": ("话术.txt", "先问候".encode(), "text/plain")})


@scenario("POST", "/api/v1/training/banks")
async def _api_training_bank(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/api/v1/training/banks", ("training.bank_add",), json={"name": "新题库"})


@scenario("POST", "/admin/training/banks")
async def _page_training_bank(ctx: Ctx) -> Call:
    await ctx.as_role("supervisor")
    return Call("POST", "/admin/training/banks", ("training.bank_add",), data={"name": "新题库"})


async def _training_bank(ctx: Ctx) -> int:
    from gasdesk.training.schemas import BankIn
    from gasdesk.training.service import do_create_bank

    bank = await do_create_bank(ctx.session, SETUP, BankIn(name="题库甲"))
    await commit(ctx.session)
    await ctx.as_role("supervisor")
    return bank.id


@scenario("POST", "/api/v1/training/banks/{bank_id}/questions")
async def _api_training_question(ctx: Ctx) -> Call:
    bank_id = await _training_bank(ctx)
    return Call("POST", f"/api/v1/training/banks/{bank_id}/questions", ("training.question_add",),
                json={"kind": "single", "prompt": "选哪个", "options": ["甲", "乙"], "correct": [0]})


@scenario("POST", "/admin/training/banks/{bank_id}/questions")
async def _page_training_question(ctx: Ctx) -> Call:
    bank_id = await _training_bank(ctx)
    return Call("POST", f"/admin/training/banks/{bank_id}/questions", ("training.question_add",),
                data={"kind": "multiple", "prompt": "选哪些", "options": "甲\n乙\n丙", "correct": "1,3"})


async def _training_full_bank(ctx: Ctx) -> int:
    from gasdesk.training.schemas import BankIn, QuestionIn
    from gasdesk.training.service import do_add_question, do_create_bank

    bank = await do_create_bank(ctx.session, SETUP, BankIn(name="题库乙"))
    await do_add_question(ctx.session, SETUP, bank, QuestionIn(kind="true_false", prompt="对吗", value=True))
    await commit(ctx.session)
    await ctx.as_role("admin")
    return bank.id


@scenario("POST", "/api/v1/training/exams")
async def _api_training_exam(ctx: Ctx) -> Call:
    bank_id = await _training_full_bank(ctx)
    return Call("POST", "/api/v1/training/exams", ("training.exam_add",),
                json={"bank_id": bank_id, "title": "考试", "question_count": 1, "time_limit_min": 5, "pass_mark": 60})


@scenario("POST", "/admin/training/exams")
async def _page_training_exam(ctx: Ctx) -> Call:
    bank_id = await _training_full_bank(ctx)
    return Call("POST", "/admin/training/exams", ("training.exam_add",),
                data={"bank_id": str(bank_id), "title": "考试", "question_count": "1", "time_limit_min": "5",
                      "pass_mark": "60"})


@scenario("POST", "/api/v1/training/exams/{exam_id}/attempts")
async def _api_training_start(ctx: Ctx) -> Call:
    exam_id = await _training_exam(ctx)
    await ctx.as_role("agent")
    return Call("POST", f"/api/v1/training/exams/{exam_id}/attempts", ("training.attempt_start",))


@scenario("POST", "/training/exams/{exam_id}/start")
async def _page_training_start(ctx: Ctx) -> Call:
    exam_id = await _training_exam(ctx)
    await ctx.as_role("dispatcher")
    return Call("POST", f"/training/exams/{exam_id}/start", ("training.attempt_start",))


@scenario("PUT", "/api/v1/training/attempts/{attempt_id}/answers")
async def _api_training_answer(ctx: Ctx) -> Call:
    from gasdesk.training.models import ExamAttempt

    attempt_id = await _training_attempt(ctx)
    first = (await ctx.session.get_one(ExamAttempt, attempt_id)).question_ids[0]
    return Call("PUT", f"/api/v1/training/attempts/{attempt_id}/answers", ("training.attempt_answer",),
                json={"answers": {str(first): "开窗"}})


@scenario("POST", "/api/v1/training/attempts/{attempt_id}/submit")
async def _api_training_submit(ctx: Ctx) -> Call:
    attempt_id = await _training_attempt(ctx)
    return Call("POST", f"/api/v1/training/attempts/{attempt_id}/submit", ("training.attempt_submit",), json={})


@scenario("POST", "/training/attempts/{attempt_id}/submit")
async def _page_training_submit(ctx: Ctx) -> Call:
    attempt_id = await _training_attempt(ctx)
    return Call("POST", f"/training/attempts/{attempt_id}/submit", ("training.attempt_submit",), data={})


@scenario("POST", "/api/v1/training/sparring")
async def _api_training_sparring(ctx: Ctx) -> Call:
    from gasdesk.training.service import do_install_default_scenarios, list_scenarios

    await do_install_default_scenarios(ctx.session, SETUP)
    await commit(ctx.session)
    scenario_id = (await list_scenarios(ctx.session))[0].id
    await ctx.as_role("agent")
    return Call("POST", "/api/v1/training/sparring", ("training.sparring_start",), json={"scenario_id": scenario_id})


@scenario("POST", "/training/sparring")
async def _page_training_sparring(ctx: Ctx) -> Call:
    from gasdesk.training.service import do_install_default_scenarios, list_scenarios

    await do_install_default_scenarios(ctx.session, SETUP)
    await commit(ctx.session)
    scenario_id = (await list_scenarios(ctx.session))[0].id
    await ctx.as_role("agent")
    return Call("POST", "/training/sparring", ("training.sparring_start",), data={"scenario_id": str(scenario_id)})


@scenario("POST", "/api/v1/training/sparring/{sparring_id}/turns")
async def _api_training_say(ctx: Ctx) -> Call:
    sid = await _training_sparring(ctx)
    return Call("POST", f"/api/v1/training/sparring/{sid}/turns", ("training.sparring_turn",), json={"text": "请开窗通风"})


@scenario("POST", "/training/sparring/{sparring_id}/say")
async def _page_training_say(ctx: Ctx) -> Call:
    sid = await _training_sparring(ctx)
    return Call("POST", f"/training/sparring/{sid}/say", ("training.sparring_turn",), data={"text": "请开窗通风"},
                headers={"HX-Request": "true"})


async def _training_sparring_said(ctx: Ctx) -> int:
    from gasdesk.training.models import SparringSession
    from gasdesk.training.service import do_sparring_say

    sid = await _training_sparring(ctx)
    row = await ctx.session.get_one(SparringSession, sid)
    await do_sparring_say(ctx.session, await ctx.session.get_one(User, row.user_id), row, "您好，请开窗通风")
    await commit(ctx.session)
    return sid


@scenario("POST", "/api/v1/training/sparring/{sparring_id}/finish")
async def _api_training_finish(ctx: Ctx) -> Call:
    sid = await _training_sparring_said(ctx)
    return Call("POST", f"/api/v1/training/sparring/{sid}/finish", ("training.sparring_finish",))


@scenario("POST", "/training/sparring/{sparring_id}/finish")
async def _page_training_finish(ctx: Ctx) -> Call:
    sid = await _training_sparring_said(ctx)
    return Call("POST", f"/training/sparring/{sid}/finish", ("training.sparring_finish",))


# ---------------------------------------------------------------- the route tests


def _mutating_routes(app: Any) -> set[tuple[str, str]]:
    return {(method, route.path) for route in iter_routes(app.routes) if isinstance(route, APIRoute)
            for method in route.methods & MUTATING}


def test_every_mutating_route_has_a_scenario_or_a_reason(app) -> None:
    routes = _mutating_routes(app)
    assert not set(SCENARIOS) & set(EXEMPT), "a route is either exercised or exempt"
    assert sorted(routes - set(SCENARIOS) - set(EXEMPT)) == [], "add a scenario (or an EXEMPT reason) for these"
    assert sorted((set(SCENARIOS) | set(EXEMPT)) - routes) == [], "these routes are gone: drop their entries"
    assert all(reason.strip() for reason in EXEMPT.values())


async def _last_audit_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0))))


def _path_matches(template: str, url: str) -> bool:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, url.split("?", 1)[0]) is not None


@pytest.mark.parametrize("route", sorted(SCENARIOS), ids=lambda r: f"{r[0]} {r[1]}")
async def test_mutating_route_writes_an_audit_row(route, client, session, factory) -> None:
    ctx = Ctx(client, session, factory)
    call = await SCENARIOS[route](ctx)
    assert call.method == route[0] and _path_matches(route[1], call.url), f"the scenario must call {route}"
    before = await _last_audit_id(session)
    response = await client.request(call.method, call.url, json=call.json, data=call.data, files=call.files,
                                    headers={"Accept": "application/json", **call.headers})
    assert response.status_code < 400, response.text[:500]
    written = [row.action for row in await session.scalars(
        select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id))]
    missing = [action for action in call.actions if action not in written]
    assert missing == [], f"{route} wrote {written}"


# ---------------------------------------------------------------- jobs


@dataclass
class JobRun:
    """Run a job with work to do; ``actions`` are the audit rows it must write."""

    run: Callable[[], Awaitable[None]]
    actions: tuple[str, ...]


JOB_SCENARIOS: dict[str, Callable[[Ctx], Awaitable[JobRun]]] = {}


def job_scenario(name: str) -> Callable[[Callable[[Ctx], Awaitable[JobRun]]], Any]:
    def register(fn: Callable[[Ctx], Awaitable[JobRun]]) -> Any:
        JOB_SCENARIOS[name] = fn
        return fn

    return register


def _periodic(name: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        async with transaction() as s:  # as the worker runs it (jobs/queue.py run_periodic_once)
            await PERIODIC[name][1](s)

    return run


@job_scenario("conversations.idle_scan")
async def _(ctx: Ctx) -> JobRun:
    await desk_agent(ctx.factory)
    conversation = await queued_conversation(ctx.session)
    conversations.do_note_resident_gone(ctx.session, conversation)
    await commit(ctx.session)
    clock.set_now(clock.utcnow() + timedelta(days=1))
    return JobRun(_periodic("conversations.idle_scan"), ("conversation.resident_left",))


@job_scenario("tags.apply")
async def _(ctx: Ctx) -> JobRun:
    from gasdesk.tags.service import JOB as TAGS_JOB

    await _tag_rule(ctx)
    customer = await ctx.factory.customer(address={"district": "朝阳区", "community": "幸福里小区"})
    conversation = await conversations.do_start_conversation(ctx.session, channel="webchat", visitor_id="v_tags",
                                                             customer_id=customer.id)
    await conversations.do_close(ctx.session, conversation, by="system")
    await commit(ctx.session)

    async def run() -> None:
        async with transaction() as s:
            await HANDLERS[TAGS_JOB](s, {"conversation_id": conversation.id})

    return JobRun(run, ("tag.auto",))


@job_scenario("tickets.sla_scan")
async def _(ctx: Ctx) -> JobRun:
    await wo_ticket(ctx.session, "repair", priority="normal")
    clock.set_now(clock.utcnow() + timedelta(days=60))
    return JobRun(_periodic("tickets.sla_scan"), ("ticket.sla_breached",))


@job_scenario("followups.dispatch")
async def _(ctx: Ctx) -> JobRun:
    crew = await staff_user(ctx.session, "field_crew")
    await wo_ticket(ctx.session, "repair", status="resolved", crew_id=crew.id, actor=wo_actor(crew))
    clock.set_now(clock.utcnow() + timedelta(days=30))
    return JobRun(_periodic("followups.dispatch"), ("followup.send",))


@job_scenario("outbound.stale_sending")
async def _(ctx: Ctx) -> JobRun:
    row = await do_queue_outbound(ctx.session, channel="sms", purpose=Purpose.ticket_progress, method="sms",
                                  recipient="13800138000", template_key="ticket_progress", params={})
    row.status = "sending"
    await commit(ctx.session)
    clock.set_now(clock.utcnow() + timedelta(hours=1))
    return JobRun(_periodic("outbound.stale_sending"), ("outbound.fail",))


@job_scenario("notices.appointment_reminders")
async def _(ctx: Ctx) -> JobRun:
    first_day = (clock.to_local(clock.utcnow()) + timedelta(days=2)).date()
    customer = await ctx.factory.customer()
    slot, _ = await _slots(ctx, first_day=first_day)
    await book_appointment(ctx.session, SETUP, customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(ctx.session)
    # The day before the visit, 10:00 local time.
    clock.set_now(datetime.combine(first_day - timedelta(days=1), time(10, 0), tzinfo=clock.local_zone()))
    return JobRun(_periodic("notices.appointment_reminders"), ("outbound.queue",))


@job_scenario("telephony.recording_retention")
async def _(ctx: Ctx) -> JobRun:
    from gasdesk.telephony.media import CallInfo, RecordingInfo
    from gasdesk.telephony.service import do_start_call, do_store_recording, recording_path

    call = await do_start_call(ctx.session, CallInfo(call_ref="audit-rec", caller="", callee="96777", backend="sip"),
                               script_version=None)
    path = recording_path(call)
    path.write_bytes(b"RIFF")
    await do_store_recording(ctx.session, call, RecordingInfo(path=path, duration_s=1.0, bytes=4))
    await commit(ctx.session)
    clock.set_now(clock.utcnow() + timedelta(days=400))
    return JobRun(_periodic("telephony.recording_retention"), ("call.recording_delete",))


@job_scenario("quality.score_closed")
async def _(ctx: Ctx) -> JobRun:
    agent, conversation = await _assigned_conversation(ctx)
    await conversations.do_close(ctx.session, conversation, by="agent", user=agent)
    await commit(ctx.session)
    return JobRun(_periodic("quality.score_closed"), ("quality.score",))


@job_scenario("reports.scheduled")
async def _(ctx: Ctx) -> JobRun:
    # The suite turns scheduled reports off (tests/conftest.py); this run needs them. A supervisor to tell.
    _ENV.setenv("GASDESK_REPORTS_SCHEDULE_ENABLED", "true")
    reset_settings_cache()
    await ctx.factory.user("supervisor")
    return JobRun(_periodic("reports.scheduled"), ("report.generate",))


@job_scenario("broadcasts.drain")
async def _(ctx: Ctx) -> JobRun:
    await _outage_notice(ctx, publish=True)

    async def run() -> None:
        async with transaction() as s:
            await HANDLERS["broadcasts.drain"](s, {})

    return JobRun(run, ("outbound.queue",))
@job_scenario("emergency.escalate")
async def _(ctx: Ctx) -> JobRun:
    await _emergency(ctx)  # nobody on duty for the built-in path: the next scan moves to step 2
    clock.set_now(clock.utcnow() + timedelta(minutes=1))
    return JobRun(_periodic("emergency.escalate"), ("emergency.escalate",))


@job_scenario("internal_chat.retention")
async def _(ctx: Ctx) -> JobRun:
    from gasdesk.internal_chat.service import access_chat, do_post_message

    owner, _, chat_id = await _staff_chat(ctx, log_in_as_owner=False)
    await do_post_message(ctx.session, owner, await access_chat(ctx.session, owner, chat_id), "旧消息")
    await commit(ctx.session)
    clock.set_now(clock.utcnow() + timedelta(days=4000))
    return JobRun(_periodic("internal_chat.retention"), ("ichat.purge",))


@job_scenario("video.stale_scan")
async def _(ctx: Ctx) -> JobRun:
    from gasdesk.video import service as video

    agent = await desk_agent(ctx.factory)
    conversation = await queued_conversation(ctx.session)
    conversation = await video.access_conversation_to_invite(ctx.session, agent, conversation.id)
    await video.do_invite(ctx.session, agent, conversation)
    await commit(ctx.session)
    clock.set_now(clock.utcnow() + timedelta(hours=1))  # nobody answered the invitation
    return JobRun(_periodic("video.stale_scan"), ("video.end",))


def _app_jobs() -> set[str]:
    """Jobs the app registers (other test modules register throwaway handlers of their own)."""
    handlers = dict(HANDLERS) | {name: fn for name, (_, fn) in PERIODIC.items()}
    return {name for name, fn in handlers.items() if fn.__module__.startswith("gasdesk.")}


def test_every_job_has_a_scenario_or_a_reason() -> None:
    names = _app_jobs()
    assert {"tickets.sla_scan", "webhooks.deliver"} <= names
    assert not set(JOB_SCENARIOS) & set(JOB_EXEMPT)
    assert sorted(names - set(JOB_SCENARIOS) - set(JOB_EXEMPT)) == [], "add a job scenario (or a JOB_EXEMPT reason)"
    assert sorted((set(JOB_SCENARIOS) | set(JOB_EXEMPT)) - names) == [], "these jobs are gone: drop their entries"


@pytest.mark.parametrize("name", sorted(JOB_SCENARIOS))
async def test_job_with_work_writes_an_audit_row(name, client, session, factory) -> None:
    job = await JOB_SCENARIOS[name](Ctx(client, session, factory))
    before = await _last_audit_id(session)
    await job.run()
    written = [row.action for row in await session.scalars(
        select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id))]
    missing = [action for action in job.actions if action not in written]
    assert missing == [], f"{name} wrote {written}"
