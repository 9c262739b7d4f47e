"""Identity check before disclosing account data: 户号 + last 4 digits of the registered phone,
unless the conversation is already linked to a verified customer."""

from __future__ import annotations

import re

from gasdesk.bot.base import BOT_ACTOR, BotContext, BotReply
from gasdesk.bot.dialogue.flow import Flow, Turn, reply
from gasdesk.conversations.service import do_link_customer
from gasdesk.customers.identity import verify_account_holder
from gasdesk.customers.models import Customer
from gasdesk.errors import InvalidInput, RateLimited

LAST4_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")
ACCOUNT_RE = re.compile(r"(?<!\d)(\d{8,12})(?!\d)")
MAX_TRIES = 3


async def verified_customer(ctx: BotContext) -> Customer | None:
    if ctx.conversation.customer_id is None:
        return None
    customer = await ctx.session.get(Customer, ctx.conversation.customer_id)
    if customer is not None:
        await ctx.session.refresh(customer, ["phones", "accounts", "addresses"])
    return customer


async def ensure_identity(ctx: BotContext, flow: Flow, turn: Turn, purpose: str) -> Customer | BotReply:
    """Return the verified customer, or the next question of the check. Three failures end the flow."""
    customer = await verified_customer(ctx)
    if customer is not None:
        return customer
    text = turn.text or ""
    if "account_no" not in flow.slots:
        match = ACCOUNT_RE.search(text.replace(" ", ""))
        value = turn.understanding.slots.get("account_no") or (match.group(1) if match else None)
        if value:
            flow.slots["account_no"] = value
        else:
            flow.asking = "account_no"
            return reply(f"为保护您的信息安全，{purpose}前需要核实身份。请输入您的户号（在缴费单或燃气卡上）。")
    if flow.asking != "phone_last4":
        flow.asking = "phone_last4"
        return reply("请输入户主预留手机号的后四位。")
    match = LAST4_RE.search(text)
    if not match:
        return reply("请输入 4 位数字：预留手机号的后四位。", understood=False)
    try:
        customer = await verify_account_holder(ctx.session, str(flow.slots["account_no"]), match.group(1),
                                               visitor_id=ctx.conversation.visitor_id or "")
    except RateLimited as exc:
        if (exc.details or {}).get("retry_after_s", 0) < 60:  # a short back-off: the flow waits
            return reply(f"{exc.message}，再输入手机号后四位。", understood=False)
        flow.finish(ctx)
        return reply(f"{exc.message}。您也可以携带身份证到营业厅办理。",
                     quick=[{"label": "转人工", "action": "handoff"}], understood=False)
    except InvalidInput:  # a mismatch, or a 户号 that cannot be one
        flow.slots["id_failures"] = int(flow.slots.get("id_failures", 0)) + 1
        flow.slots.pop("account_no", None)
        if flow.slots["id_failures"] >= MAX_TRIES:
            flow.finish(ctx)
            return reply("身份核实未通过，出于安全考虑暂时无法查询。您可以携带身份证到营业厅办理，或转人工客服。",
                         quick=[{"label": "转人工", "action": "handoff"}], understood=False)
        flow.asking = "account_no"
        return reply("户号或手机号后四位不匹配，无法核实身份。请重新输入户号。", understood=False)
    await do_link_customer(ctx.session, BOT_ACTOR, ctx.conversation, customer, how="bot_identity")
    flow.asking = None
    return customer
