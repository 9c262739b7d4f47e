"""Gas leak: in any dialogue state, the fixed safety instructions first, then a top-priority ticket
and an alert to everyone on duty; the conversation goes to people at emergency priority."""

from __future__ import annotations

from sqlalchemy import select

from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.bot.base import BOT_ACTOR, BotContext, BotMessage, BotReply
from gasdesk.bot.nlu import Understanding
from gasdesk.events import emit
from gasdesk.notifications.service import do_notify

SAFETY_INSTRUCTIONS = (
    "【燃气泄漏紧急提示】请立即按以下步骤操作：\n"
    "1. 不要开关任何电器（包括电灯、排风扇、门铃），不要使用明火，不要在室内打电话；\n"
    "2. 立即打开门窗通风；\n"
    "3. 关闭燃气表前阀门；\n"
    "4. 迅速离开房间，到室外安全地点；\n"
    "5. 在室外拨打燃气抢修电话 96777（或 119）。"
)
FOLLOW_UP = "我们已生成紧急抢修工单并通知值班人员，正在为您优先转接人工客服。请到室外后告诉我们您的详细地址和联系电话。"


async def escalate_emergency(ctx: BotContext, text: str, understanding: Understanding) -> BotReply:
    """Create (once per conversation) the gas_leak ticket, alert on-duty staff, hand off at top priority."""
    from gasdesk.tickets.schemas import TicketCreate
    from gasdesk.tickets.service import do_create_ticket

    ctx.state.pop("flow_state", None)  # a leak interrupts whatever flow was running
    ticket_id = ctx.state.get("leak_ticket_id")
    if ticket_id is None:
        slots = understanding.slots
        ticket = await do_create_ticket(ctx.session, BOT_ACTOR, TicketCreate(
            type="gas_leak", priority="urgent", title="燃气泄漏（在线报警）", description=text,
            customer_id=ctx.conversation.customer_id, contact_phone=slots.get("phone"),
            address_text=slots.get("address"), channel=ctx.conversation.channel,
            conversation_id=ctx.conversation.id))
        ctx.state["leak_ticket_id"] = ticket.id
        on_duty = await ctx.session.scalars(select(User.id).where(
            User.is_active.is_(True), User.role.in_([Role.dispatcher.value, Role.supervisor.value, Role.agent.value])))
        for user_id in on_duty:
            do_notify(ctx.session, user_id, "emergency.gas_leak", f"燃气泄漏报警 {ticket.number}", text[:200],
                      link=f"/tickets/{ticket.id}")
        emit(ctx.session, "emergency.alert", {"ticket_id": ticket.id, "conversation_id": ctx.conversation.id,
                                              "number": ticket.number})
        ticket_text = f"紧急工单号：{ticket.number}。"
    else:
        ticket_text = ""
    return BotReply(
        messages=[BotMessage(SAFETY_INSTRUCTIONS), BotMessage(ticket_text + FOLLOW_UP)],
        understood=True, intent="gas_leak", confidence=1.0, slots=understanding.slots, emergency=True,
        skill_hint="gas",
    )
