"""A small rule-based bot: greets, offers a menu, recognises requests for a person.
The NLU bot (gasdesk.bot.nlu) replaces it behind the same interface."""

from __future__ import annotations

import re
from typing import Any

from gasdesk.bot.base import BotContext, BotMessage, BotReply

HUMAN_RE = re.compile(r"转人工|人工客服|人工服务|找人工|真人|接人工|客服人员|找客服|人工")
MENU = [
    {"label": "燃气业务", "text": "燃气业务"},
    {"label": "热力业务", "text": "热力业务"},
    {"label": "缴费账单", "text": "缴费账单"},
    {"label": "转人工", "action": "handoff"},
]
TOPICS = {
    "燃气业务": ("燃气业务包括开栓、维修、改线、安检等，请简单描述您的问题，或点击“转人工”。", "gas"),
    "热力业务": ("热力业务包括供暖报修、采暖费、停暖通知等，请简单描述您的问题，或点击“转人工”。", "heating"),
    "缴费账单": ("可通过营业厅、微信公众号、支付宝生活缴费和银行代扣缴纳燃气费和采暖费。", "billing"),
}
GREETING = "您好，我是燃气热力智能客服小暖，请问有什么可以帮您？"


class RuleBot:
    async def greet(self, ctx: BotContext) -> BotReply:
        return BotReply([BotMessage(GREETING, quick_replies=MENU)], understood=True, intent="greeting")

    async def reply(self, ctx: BotContext, text: str, payload: dict[str, Any] | None = None) -> BotReply:
        remembered = ctx.state.get("skill_hint")
        if (payload or {}).get("action") == "handoff" or HUMAN_RE.search(text):
            return BotReply([], handoff_requested=True, intent="human_agent", skill_hint=remembered)
        for key, (answer, skill) in TOPICS.items():
            if key in text:
                ctx.state["skill_hint"] = skill  # the topic the resident picked routes a later hand-off
                return BotReply([BotMessage(answer, quick_replies=MENU)], intent=key, skill_hint=skill)
        if re.search(r"你好|您好|在吗|hi|hello", text, re.I):
            return BotReply([BotMessage(GREETING, quick_replies=MENU)], intent="greeting")
        return BotReply(
            [BotMessage("抱歉，我没有理解您的问题。您可以换个说法，或选择下面的服务：", quick_replies=MENU)],
            understood=False, skill_hint=remembered,
        )

    async def aside(self, ctx: BotContext, text: str) -> BotReply | None:
        return None  # this bot starts nothing that needs finishing once people have the chat
