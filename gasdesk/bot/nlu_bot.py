"""The intelligent bot: offline NLU + guided flows + safety first.

Order of business for every message: (1) a possible gas leak always wins, in any state; (2) a running
flow gets the message when it answers the flow's question (a button, a slot the flow takes, yes/no, free
text where the flow asks for it; ``Flow.expects``), and the resident may cancel it or correct a slot; a
clear new request (a confident intent of another topic, or a question/request of a related one) pauses
the flow instead and is answered at once, and the paused flow is offered again once
(``gasdesk.bot.dialogue.pause``); (3) otherwise the intent picks a flow or an answer; below the confidence
threshold the bot asks a clarifying question with up to three suggestions, and a second miss hands over to
a person. A flow that cannot use a message asks again (its own retry policy offers a person at the third
try) with a button for the other request the message may have been; such retries are not bot misses.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

from gasdesk.bot.base import BotContext, BotMessage, BotReply
from gasdesk.bot.dialogue import extra_flows, pause
from gasdesk.bot.dialogue.account import AccountNumberFlow, BalanceFlow
from gasdesk.bot.dialogue.answers import STANDARD_ANSWERS
from gasdesk.bot.dialogue.booking import BookingFlow
from gasdesk.bot.dialogue.emergency import escalate_emergency, take_leak_address
from gasdesk.bot.dialogue.flow import ASKS_RE, CANCEL_RE, NO_RE, QUESTION_RE, YES_RE, Flow, Turn, reply
from gasdesk.bot.dialogue.pause import RESUME_RE
from gasdesk.bot.nlu import Understanding, understand
from gasdesk.bot.nlu.classifier import get_classifier
from gasdesk.bot.nlu.context import DialogueContext, Reading, refused_request, understand_in_context
from gasdesk.bot.nlu.scope import mentions_domain
from gasdesk.kb.service import knowledge_answer
from gasdesk.observability.metrics import BOT_UNDERSTAND

CONFIDENCE_THRESHOLD = 0.45
CONTEXT_KEY = "nlu_context"  # the last request's intent and non-personal slots (bot/nlu/context.py)
# A running flow is left for another request only when the classifier is this sure (lower for asking for a
# person or complaining, which must never be held up by a flow) and the message is not an answer to it.
SWITCH_CONFIDENCE = 0.8
SWITCH_CONFIDENCE_OF = {"human_agent": 0.6, "complaint": 0.6}
# A question that names something of the domain ("营业厅在哪里") is clear at a lower confidence; without
# such a word ("能不能快点", "什么意思") it is about the flow itself.
SWITCH_CONFIDENCE_TOPICAL_QUESTION = 0.6
MIN_REQUEST_CHARS = 3
NOT_REQUESTS = frozenset({"greeting", "goodbye", "out_of_scope", "gas_leak", "human_agent"})
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
# Every flow, by name and by the intent that starts it (a missing module fails loudly at import).
_ALL_FLOWS: list[type[Flow]] = [BookingFlow, BalanceFlow, AccountNumberFlow, *extra_flows.FLOWS]
FLOWS: dict[str, type[Flow]] = {f.name: f for f in _ALL_FLOWS}
FLOW_OF_INTENT: dict[str, type[Flow]] = {f.intent: f for f in FLOWS.values()}
FLOW_TITLES = {name: flow.title or INTENT_LABELS.get(flow.intent, name) for name, flow in FLOWS.items()}


class NluBot:
    async def greet(self, ctx: BotContext) -> BotReply:
        return BotReply([BotMessage(GREETING, quick_replies=MENU)], intent="greeting")

    async def reply(self, ctx: BotContext, text: str, payload: dict[str, Any] | None = None) -> BotReply:
        payload = payload or {}
        if payload.get("action") == "handoff":
            pause.forget(ctx)
            return BotReply([], handoff_requested=True, intent="human_agent")
        reading = await asyncio.to_thread(self._read, ctx, text)
        u = reading.understanding
        taken = await take_leak_address(ctx, text)  # the address of a leak reported earlier in this chat
        if u.intent == "gas_leak":
            pause.forget(ctx)  # the leak is all that matters now; people take over
            return await escalate_emergency(ctx, text, u)
        if taken is not None:
            return taken
        result = await self._answer(ctx, Turn(text, payload, u))
        if result.handoff_requested:
            pause.forget(ctx)
        elif reading.also:
            result = self._offer_also(result, reading)
        return pause.offer(ctx, result, FLOW_TITLES)

    @staticmethod
    def _read(ctx: BotContext, text: str) -> Reading:
        """The message in the context of the conversation's last request; the context moves on with it.
        While a flow runs (or offers itself back) the flow is the context: it reads answers to its own question
        (``Flow.expects``), so the message keeps its own reading there."""
        context = DialogueContext.from_state(ctx.state.get(CONTEXT_KEY))
        with BOT_UNDERSTAND.time():
            own = understand(text)
            if ctx.state.get("flow_state") or pause.has_offer(ctx):
                # Even in a flow, "不用转人工了" must not hand the resident over.
                reading = refused_request(text, own, context) or Reading(own)
            else:
                reading = understand_in_context(text, context, understood=own)
        # "算了": the resident drops the topic; nothing carries over from it.
        ctx.state[CONTEXT_KEY] = (DialogueContext() if CANCEL_RE.search(text) else context.after(reading)).to_state()
        return reading

    @staticmethod
    def _offer_also(result: BotReply, reading: Reading) -> BotReply:
        """A second request in the same message ("查余额顺便问下营业厅几点开门") is offered as the next step."""
        wanted = [i for i in reading.also if i in INTENT_LABELS and i != result.intent]
        if not wanted or not result.messages:
            return result
        labels = "、".join(f"「{INTENT_LABELS[i]}」" for i in wanted)
        buttons = [{"label": f"接着办：{INTENT_LABELS[i]}", "text": INTENT_LABELS[i], "value": pause.ASK_INTENT + i}
                   for i in wanted]
        return replace(result, messages=[*result.messages,
                                         BotMessage(f"您还提到了{labels}，处理完上面的事项后点下方按钮继续。",
                                                    quick_replies=buttons)])

    async def aside(self, ctx: BotContext, text: str) -> BotReply | None:
        return await take_leak_address(ctx, text)

    async def _answer(self, ctx: BotContext, turn: Turn) -> BotReply:
        u = turn.understanding
        text = turn.text.strip()
        choice = turn.choice
        running = ctx.state.get("flow_state")
        if choice is not None and not choice.startswith("@") and not running:
            entry = pause.take_by_button(ctx, turn.text, choice)
            flow_cls = FLOWS.get(entry.get("flow") or "") if entry else None
            if entry is not None and flow_cls is not None:  # a button of a paused flow's question: go on there
                ctx.state["flow_state"] = {k: v for k, v in entry.items() if k != "offered"}
                return await self._step(ctx, flow_cls.from_state(entry), turn)
        offered = pause.take_offered(ctx)  # offered at the end of the last turn: taken now or let go
        if choice is not None and choice.startswith("@"):
            if choice == pause.RESUME and offered is not None:
                return self._resume(ctx, offered)
            if choice == pause.DROP:
                return reply("好的。还有其他可以帮您的吗？", quick=MENU, intent=u.intent)
            wanted = choice.removeprefix(pause.ASK_INTENT)
            if choice.startswith(pause.ASK_INTENT) and wanted in INTENT_LABELS:
                if running:
                    pause.pause(ctx, running)
                return await self._new_request(ctx, Turn(text, {}, Understanding(wanted, 1.0, u.slots)))
            turn = Turn(text, {}, u)  # a stale engine button: read it as text
            choice = None
        if offered is not None and not running:
            if RESUME_RE.match(text) or YES_RE.match(text):
                return self._resume(ctx, offered)
            if CANCEL_RE.search(text) or NO_RE.match(text):
                return reply("好的。还有其他可以帮您的吗？", quick=MENU, intent=u.intent)
        if running:
            flow_cls = FLOWS.get(running.get("flow"))
            if flow_cls is not None and CANCEL_RE.search(text):
                ctx.state.pop("flow_state", None)
                return reply("好的，已取消。还有其他可以帮您的吗？", quick=MENU, intent=u.intent)
            if flow_cls is not None:
                flow = flow_cls.from_state(running)
                if self._wants_person(turn):
                    ctx.state.pop("flow_state", None)
                elif self._interrupts(flow, turn):
                    pause.pause(ctx, running)
                else:
                    return await self._step(ctx, flow, turn)
            else:
                ctx.state.pop("flow_state", None)
        return await self._new_request(ctx, turn)

    @staticmethod
    def _wants_person(turn: Turn) -> bool:
        u = turn.understanding
        return turn.choice is None and u.intent == "human_agent" and u.confidence >= SWITCH_CONFIDENCE_OF["human_agent"]

    @staticmethod
    def _interrupts(flow: Flow, turn: Turn) -> bool:
        """A clear new request rather than an answer to the flow's question."""
        u = turn.understanding
        text = turn.text.strip()
        if turn.choice is not None or u.intent in NOT_REQUESTS or u.intent == flow.intent:
            return False
        if len(re.sub(r"[\W_]", "", text)) < MIN_REQUEST_CHARS:  # "是的", "没有": too short to be a request
            return False
        asks = bool(ASKS_RE.search(text))
        needed = SWITCH_CONFIDENCE_OF.get(u.intent, SWITCH_CONFIDENCE)
        if QUESTION_RE.search(text) and mentions_domain(text):
            needed = min(needed, SWITCH_CONFIDENCE_TOPICAL_QUESTION)
        if u.confidence < needed:
            return False
        if flow.expects(turn):  # it carries an answer: only a question about something else leaves
            return asks and u.intent not in flow.related
        if u.intent in flow.related or flow.asking in flow.free_text:
            return asks
        return True

    async def _step(self, ctx: BotContext, flow: Flow, turn: Turn) -> BotReply:
        return self._finish_turn(ctx, flow, await flow.step(ctx, turn), turn)

    def _finish_turn(self, ctx: BotContext, flow: Flow, result: BotReply, turn: Turn) -> BotReply:
        u = turn.understanding
        if "flow_state" in ctx.state:  # Flow.finish() removes it when the flow is done
            if not result.understood:
                result = self._offer_other_request(flow, result, turn)
            ctx.state["flow_state"] = {**flow.to_state(), "prompt": pause.store_prompt(result.messages)}
        if result.intent is None:
            result = replace(result, intent=u.intent, confidence=u.confidence, slots=u.slots)
        return result

    @staticmethod
    def _offer_other_request(flow: Flow, result: BotReply, turn: Turn) -> BotReply:
        """The flow could not use the message: if it may have been another request, offer that as a button."""
        u = turn.understanding
        if (turn.choice is not None or u.intent in NOT_REQUESTS or u.intent == flow.intent
                or u.intent not in INTENT_LABELS or u.confidence < CONFIDENCE_THRESHOLD or not result.messages):
            return result
        label = INTENT_LABELS[u.intent]
        button = {"label": f"我想问：{label}", "text": label, "value": pause.ASK_INTENT + u.intent}
        last = result.messages[-1]
        return replace(result, messages=[*result.messages[:-1],
                                         replace(last, quick_replies=[*last.quick_replies, button])])

    def _resume(self, ctx: BotContext, entry: dict[str, Any]) -> BotReply:
        """Ask the paused flow's question again; the next answer goes on from there."""
        state = {k: v for k, v in entry.items() if k != "offered"}
        ctx.state["flow_state"] = state
        flow_cls = FLOWS.get(state.get("flow") or "")
        title = FLOW_TITLES.get(state.get("flow") or "", "刚才的业务")
        question = pause.prompt_messages(state) or [BotMessage("请接着回答刚才的问题。")]
        return BotReply([BotMessage(f"好的，我们继续「{title}」。"), *question],
                        intent=flow_cls.intent if flow_cls else None, confidence=1.0)

    async def _new_request(self, ctx: BotContext, turn: Turn) -> BotReply:
        u = turn.understanding
        if u.intent == "human_agent":
            return BotReply([], handoff_requested=True, intent=u.intent, confidence=u.confidence, slots=u.slots)
        if u.confidence < CONFIDENCE_THRESHOLD and u.intent not in ("greeting", "goodbye"):
            return self._clarify(turn)
        ctx.state.pop("clarify_misses", None)
        flow_cls = FLOW_OF_INTENT.get(u.intent)
        if flow_cls is not None:
            pause.forget(ctx, flow_cls.name)  # started afresh: the paused one is not offered any more
            flow = flow_cls()
            ctx.state["flow_state"] = flow.to_state()
            return self._finish_turn(ctx, flow, await flow.start(ctx, turn), turn)
        if u.intent == "greeting":
            return reply(GREETING, quick=MENU, intent=u.intent, confidence=u.confidence)
        if u.intent == "goodbye":
            return reply("感谢您的咨询，祝您生活愉快！如有需要随时找我。", intent=u.intent, confidence=u.confidence)
        if u.intent == "out_of_scope":
            return reply("抱歉，这个问题超出了我的服务范围。我可以帮您处理燃气、供暖相关的业务，例如：", quick=MENU,
                         intent=u.intent, confidence=u.confidence)
        answer, quick = await self._knowledge_answer(ctx, turn.text, u.intent)
        return reply(answer, quick=quick, intent=u.intent,
                     confidence=u.confidence, slots=u.slots, skill_hint=SKILL_OF_INTENT.get(u.intent))

    def _clarify(self, turn: Turn) -> BotReply:
        ranking = get_classifier().predict(turn.text).ranking
        suggestions = [i for i, _ in ranking if i in INTENT_LABELS][:3]
        return reply("我不太确定您的意思，您是想咨询以下哪一项？",
                     quick=[{"label": INTENT_LABELS[i], "text": INTENT_LABELS[i]} for i in suggestions]
                     + [{"label": "转人工", "action": "handoff"}],
                     understood=False, intent=turn.understanding.intent, confidence=turn.understanding.confidence,
                     slots=turn.understanding.slots)

    async def _knowledge_answer(self, ctx: BotContext, text: str, intent: str) -> tuple[str, list[dict[str, str]]]:
        """The article's title and passage (or a standard answer) with its buttons: always 没解决？转人工; in the
        web chat also 有帮助/没帮助 for the quoted article (the widget posts them to the KB feedback API)."""
        answer = await knowledge_answer(ctx.session, text, intent=intent, channel=ctx.conversation.channel)
        # For the reports: the pipeline takes this note off the state with the turn (bot.turn event).
        ctx.state["knowledge"] = "hit" if answer else "miss"
        handoff = {"label": "没解决？转人工", "action": "handoff"}
        if answer is None:
            return STANDARD_ANSWERS.get(intent) or "这个问题我暂时无法准确回答，建议您转人工客服。", [handoff]
        if ctx.conversation.channel != "webchat":  # numbered replies on WeChat/SMS come back to the bot as text
            return answer.text, [handoff]
        article = str(answer.article_id)
        return answer.text, [{"label": "有帮助", "action": "kb_feedback", "article_id": article, "helpful": "1"},
                             {"label": "没帮助", "action": "kb_feedback", "article_id": article, "helpful": "0"},
                             handoff]
