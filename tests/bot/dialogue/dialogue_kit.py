"""Helpers to drive whole conversations through the real pipeline with the NLU bot."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gasdesk import db
from gasdesk.appointments.models import AppointmentSlot
from gasdesk.appointments.service import do_generate_slots
from gasdesk.conversations import pipeline, service
from gasdesk.db import commit
from gasdesk.tickets.models import Ticket
from tests.factories import reload_conversation

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)  # Monday 10:00, heating season
TOMORROW = date(2026, 12, 8)


class Chat:
    """One resident talking to the bot; ``say``/``press`` return the texts the bot (and system) answered."""

    def __init__(self, session: Any, conversation: Any) -> None:
        self.session = session
        self.conversation = conversation
        self.last: list[Any] = []

    async def say(self, text: str, value: str | None = None) -> str:
        before = await self._max_seq()
        payload = {"value": value} if value is not None else None
        await pipeline.receive_resident_message(self.session, self.conversation, text=text, payload=payload)
        await commit(self.session)
        async with db.sessionmaker()() as s:
            self.last = [m for m in await service.messages_after(s, self.conversation.id, before)
                         if m.sender_type != "resident"]
        return "\n".join(m.text or "" for m in self.last)

    async def press(self, label: str) -> str:
        """Press the quick-reply button of the last bot message whose label contains ``label``."""
        for message in reversed(self.last):
            for button in (message.payload or {}).get("quick_replies", []):
                if label in button["label"]:
                    if button.get("action") == "handoff":
                        await pipeline.request_handoff(self.session, self.conversation)
                        await commit(self.session)
                        return ""
                    return await self.say(button.get("text", button["label"]), button.get("value"))
        raise AssertionError(f"no button {label!r} in {[self.buttons()]}")

    def buttons(self) -> list[str]:
        return [b["label"] for m in self.last for b in (m.payload or {}).get("quick_replies", [])]

    async def _max_seq(self) -> int:
        async with db.sessionmaker()() as s:
            messages = await service.messages_after(s, self.conversation.id)
        return max((m.seq for m in messages), default=0)

    async def state(self) -> dict[str, Any]:
        return (await reload_conversation(self.conversation.id)).bot_state or {}

    async def flow(self) -> str | None:
        return ((await self.state()).get("flow_state") or {}).get("flow")

    async def stored(self) -> Any:
        return await reload_conversation(self.conversation.id)

    async def turns(self) -> list[dict[str, Any]]:
        async with db.sessionmaker()() as s:
            return [(m.channel_meta or {}).get("bot_turn") for m in await service.messages_after(s, self.conversation.id)
                    if m.sender_type == "resident"]


async def tickets(type_: str | None = None) -> list[Ticket]:
    async with db.sessionmaker()() as s:
        query = select(Ticket).order_by(Ticket.id)
        if type_:
            query = query.where(Ticket.type == type_)
        return list(await s.scalars(query))


async def make_slots(session: Any, district: str = "朝阳区", *, capacity: int = 3, day: date = TOMORROW,
                     days: int = 1) -> list[AppointmentSlot]:
    await do_generate_slots(session, district=district, first_day=day, days=days,
                            windows=[("09:00", "12:00"), ("14:00", "17:00")], capacity=capacity)
    await commit(session)
    return list(await session.scalars(select(AppointmentSlot).where(AppointmentSlot.district == district)
                                      .order_by(AppointmentSlot.start)))


async def verify(chat: Chat, customer: Any) -> str:
    """Answer the identity check with the customer's 户号 and the last 4 digits of the phone."""
    await chat.say(customer.accounts[0].account_no)
    return await chat.say(customer.phones[0].phone[-4:])
