"""Balance and 户号 queries: identity check first, then the billing system's figures."""

from __future__ import annotations

from gasdesk.bot.base import BotContext, BotReply
from gasdesk.bot.dialogue.flow import Flow, Turn, reply
from gasdesk.bot.dialogue.identity import ensure_identity, verified_customer
from gasdesk.clock import format_local
from gasdesk.customers.billing import billing_system_for
from gasdesk.errors import GasdeskError


class BalanceFlow(Flow):
    name = "balance"
    intent = "balance_query"
    title = "查询余额"
    related = frozenset({"payment_howto"})
    answer_slots = ("account_no",)

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        customer = await ensure_identity(ctx, self, turn, "查询余额")
        if isinstance(customer, BotReply):
            return customer
        self.finish(ctx)
        billing = billing_system_for(ctx.session)
        lines = []
        for account in customer.accounts:
            try:
                info = await billing.summary(account.account_no)
            except GasdeskError as exc:
                lines.append(f"户号 {account.account_no}：{exc.message}")
                continue
            line = f"户号 {account.account_no}：账户余额 {info.balance} 元"
            if info.arrears > 0:
                line += f"，欠费 {info.arrears} 元（请尽快缴纳，避免停气）"
            if info.last_payment_at:
                line += f"；最近一次缴费 {format_local(info.last_payment_at, '%Y-%m-%d')} {info.last_payment_amount} 元"
            lines.append(line)
        if not lines:
            return reply("该客户名下暂无账户信息，请转人工核实。", quick=[{"label": "转人工", "action": "handoff"}])
        return reply("\n".join(lines), "可通过微信公众号、支付宝生活缴费、银行代扣或营业厅缴费。",
                     intent="balance_query")


class AccountNumberFlow(Flow):
    name = "account_number"
    intent = "account_number_query"
    title = "查询户号"

    async def start(self, ctx: BotContext, turn: Turn) -> BotReply:
        customer = await verified_customer(ctx)
        if customer is None:
            self.finish(ctx)
            return reply("户号印在燃气缴费单、IC 卡或燃气卡套上（通常为 10 位数字）。如果都找不到，"
                         "请户主携带身份证到任一营业厅查询，或转人工客服核实身份后告知。",
                         quick=[{"label": "转人工", "action": "handoff"}, {"label": "营业厅在哪", "text": "营业厅在哪"}],
                         intent="account_number_query")
        return await self.step(ctx, turn)

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        customer = await verified_customer(ctx)
        self.finish(ctx)
        if customer is None or not customer.accounts:
            return reply("没有查到您名下的户号，请转人工核实。", quick=[{"label": "转人工", "action": "handoff"}])
        numbers = "、".join(a.account_no for a in customer.accounts)
        return reply(f"您名下的户号：{numbers}。", intent="account_number_query")
