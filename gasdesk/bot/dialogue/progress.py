"""Appointment / ticket progress: identity first (phone-verified chat or 户号 + last 4 digits), then the status,
slot and assigned crew of the customer's recent tickets."""

from __future__ import annotations

from typing import Any

from gasdesk.appointments.service import progress_for
from gasdesk.bot.base import BotContext, BotReply
from gasdesk.bot.dialogue.common import customer_phone
from gasdesk.bot.dialogue.flow import Flow, Turn, reply
from gasdesk.bot.dialogue.identity import ensure_identity

SHOWN = 5


def progress_line(item: dict[str, Any]) -> str:
    what = item["title"] or item["type_label"]
    line = f"· 工单 {item['ticket_number']}（{item['type_label']}）：{what}；状态：{item['status_label']}"
    if item.get("appointment_status") == "cancelled":
        line += "（预约已取消）"
    elif item.get("slot"):
        line += f"；上门时间：{item['slot']}"
    line += f"；上门师傅：{item['crew']}" if item.get("crew") else ("；尚未派单" if item["status"] == "new" else "")
    return line


class ProgressFlow(Flow):
    name = "progress"
    intent = "appointment_progress"
    title = "查询工单进度"
    related = frozenset({"appointment_cancel", "appointment_book"})
    answer_slots = ("account_no",)

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        customer = await ensure_identity(ctx, self, turn, "查询工单进度")
        if isinstance(customer, BotReply):
            return customer
        self.finish(ctx)
        if customer.accounts:
            items = await progress_for(ctx.session, account_no=customer.accounts[0].account_no)
        else:
            items = await progress_for(ctx.session, phone=customer_phone(customer))
        if not items:
            return reply("没有查到您近期的预约或工单。需要预约上门服务吗？",
                         quick=[{"label": "预约上门", "text": "我要预约上门服务"}], intent=self.intent)
        lines = [progress_line(i) for i in items[:SHOWN]]
        quick = [{"label": "改约/取消预约", "text": "我想改约或取消预约"}, {"label": "转人工", "action": "handoff"}]
        return reply("您近期的工单和预约：\n" + "\n".join(lines),
                     "如需改约或取消，请在上门 2 小时前告诉我。", quick=quick, intent=self.intent)
