"""Gas leak: in any dialogue state, the fixed safety instructions first, then a top-priority ticket
and an alert to everyone on duty; the conversation goes to people at emergency priority."""

from __future__ import annotations

from gasdesk.bot.base import BOT_ACTOR, BotContext, BotMessage, BotReply
from gasdesk.bot.dialogue.common import district_in, mask_phone
from gasdesk.bot.nlu import Understanding
from gasdesk.bot.nlu.slots import extract_slots
from gasdesk.customers.addresses import parse_free_address
from gasdesk.tickets.emergency import do_report_gas_leak
from gasdesk.tickets.models import OPEN_STATUSES, Ticket
from gasdesk.tickets.service import do_update_ticket_contact

SAFETY_INSTRUCTIONS = (
    "【燃气泄漏紧急提示】请立即按以下步骤操作：\n"
    "1. 不要开关任何电器（包括电灯、排风扇、门铃），不要使用明火，不要在室内打电话；\n"
    "2. 立即打开门窗通风；\n"
    "3. 关闭燃气表前阀门；\n"
    "4. 迅速离开房间，到室外安全地点；\n"
    "5. 在室外拨打燃气抢修电话 96777（或 119）。"
)
FOLLOW_UP = "我们已生成紧急抢修工单并通知值班人员，正在为您优先转接人工客服。"
ASK_PHONE = "请到室外后留下联系电话，方便抢修人员联系您。"
# Without an address the crew cannot go: an anonymous report is asked for it right after the safety steps.
ASK_ADDRESS = "请马上告诉我们漏气的详细地址（区、小区、楼号、单元、门牌，例如：和平区幸福里小区3号楼2单元501），抢修人员据此出发。"
# The ticket whose address (or a correction of it) the bot still listens for once people have the chat, for
# the resident's next few messages.
AWAITING_ADDRESS_KEY = "leak_address_for"
LISTEN_MESSAGES = 3


async def escalate_emergency(ctx: BotContext, text: str, understanding: Understanding) -> BotReply:
    """Create (once per conversation) the gas_leak ticket, alert on-duty staff, hand off at top priority."""
    ctx.state.pop("flow_state", None)  # a leak interrupts whatever flow was running
    ticket_id = ctx.state.get("leak_ticket_id")
    ticket: Ticket | None  # None if the ticket made earlier no longer exists: then no address prompt
    if ticket_id is None:
        slots = understanding.slots
        ticket = await do_report_gas_leak(
            ctx.session, BOT_ACTOR, conversation_id=ctx.conversation.id, channel=ctx.conversation.channel,
            customer_id=ctx.conversation.customer_id, title="燃气泄漏（在线报警）", description=text,
            contact_phone=slots.get("phone"), address_text=slots.get("address"),
            district=_district_of(slots.get("address"), text))
        ctx.state["leak_ticket_id"] = ticket.id
        ticket_text = f"紧急工单号：{ticket.number}。"
    else:
        ticket = await ctx.session.get(Ticket, ticket_id)
        ticket_text = ""
    where, follow = None, ticket_text + FOLLOW_UP
    if ticket is not None:
        ctx.state[AWAITING_ADDRESS_KEY] = {"ticket_id": ticket.id, "left": LISTEN_MESSAGES}
        where = ASK_ADDRESS if not ticket.address_text else \
            f"抢修地址：{ticket.address_text}。如果漏气的不是这里，请马上告诉我们实际地址。"
        follow += "" if ticket.contact_phone else ASK_PHONE
    return BotReply(
        messages=[BotMessage(m) for m in (SAFETY_INSTRUCTIONS, where, follow) if m],
        understood=True, intent="gas_leak", confidence=1.0, slots=understanding.slots, emergency=True,
        skill_hint="gas",
    )


def _district_of(address: str | None, text: str) -> str | None:
    parts = parse_free_address(address or "")
    return (parts.district if parts is not None and parts.district else None) or district_in(address or text)


async def take_leak_address(ctx: BotContext, text: str) -> BotReply | None:
    """While people handle a leak conversation, the address (or a phone) the resident sends next goes onto the
    leak ticket at once, for the crew; anything else is left to the people."""
    awaiting = ctx.state.get(AWAITING_ADDRESS_KEY)
    if not isinstance(awaiting, dict):
        return None
    awaiting["left"] = int(awaiting.get("left") or 1) - 1
    if awaiting["left"] <= 0:
        ctx.state.pop(AWAITING_ADDRESS_KEY, None)
    slots = extract_slots(text)
    address, phone = slots.get("address"), slots.get("phone")
    if parse_free_address(text) is not None:
        address = text.strip()
    if not address and not phone:
        return None
    ticket = await ctx.session.get(Ticket, int(awaiting.get("ticket_id") or 0))
    if ticket is None or ticket.status not in {s.value for s in OPEN_STATUSES}:
        ctx.state.pop(AWAITING_ADDRESS_KEY, None)
        return None
    await do_update_ticket_contact(ctx.session, BOT_ACTOR, ticket, address_text=address,
                                   district=_district_of(address, text) if address else None, contact_phone=phone)
    if address:
        ctx.state.pop(AWAITING_ADDRESS_KEY, None)
    said = "、".join(x for x in (f"地址“{address}”" if address else "", f"电话 {mask_phone(phone)}" if phone else "") if x)
    return BotReply([BotMessage(f"已把{said}补充到紧急工单 {ticket.number}，抢修人员会按此赶到。请在室外安全的地方等候，"
                                "保持电话畅通。")], intent="gas_leak", confidence=1.0)
