"""Book an on-site service: service → identity → address → slot (real capacity) → confirm."""

from __future__ import annotations

from datetime import date

from gasdesk.appointments import service as appointments
from gasdesk.appointments.models import AppointmentSlot
from gasdesk.bot.base import BOT_ACTOR, BotContext, BotReply
from gasdesk.bot.dialogue.flow import NO_RE, YES_RE, Flow, Turn, option, reply
from gasdesk.bot.dialogue.identity import ensure_identity
from gasdesk.bot.nlu import Understanding
from gasdesk.clock import to_local
from gasdesk.customers.addresses import parse_free_address
from gasdesk.customers.models import Customer
from gasdesk.customers.schemas import AddressIn
from gasdesk.customers.service import address_parts
from gasdesk.errors import GasdeskError

SERVICES = ["开栓", "维修", "改线", "安检", "阀管改造", "旧改施工", "报警器安装"]
PARTS = {"上午": (0, 12), "中午": (11, 14), "下午": (12, 18), "晚上": (17, 24)}


def guidance_text(g: dict) -> str:
    lines = [f"“{g['name']}”暂不支持在线预约，办理方式如下：", g["description"]]
    if g["materials"]:
        lines.append("所需材料：" + "、".join(g["materials"]))
    if g["where_to_go"]:
        lines.append(f"办理地点：{g['where_to_go']}")
    if g["phone"]:
        lines.append(f"咨询电话：{g['phone']}")
    if g["hours"]:
        lines.append(f"办理时间：{g['hours']}")
    if g["fee_note"]:
        lines.append(f"费用说明：{g['fee_note']}")
    return "\n".join(line for line in lines if line)


def _matches(slot: AppointmentSlot, day: str | None, part: str | None) -> bool:
    start = to_local(slot.start)
    assert start is not None
    if day and start.date() != date.fromisoformat(day):
        return False
    if part in PARTS:
        low, high = PARTS[part]
        return low <= start.hour < high
    if part and ":" in part:
        return start.hour <= int(part.split(":")[0]) < to_local(slot.end).hour
    return True


class BookingFlow(Flow):
    name = "booking"
    intent = "appointment_book"
    title = "预约上门服务"
    related = frozenset({"appointment_cancel", "appointment_progress"})
    answer_slots = ("service_type", "date", "time", "address", "account_no", "phone")

    def _use_address(self, customer: Customer, text: str) -> None:
        """A stored address when it is one of the customer's, else a new one."""
        parts = parse_free_address(text)
        if parts is None or not parts.district:
            return
        self.slots.pop("address_id", None)
        self.slots.pop("new_address", None)
        for address in customer.addresses:
            if address_parts(address).normalized_key() == parts.normalized_key():
                self.slots["address_id"] = address.id
                return
        self.slots["new_address"] = {"district": parts.district, "street": parts.street, "community": parts.community,
                                     "building": parts.building, "unit": parts.unit, "room": parts.room}

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        u = turn.understanding
        if self.asking == "service" and turn.choice in SERVICES:
            self.slots["service_type"] = turn.choice
        # Dates/times count when typed; a pressed button's label (a slot) is no preference for later steps.
        changed = self.absorb(u, ("service_type",) if turn.choice is not None else ("service_type", "date", "time"))
        if "service_type" in changed:
            self.slots.pop("slot_id", None)
        if {"date", "time"} & set(changed):
            self.slots.pop("slot_id", None)
        if changed and self.asking == "confirm":
            self.asking = None  # a correction at the confirmation step: confirm the new values again
        # A full address mentioned at any step (first message or a correction) is where to come.
        said = parse_free_address(u.slots["address"]) if u.slots.get("address") and self.asking != "new_address" \
            else None
        if said is not None and said.district:
            self.slots["said_address"] = u.slots["address"]
            self.slots.pop("slot_id", None)
            if self.asking == "confirm":
                self.asking = None
        service = self.slots.get("service_type")
        if not service:
            self.asking = "service"
            return reply("请问您要预约哪项上门服务？", quick=[option(s) for s in SERVICES])
        offering = await appointments.access_offering(ctx.session, service)
        if not offering.bookable:
            self.finish(ctx)
            return reply(guidance_text(appointments.guidance(offering)), intent="appointment_book",
                         slots={"service_type": service})
        customer = await ensure_identity(ctx, self, turn, "预约上门服务")
        if isinstance(customer, BotReply):
            return customer
        # Address: the customer's stored ones, or a new one typed in.
        if "said_address" in self.slots:
            self._use_address(customer, self.slots.pop("said_address"))
        if "address_id" not in self.slots and "new_address" not in self.slots:
            if self.asking == "address":
                if turn.choice and turn.choice.isdigit() and any(a.id == int(turn.choice) for a in customer.addresses):
                    self.slots["address_id"] = int(turn.choice)
                elif turn.choice == "new":
                    self.asking = "new_address"
                    return reply("请输入上门地址，例如：和平区幸福里小区3号楼2单元501")
            elif self.asking == "new_address":
                parts = parse_free_address(u.slots.get("address") or turn.text)
                if parts is None or not parts.district:
                    return self.reprompt("没能识别这个地址，请按“区+小区+楼号+单元+门牌”输入，例如：和平区幸福里小区3号楼2单元501")
                self.slots["new_address"] = {"district": parts.district, "street": parts.street,
                                             "community": parts.community, "building": parts.building,
                                             "unit": parts.unit, "room": parts.room}
            elif len(customer.addresses) == 1 and not self.slots.get("pick_address"):
                self.slots["address_id"] = customer.addresses[0].id
            if "address_id" not in self.slots and "new_address" not in self.slots:
                self.asking = "address"
                quick = [option(address_parts(a).display(), str(a.id)) for a in customer.addresses[:5]]
                return reply("请选择上门地址：", quick=[*quick, option("其他地址", "new")])
        district = (self.slots["new_address"]["district"] if "new_address" in self.slots else
                    next(a.district for a in customer.addresses if a.id == self.slots["address_id"]))
        # Slot: from a button, or the first free one matching the date/time the resident said.
        if "slot_id" not in self.slots:
            free = await appointments.available_slots(ctx.session, district, service)
            if self.asking == "slot" and turn.choice and turn.choice.isdigit():
                if any(s.id == int(turn.choice) for s in free):
                    self.slots["slot_id"] = int(turn.choice)
            if "slot_id" not in self.slots and (self.slots.get("date") or self.slots.get("time")):
                wanted = [s for s in free if _matches(s, self.slots.get("date"), self.slots.get("time"))]
                if wanted:
                    self.slots["slot_id"] = wanted[0].id
            if "slot_id" not in self.slots:
                if not free:
                    self.finish(ctx)
                    return reply(f"抱歉，{district}近两周的{service}时段已约满。需要为您转人工登记吗？",
                                 quick=[{"label": "转人工", "action": "handoff"}])
                self.asking = "slot"
                note = "您说的时间已约满，" if self.slots.get("date") or self.slots.get("time") else ""
                return reply(f"{note}请选择上门时间（{district}）：",
                             quick=[option(appointments.slot_label(s), str(s.id)) for s in free[:6]])
        slot = await ctx.session.get(AppointmentSlot, int(self.slots["slot_id"]))
        if slot is None:  # the chosen slot was removed since it was offered: offer the current ones again
            self.slots.pop("slot_id", None)
            self.asking = None
            return await self.step(ctx, Turn("", {}, Understanding("appointment_book", 1.0, {})))
        if self.asking != "confirm":
            self.asking = "confirm"
            where = (AddressIn(**self.slots["new_address"]) if "new_address" in self.slots else None)
            address = address_parts(next(a for a in customer.addresses if a.id == self.slots["address_id"])).display() \
                if where is None else f"{where.district}{where.community}{where.building}号楼{where.unit}单元{where.room}室"
            return reply(f"请确认预约：{service}，{appointments.slot_label(slot)}，地址：{address}。确认预约吗？",
                         quick=[option("确认预约", "yes"), option("修改时间", "change_time"),
                                option("换个地址", "change_address"), option("取消", "取消")])
        if turn.choice == "change_address":
            for key in ("slot_id", "address_id", "new_address"):
                self.slots.pop(key, None)
            self.slots["pick_address"] = "1"
            self.asking = None
            return await self.step(ctx, Turn("", {}, Understanding("appointment_book", 1.0, {})))
        if turn.choice == "change_time" or NO_RE.match(turn.text.strip()):
            for key in ("slot_id", "date", "time"):  # else the old preference picks the same slot again
                self.slots.pop(key, None)
            self.asking = None
            return await self.step(ctx, Turn("", {}, Understanding("appointment_book", 1.0, {})))
        if turn.choice != "yes" and not YES_RE.match(turn.text.strip()):
            return self.reprompt("请回复“确认”完成预约，或选择修改时间。",
                                 quick=[option("确认预约", "yes"), option("修改时间", "change_time")])
        try:
            booking = await appointments.book_appointment(
                ctx.session, BOT_ACTOR, customer_id=customer.id, service_code=service, slot_id=slot.id,
                address_id=self.slots.get("address_id"),
                new_address=AddressIn(**self.slots["new_address"]) if "new_address" in self.slots else None,
                channel=ctx.conversation.channel, conversation_id=ctx.conversation.id)
        except GasdeskError as exc:
            self.slots.pop("slot_id", None)
            self.asking = None
            return reply(f"预约未成功：{exc.message}", understood=True)
        self.finish(ctx)
        return reply(f"预约成功！工单号 {booking.ticket.number}，{service}，{appointments.slot_label(slot)}。"
                     "师傅上门前会与您电话联系。如需改约或取消，请在上门 2 小时前告诉我。",
                     intent="appointment_book", slots={"service_type": service})
