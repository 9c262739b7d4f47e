"""Cancel or reschedule a booked appointment: identity → which appointment (buttons) → 取消 or 改约 (a new slot
from real capacity) → confirm. The 2-hour rule is explained instead of failing silently."""

from __future__ import annotations

import re

from sqlalchemy import select

from gasdesk.appointments import service as appointments
from gasdesk.appointments.models import Appointment, AppointmentSlot
from gasdesk.bot.base import BOT_ACTOR, BotContext, BotMessage, BotReply
from gasdesk.bot.dialogue.booking import _matches
from gasdesk.bot.dialogue.flow import NO_RE, YES_RE, Flow, Turn, option, reply
from gasdesk.bot.dialogue.identity import ensure_identity
from gasdesk.bot.nlu import Understanding
from gasdesk.clock import as_utc, utcnow
from gasdesk.errors import GasdeskError
from gasdesk.tickets.models import Ticket

RESCHEDULE_RE = re.compile(r"改约|改期|改时间|换时间|换个时间|改个时间|改到|改成|改在|推迟|延后|往后|提前|挪到|换到|换一天|另约")
CANCEL_APPT_RE = re.compile(r"取消|不要上门|不用来了|不需要上门|撤销")
TOO_LATE = ("距离上门时间不足 2 小时，按规定不能在线改约或取消。如需调整，请拨打 96777 或转人工客服，"
            "我们会联系上门师傅。")


def prepend(text: str, result: BotReply) -> BotReply:
    return BotReply(messages=[BotMessage(text), *result.messages], understood=result.understood,
                    intent=result.intent, confidence=result.confidence, slots=result.slots,
                    handoff_requested=result.handoff_requested, skill_hint=result.skill_hint)


async def open_appointments(ctx: BotContext, customer_id: int) -> list[tuple[Appointment, AppointmentSlot, str]]:
    """The customer's booked appointments that have not ended yet, soonest first, with a label."""
    rows = await ctx.session.execute(
        select(Appointment, AppointmentSlot).join(AppointmentSlot, AppointmentSlot.id == Appointment.slot_id)
        .where(Appointment.customer_id == customer_id, Appointment.status == "booked")
        .order_by(AppointmentSlot.start))
    found = []
    for appointment, slot in rows.all():
        if as_utc(slot.end) <= utcnow():
            continue
        ticket = await ctx.session.get(Ticket, appointment.ticket_id)
        number = f"（{ticket.number}）" if ticket else ""
        found.append((appointment, slot, f"{appointment.service_code} {appointments.slot_label(slot)}{number}"))
    return found


class ChangeAppointmentFlow(Flow):
    name = "change_appointment"
    intent = "appointment_cancel"
    title = "改约/取消预约"
    related = frozenset({"appointment_book", "appointment_progress"})
    answer_slots = ("date", "time", "account_no")

    def expects(self, turn: Turn) -> bool:
        return super().expects(turn) or bool(RESCHEDULE_RE.search(turn.text) or CANCEL_APPT_RE.search(turn.text))

    def _take_action(self, turn: Turn) -> bool:
        text = turn.text.strip()
        action = None
        if turn.choice in ("cancel", "reschedule"):
            action = turn.choice
        elif turn.choice is None and not text.startswith("确认"):
            if RESCHEDULE_RE.search(text):
                action = "reschedule"
            elif CANCEL_APPT_RE.search(text):
                action = "cancel"
        if action and action != self.slots.get("action"):
            self.slots["action"] = action
            self.slots.pop("new_slot_id", None)
            return True
        return False

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        u = turn.understanding
        text = turn.text.strip()
        changed = self._take_action(turn)
        # Dates/times count when typed; a pressed button's label (e.g. an appointment's slot) is no preference.
        if turn.choice is None and self.absorb(u, ("date", "time")):
            self.slots.pop("new_slot_id", None)
            self.slots.setdefault("action", "reschedule")
            changed = True
        if changed and self.asking == "confirm":
            self.asking = None  # a correction: ask again with the new values
        customer = await ensure_identity(ctx, self, turn, "修改预约")
        if isinstance(customer, BotReply):
            return customer
        found = await open_appointments(ctx, customer.id)
        by_id = {a.id: (a, s, label) for a, s, label in found}
        if self.asking == "appointment" and turn.choice and turn.choice.isdigit() and int(turn.choice) in by_id:
            self.slots["appointment_id"] = int(turn.choice)
            self.asking = None
        if self.slots.get("appointment_id") not in by_id:
            self.slots.pop("appointment_id", None)
            if not found:
                self.finish(ctx)
                return reply("您名下没有待上门的预约。需要新预约上门服务吗？",
                             quick=[{"label": "预约上门", "text": "我要预约上门服务"}])
            if len(found) == 1:
                self.slots["appointment_id"] = found[0][0].id
            else:
                quick = [option(label, str(a.id)) for a, _, label in found[:6]]
                if self.asking == "appointment":
                    return self.reprompt("请点击选择要修改的预约：", quick=quick)
                self.asking = "appointment"
                return reply("您有多个待上门的预约，请选择要修改的一个：", quick=quick)
        appointment, slot, label = by_id[self.slots["appointment_id"]]
        if as_utc(slot.start) - utcnow() < appointments.CHANGE_CUTOFF:
            self.finish(ctx)
            return reply(f"您的预约 {label} {TOO_LATE}", quick=[{"label": "转人工", "action": "handoff"}])
        action = self.slots.get("action")
        if action is None:
            quick = [option("改约（换个时间）", "reschedule"), option("取消预约", "cancel")]
            if self.asking == "action":
                return self.reprompt("请选择“改约”或“取消预约”。", quick=quick)
            self.asking = "action"
            return reply(f"您的预约：{label}。请问要改约还是取消？", quick=quick)
        new_slot = None
        if action == "reschedule":
            free = [s for s in await appointments.available_slots(ctx.session, slot.district, appointment.service_code)
                    if s.id != slot.id]
            if self.slots.get("new_slot_id") not in {s.id for s in free}:
                self.slots.pop("new_slot_id", None)
            if self.asking == "slot" and turn.choice and turn.choice.isdigit():
                if any(s.id == int(turn.choice) for s in free):
                    self.slots["new_slot_id"] = int(turn.choice)
            if "new_slot_id" not in self.slots and (self.slots.get("date") or self.slots.get("time")):
                wanted = [s for s in free if _matches(s, self.slots.get("date"), self.slots.get("time"))]
                if wanted:
                    self.slots["new_slot_id"] = wanted[0].id
            if "new_slot_id" not in self.slots:
                if not free:
                    self.finish(ctx)
                    return reply(f"抱歉，{slot.district}近两周已没有可改约的{appointment.service_code}时段，"
                                 "原预约保持不变。需要转人工登记吗？", quick=[{"label": "转人工", "action": "handoff"}])
                quick = [option(appointments.slot_label(s), str(s.id)) for s in free[:6]]
                if self.asking == "slot" and not changed and not (self.slots.get("date") or self.slots.get("time")):
                    return self.reprompt("请点击选择新的上门时间，或告诉我日期和上午/下午：", quick=quick)
                self.asking = "slot"
                note = "您说的时间没有空余名额，" if self.slots.get("date") or self.slots.get("time") else ""
                return reply(f"{note}请选择新的上门时间（原时间：{appointments.slot_label(slot)}）：", quick=quick)
            new_slot = await ctx.session.get(AppointmentSlot, int(self.slots["new_slot_id"]))
            assert new_slot is not None
        if self.asking != "confirm":
            self.asking = "confirm"
            if new_slot is not None:
                question = (f"请确认改约：{appointment.service_code}，由 {appointments.slot_label(slot)} 改到 "
                            f"{appointments.slot_label(new_slot)}。确认改约吗？")
                quick = [option("确认改约", "yes"), option("换个时间", "other_slot"), option("改为取消预约", "cancel")]
            else:
                question = f"请确认取消预约：{label}。取消后名额将释放给其他居民。确认取消吗？"
                quick = [option("确认取消预约", "yes"), option("改为改约", "reschedule"), option("保留预约", "keep")]
            return reply(question, quick=quick)
        if turn.choice == "keep":
            self.finish(ctx)
            return reply(f"好的，预约保持不变：{label}。")
        if turn.choice == "other_slot" or NO_RE.match(text):
            self.slots.pop("new_slot_id", None)
            self.slots.pop("date", None)
            self.slots.pop("time", None)
            if action == "cancel":
                self.slots.pop("action", None)
            self.asking = None
            return await self.step(ctx, Turn("", {}, Understanding(self.intent, 1.0, {})))
        if turn.choice != "yes" and not YES_RE.match(text) and not text.startswith("确认"):
            return self.reprompt("请回复“确认”，或点击下方按钮修改。",
                                 quick=[option("确认", "yes"), option("保留原预约", "keep")])
        try:
            if new_slot is not None:
                await appointments.do_reschedule(ctx.session, BOT_ACTOR, appointment, new_slot.id)
            else:
                await appointments.do_cancel_appointment(ctx.session, BOT_ACTOR, appointment, reason="居民在线取消")
        except GasdeskError as exc:
            if exc.code in ("too_late_to_change", "appointment_closed"):
                self.finish(ctx)
                text_out = TOO_LATE if exc.code == "too_late_to_change" else exc.message
                return reply(f"操作未成功：{text_out}", quick=[{"label": "转人工", "action": "handoff"}])
            self.slots.pop("new_slot_id", None)
            self.asking = None
            return prepend(f"改约未成功：{exc.message}。",
                           await self.step(ctx, Turn("", {}, Understanding(self.intent, 1.0, {}))))
        self.finish(ctx)
        ticket = await ctx.session.get(Ticket, appointment.ticket_id)
        number = ticket.number if ticket else ""
        if new_slot is not None:
            return reply(f"改约成功！工单 {number}，{appointment.service_code}，新的上门时间：{appointments.slot_label(new_slot)}。"
                         "师傅上门前会与您电话联系。", intent=self.intent)
        return reply(f"已为您取消预约：{appointment.service_code} {appointments.slot_label(slot)}（工单 {number}）。"
                     "如需重新预约，随时告诉我。", quick=[{"label": "重新预约", "text": "我要预约上门服务"}],
                     intent=self.intent)
