"""Shared set-up for the fuzz tests (tests/security/test_fuzz_*.py): a small but complete world of real rows,
made through the real ``do_*`` functions, so generated ids hit existing customers, conversations, tickets,
articles and slots as well as missing ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import transaction
from tests.factories import (
    Factory,
    bot_conversation,
    desk_agent,
    queued_conversation,
    staff_user,
    wo_actor,
    wo_ticket,
)


@dataclass
class World:
    users: dict[Role, User] = field(default_factory=dict)
    tokens: dict[Role, str] = field(default_factory=dict)
    visitor_token: str = ""
    conversation_id: int = 0

    def headers(self, role: Role | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role is not None else {}


async def build_world() -> World:
    """One user per role (with a bearer token), a customer, conversations in the bot and queued states, tickets
    (one assigned to the crew), a published article, appointment slots with a booking, a branch, a webhook."""
    from gasdesk.appointments.service import book_appointment, do_generate_slots
    from gasdesk.branches.service import do_save_branch
    from gasdesk.channels.webchat.identity import issue_visitor_token
    from gasdesk.clock import to_local, utcnow
    from gasdesk.kb.service import check_article, do_create_article
    from gasdesk.webhooks.models import EVENTS
    from gasdesk.webhooks.service import do_create_endpoint

    world = World()
    async with transaction() as session:
        factory = Factory(session)
        for role in Role:
            user = (await desk_agent(factory, groups=(1, 2), role=role.value) if role is Role.agent
                    else await staff_user(session, role.value))
            world.users[role] = user
            world.tokens[role] = await factory.token(user)
        customer = await factory.customer(address={"district": "和平区", "community": "幸福里小区", "building": "3",
                                                   "unit": "2", "room": "501"})
        await factory.customer()
        visitor_id, world.visitor_token = issue_visitor_token()
        world.conversation_id = (await bot_conversation(session, visitor_id=visitor_id, customer_id=customer.id)).id
        await queued_conversation(session)
        await wo_ticket(session, "repair", customer_id=customer.id)
        await wo_ticket(session, "repair", status="assigned", crew_id=world.users[Role.field_crew].id)
        actor = wo_actor()
        await do_create_article(session, actor, check_article(
            title="燃气表不走字怎么办", questions=["燃气表不走字"], answer="请先检查表前阀是否打开。", category="常见问题"),
            status="published")
        first_day = to_local(utcnow() + timedelta(days=2)).date()  # type: ignore[union-attr]
        await do_generate_slots(session, district="和平区", first_day=first_day, days=2,
                                windows=[("09:00", "12:00"), ("13:30", "17:30")], capacity=3)
        await session.flush()
        from sqlalchemy import select

        from gasdesk.appointments.models import AppointmentSlot

        slot_id = await session.scalar(select(AppointmentSlot.id).order_by(AppointmentSlot.id).limit(1))
        await book_appointment(session, actor, customer_id=customer.id, service_code="维修", slot_id=slot_id)
        await do_save_branch(session, actor, branch=None, name="和平区营业厅", district="和平区",
                             address="南京南街 128 号", phone="024-2341 6600",
                             weekly_hours={"1": "08:30-17:00", "7": ""}, services=["缴费"])
        await do_create_endpoint(session, actor, name="hook", url="https://example.invalid/hook",
                                 events=list(EVENTS))
    return world
