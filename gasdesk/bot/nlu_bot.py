"""The intelligent bot: offline NLU + guided flows + safety first.

Order of business for every message: (1) a possible gas leak always wins, in any state; (2) a
running flow gets the message (the resident may cancel it or correct a slot); (3) otherwise the
intent picks a flow or an answer; below the confidence threshold the bot asks a clarifying
question with up to three suggestions, and a second miss hands over to a person.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gasdesk.bot.base import BotContext, BotMessage, BotReply
from gasdesk.bot.dialogue.account import AccountNumberFlow, BalanceFlow
from gasdesk.bot.dialogue.answers import STANDARD_ANSWERS
from gasdesk.bot.dialogue.booking import BookingFlow
from gasdesk.bot.dialogue.emergency import escalate_emergency
from gasdesk.bot.dialogue.flow import CANCEL_RE, Flow, Turn, reply
from gasdesk.bot.nlu import Understanding, understand

CONFIDENCE_THRESHOLD = 0.45
GREETING = "您好，我是燃气热力智能客服小暖，可以帮您预约上门服务、查询余额和进度、指导表具使用、处理无气和暖气不热等问题。请问有什么可以帮您？"
MENU = [
    {"label": "预约上门", "text": "我要预约上门服务"}, {"label": "查询余额", "text": "查询余额"},
    {"label": "家里没气", "text": "家里没气了"}, {"label": "暖气不热", "text": "暖气不热"},
    {"label": "转人工", "action": "handoff"},
]
INTENT_LABELS = {
    "appointment_book": "预约上门服务", "appointment_progress": "查询工单/预约进度", "appointment_cancel": "取消或改约",
    "balance_query": "查询余额/欠费", "account_number_query": "查询户号", "branch_info": "营业厅地址和时间",
    "payment_howto": "如何缴费", "no_gas": "家里没气", "outage_query": "停气停暖通知", "meter_guidance": "燃气表使用",
    "heating_not_warm": "暖气不热", "complaint": "投诉", "praise": "表扬", "business_handling": "业务办理",
    "price_query": "气价和采暖费", "safety_knowledge": "安全用气",
}
SKILL_OF_INTENT = {"heating_not_warm": "heating", "balance_query": "billing", "payment_howto": "billing",
                   "price_query": "billing", "complaint": "complaint"}
FLOWS: dict[str, type[Flow]] = {f.name: f for f in (BookingFlow, BalanceFlow, AccountNumberFlow)}
FLOW_OF_INTENT: dict[str, type[Flow]] = {f.intent: f for f in FLOWS.values()}


def _register_optional_flows() -> None:
    """Flows in their own modules register here (progress, self-checks, feedback, information)."""
    try:
        from gasdesk.bot.dialogue import extra_flows
    except ImportError:
        return
    for flow in extra_flows.FLOWS:
        FLOWS[flow.name] = flow
        FLOW_OF_INTENT[flow.intent] = flow


_register_optional_flows()


class NluBot:
    async def greet(self, ctx: BotContext) -> BotReply:
        return BotReply([BotMessage(GREETING, quick_replies=MENU)], intent="greeting")

    async def reply(self, ctx: BotContext, text: str, payload: dict[str, Any] | None = None) -> BotReply:
        payload = payload or {}
        if payload.get("action") == "handoff":
            return BotReply([], handoff_requested=True, intent="human_agent")
        u = await asyncio.to_thread(understand, text)
        if u.intent == "gas_leak":
            return await escalate_emergency(ctx, text, u)
        turn = Turn(text, payload, u)
        state = ctx.state.get("flow_state")
        if state:
            if CANCEL_RE.search(text.strip()):
                ctx.state.pop("flow_state", None)
                return reply("好的，已取消。还有其他可以帮您的吗？", quick=MENU, intent=u.intent)
            flow_cls = FLOWS.get(state.get("flow"))
            # A clearly different request leaves the flow (e.g. asking for a person mid-booking).
            if flow_cls is not None and not self._switches(u, flow_cls, turn):
                flow = flow_cls.from_state(state)
                return self._finish_turn(ctx, flow, await flow.step(ctx, turn), u)
            ctx.state.pop("flow_state", None)
        return await self._new_request(ctx, turn)

    @staticmethod
    def _switches(u: Understanding, flow_cls: type[Flow], turn: Turn) -> bool:
        if turn.payload.get("value") is not None:
            return False  # a button of the running flow
        return u.intent in ("human_agent", "complaint") and u.confidence >= 0.6 and flow_cls.intent != u.intent

    def _finish_turn(self, ctx: BotContext, flow: Flow, result: BotReply, u: Understanding) -> BotReply:
        if "flow_state" in ctx.state:  # Flow.finish() removes it when the flow is done
            ctx.state["flow_state"] = flow.to_state()
        if result.intent is None:
            result = BotReply(messages=result.messages, understood=result.understood, intent=u.intent,
                              confidence=u.confidence, slots=u.slots, handoff_requested=result.handoff_requested,
                              emergency=result.emergency, skill_hint=result.skill_hint, actions=result.actions)
        return result

    async def _new_request(self, ctx: BotContext, turn: Turn) -> BotReply:
        u = turn.understanding
        if u.intent == "human_agent":
            return BotReply([], handoff_requested=True, intent=u.intent, confidence=u.confidence, slots=u.slots)
        if u.confidence < CONFIDENCE_THRESHOLD and u.intent not in ("greeting", "goodbye"):
            return self._clarify(turn)
        ctx.state.pop("clarify_misses", None)
        flow_cls = FLOW_OF_INTENT.get(u.intent)
        if flow_cls is not None:
            flow = flow_cls()
            ctx.state["flow_state"] = flow.to_state()
            return self._finish_turn(ctx, flow, await flow.start(ctx, turn), u)
        if u.intent == "greeting":
            return reply(GREETING, quick=MENU, intent=u.intent, confidence=u.confidence)
        if u.intent == "goodbye":
            return reply("感谢您的咨询，祝您生活愉快！如有需要随时找我。", intent=u.intent, confidence=u.confidence)
        if u.intent == "out_of_scope":
            return reply("抱歉，这个问题超出了我的服务范围。我可以帮您处理燃气、供暖相关的业务，例如：", quick=MENU,
                         intent=u.intent, confidence=u.confidence)
        answer = await self._knowledge_answer(ctx, turn.text, u.intent)
        return reply(answer, quick=[{"label": "没解决，转人工", "action": "handoff"}], intent=u.intent,
                     confidence=u.confidence, slots=u.slots, skill_hint=SKILL_OF_INTENT.get(u.intent))

    def _clarify(self, turn: Turn) -> BotReply:
        from gasdesk.bot.nlu.classifier import get_classifier

        ranking = get_classifier().predict(turn.text).ranking
        suggestions = [i for i, _ in ranking if i in INTENT_LABELS][:3]
        return reply("我不太确定您的意思，您是想咨询以下哪一项？",
                     quick=[{"label": INTENT_LABELS[i], "text": INTENT_LABELS[i]} for i in suggestions]
                     + [{"label": "转人工", "action": "handoff"}],
                     understood=False, intent=turn.understanding.intent, confidence=turn.understanding.confidence,
                     slots=turn.understanding.slots)

    async def _knowledge_answer(self, ctx: BotContext, text: str, intent: str) -> str:
        try:
            from gasdesk.kb.search import best_answer
        except ImportError:
            best_answer = None
        if best_answer is not None:
            answer = await best_answer(ctx.session, text, intent=intent, channel=ctx.conversation.channel)
            if answer:
                return answer
        return STANDARD_ANSWERS.get(intent) or "这个问题我暂时无法准确回答，建议您转人工客服。"
