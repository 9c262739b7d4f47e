"""Complaint and praise intake: what happened (asked for when the first message is vague) → contact → confirm.
A complaint then goes where the matching routing rule's ``complaint_mode`` says: a live agent (hand-off with the
summary) or a ``complaint`` ticket with the response-time promise; praise becomes a ``praise`` ticket."""

from __future__ import annotations

import re
from typing import ClassVar

from gasdesk.bot.base import BOT_ACTOR, BotContext, BotMessage, BotReply
from gasdesk.bot.dialogue.common import (
    BAD_PHONE,
    contact_customer,
    customer_area,
    customer_phone,
    district_in,
    mask_phone,
    phone_in,
    promise,
    ticket_status_text,
)
from gasdesk.bot.dialogue.flow import YES_RE, Flow, Turn, option, reply
from gasdesk.customers.models import Customer
from gasdesk.errors import GasdeskError
from gasdesk.tickets.routing import route_ticket
from gasdesk.tickets.schemas import TicketCreate
from gasdesk.tickets.service import FiledReport, do_file_report

# Words that say "I want to complain/praise" without saying what happened.
FILLER_RE = re.compile(r"我|要|想|去|对|给|把|你们|您们|一下|一个|的|了|啊|呀|吧|呢|投诉|表扬|反映|反馈|意见|建议|感谢|谢谢"
                       r"|公司|燃气|热力|服务|问题|情况|事情|[\s，。,.!！?？~～]")
MIN_DETAIL = 6
MIN_ADDITION = 4


def is_vague(text: str) -> bool:
    return len(FILLER_RE.sub("", text or "")) < MIN_DETAIL


class FeedbackFlow(Flow):
    # What happened, anything added, and remarks at the confirmation are the resident's own words.
    free_text = frozenset({"details", "more", "confirm"})
    answer_slots = ("phone",)
    ticket_type: ClassVar[str] = ""
    label: ClassVar[str] = ""
    ask_details: ClassVar[str] = ""
    phone_optional: ClassVar[bool] = False

    async def start(self, ctx: BotContext, turn: Turn) -> BotReply:
        if not is_vague(turn.text):
            self.slots["details"] = turn.text.strip()[:1000]
        return await self.step(ctx, turn)

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        text = turn.text.strip()
        customer = await contact_customer(ctx)
        phone = phone_in(text, turn.understanding.slots)
        if phone and phone != self.slots.get("phone"):
            self.slots["phone"] = phone  # a corrected number replaces the earlier one
            if self.asking == "confirm":
                self.asking = None
        # what happened
        if self.asking == "details":
            if is_vague(text):
                return self.reprompt(self.ask_details)
            self.slots["details"] = text[:1000]
            self.asking = None
        elif self.asking == "more" and text:
            self.slots["details"] = (self.slots.get("details", "") + "\n补充：" + text)[:1000]
            self.asking = None
        if not self.slots.get("details"):
            self.asking = "details"
            return reply(self.ask_details)
        # contact
        if not self.slots.get("phone") and customer is not None and customer_phone(customer):
            self.slots["phone"] = customer_phone(customer) or ""
        if not self.slots.get("phone") and not self.slots.get("no_phone"):
            if self.asking == "phone" and turn.choice == "skip" and self.phone_optional:
                self.slots["no_phone"] = "1"
            else:
                quick = [option("不留电话", "skip")] if self.phone_optional else None
                if self.asking == "phone":
                    return self.reprompt("请输入正确的手机号码（11 位）或带区号的固定电话。", quick=quick)
                self.asking = "phone"
                return reply("请留下您的联系电话，方便工作人员回复您。", quick=quick)
        # confirm (a longer message here adds to the account of what happened)
        if self.asking == "confirm":
            if turn.choice == "yes" or YES_RE.match(text) or text.startswith("确认"):
                return await self.submit(ctx, customer)
            if turn.choice == "more":
                self.asking = "more"
                return reply("请补充您要说明的内容：")
            if len(text) >= MIN_ADDITION and not phone:
                self.slots["details"] = (self.slots["details"] + "\n补充：" + text)[:1000]
            elif not phone:
                return self.reprompt("请点击“确认提交”，或补充说明。", quick=self._confirm_quick())
        self.asking = "confirm"
        contact = f"联系电话：{mask_phone(self.slots['phone'])}" if self.slots.get("phone") else "不留联系电话"
        return reply(f"请确认{self.label}内容：\n{self.slots['details']}\n{contact}\n确认提交吗？",
                     quick=self._confirm_quick())

    @staticmethod
    def _confirm_quick() -> list[dict[str, str]]:
        return [option("确认提交", "yes"), option("补充内容", "more")]

    async def submit(self, ctx: BotContext, customer: Customer | None) -> BotReply:
        raise NotImplementedError

    async def _ticket(self, ctx: BotContext, customer: Customer | None, title: str,
                      district: str | None) -> FiledReport | None:
        try:
            return await do_file_report(ctx.session, BOT_ACTOR, TicketCreate(
                type=self.ticket_type, title=title[:120], description=self.slots["details"],
                customer_id=customer.id if customer else None, contact_phone=self.slots.get("phone") or None,
                district=district, channel=ctx.conversation.channel, conversation_id=ctx.conversation.id))
        except GasdeskError as exc:
            if exc.code != "invalid_phone":
                raise
            self.slots.pop("phone", None)
            self.asking = "phone"
            return None

    def _district(self, customer: Customer | None) -> str | None:
        return district_in(self.slots.get("details", "")) or customer_area(customer).district


class ComplaintFlow(FeedbackFlow):
    name = "complaint"
    intent = "complaint"
    title = "投诉"
    ticket_type = "complaint"
    label = "投诉"
    ask_details = "很抱歉给您带来不好的体验。请具体说说发生了什么：时间、地点、涉及的人员或工单号，以及您的诉求。"

    async def submit(self, ctx: BotContext, customer: Customer | None) -> BotReply:
        district = self._district(customer)
        decision = await route_ticket(ctx.session, ticket_type="complaint", district=district,
                                      text=self.slots["details"], customer_tags=list(customer.tags or []) if customer else [])
        summary = self.slots["details"][:200]
        if decision.complaint_mode == "live_agent":
            self.finish(ctx)
            # The hand-off itself tells the resident where they stand (queued, or no one free: leave a message).
            return BotReply([BotMessage(f"已记录您反映的情况：{summary}\n现在为您转接投诉处理专员。")],
                            handoff_requested=True, skill_hint="complaint", intent=self.intent, confidence=1.0,
                            slots={"summary": summary, "phone": self.slots.get("phone", "")})
        filed = await self._ticket(ctx, customer, "居民投诉：" + summary.replace("\n", " "), district)
        if filed is None:
            return reply(BAD_PHONE, understood=False)
        self.finish(ctx)
        ticket = filed.ticket
        if not filed.created:
            return reply(f"您在本次对话中的投诉已受理（工单号 {ticket.number}，{ticket_status_text(ticket)}），"
                         "这次反映的内容已补充到该工单，处理人员会一并处理。", intent=self.intent)
        return reply(f"您的投诉已受理，工单号 {ticket.number}。{promise(ticket.respond_by)}，处理结果会及时告知您。"
                     "感谢您的监督！", intent=self.intent)


class PraiseFlow(FeedbackFlow):
    name = "praise"
    intent = "praise"
    title = "表扬"
    ticket_type = "praise"
    label = "表扬"
    ask_details = "感谢您的认可！请问您想表扬哪位师傅或客服，因为什么事？（可以说上门时间、工单号或姓名）"
    phone_optional = True

    async def submit(self, ctx: BotContext, customer: Customer | None) -> BotReply:
        summary = self.slots["details"][:200].replace("\n", " ")
        filed = await self._ticket(ctx, customer, "居民表扬：" + summary, self._district(customer))
        if filed is None:
            return reply("这个电话号码格式不对，请重新输入，或点击“不留电话”。", quick=[option("不留电话", "skip")],
                         understood=False)
        self.finish(ctx)
        return reply(f"非常感谢您的表扬！已记录（编号 {filed.ticket.number}），我们会转达给相关同事，并作为服务考核的依据。",
                     intent=self.intent)
