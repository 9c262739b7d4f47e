"""A gas leak reported by a resident, on any channel (the bot in a chat, the hotline's IVR): one urgent
``gas_leak`` ticket, an alert to everyone at a desk, and an emergency event whose level's escalation path
(gasdesk/emergency) runs until someone on duty acknowledges it. The hand-off at emergency priority is the
caller's part (the chat pipeline's hand-off rules, the call controller's queue)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.emergency.service import do_open_emergency, leak_level
from gasdesk.event_types import EmergencyAlert
from gasdesk.events import emit
from gasdesk.notifications.service import do_notify
from gasdesk.tickets.models import Ticket
from gasdesk.tickets.schemas import TicketCreate
from gasdesk.tickets.service import do_create_ticket

# Who is told of a leak at once: everyone who can act on it or pass it on.
ON_DUTY_ROLES = (Role.dispatcher.value, Role.supervisor.value, Role.agent.value)


async def do_report_gas_leak(session: AsyncSession, actor: Actor, *, conversation_id: int, channel: str,
                             customer_id: int | None, title: str, description: str,
                             contact_phone: str | None = None, address_text: str | None = None,
                             district: str | None = None) -> Ticket:
    """Create the urgent ``gas_leak`` ticket of a conversation (audited by ``do_create_ticket``), notify
    every active dispatcher, supervisor and agent, open an emergency event (level Ⅰ or Ⅱ from the report,
    ``emergency.service.leak_level``) whose first step is notified at once, and emit ``emergency.alert``
    after commit."""
    ticket = await do_create_ticket(session, actor, TicketCreate(
        type="gas_leak", priority="urgent", title=title, description=description, customer_id=customer_id,
        contact_phone=contact_phone, address_text=address_text, district=district, channel=channel,
        conversation_id=conversation_id))
    on_duty = await session.scalars(select(User.id).where(User.is_active.is_(True), User.role.in_(ON_DUTY_ROLES)))
    for user_id in on_duty:
        do_notify(session, user_id, "emergency.gas_leak", f"燃气泄漏报警 {ticket.number}", description[:200],
                  link=f"/tickets/{ticket.id}")
    await do_open_emergency(session, actor, source="gas_leak", level=leak_level(f"{title} {description}"),
                            title=f"燃气泄漏 {ticket.number}" + (f" · {district}" if district else ""),
                            description=description, ticket_id=ticket.id)
    emit(session, EmergencyAlert(ticket_id=ticket.id, conversation_id=conversation_id, number=ticket.number))
    return ticket
