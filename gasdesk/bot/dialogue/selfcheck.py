"""No gas / heating not warm: first the announced outages for the resident's area, then guided self-checks,
then a one-click ticket with the contact (from the verified customer, or asked for)."""

from __future__ import annotations

import re
from typing import ClassVar

from gasdesk.bot.base import BOT_ACTOR, BotContext, BotReply
from gasdesk.bot.dialogue.common import (
    BAD_PHONE,
    RECOVERED_RE,
    Area,
    area_in,
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
from gasdesk.customers.addresses import parse_free_address
from gasdesk.customers.billing import billing_system_for
from gasdesk.customers.models import Customer
from gasdesk.errors import GasdeskError
from gasdesk.outages.service import describe, notices_for_customer, outages_affecting
from gasdesk.tickets.schemas import TicketCreate
from gasdesk.tickets.service import do_add_ticket_note, do_file_report, open_report

STILL_RE = re.compile(r"还是|仍然|依然|都(检查|试)过|检查了|没用|不管用|不行|没解决|报修|派人|上门")
TEMPERATURE_RE = re.compile(r"(\d{1,2}(?:\.\d)?)\s*(?:度|℃|°)")
LEAK_NOTE = "如果闻到燃气味，请不要做以上操作，立即开窗通风、关闭表前阀，到室外拨打 96777。"

NO_GAS_COMMON = [
    "表前阀（燃气表前面管道上的阀门）是否打开：把手与管道平行为打开，垂直为关闭；",
    "家里其他燃气器具（热水器、另一个灶眼）能不能用：都不能用是整户没气，只有一个不行多半是灶具问题；",
]
NO_GAS_METER = {
    "ic_card": ["IC卡表：插一下燃气卡，看屏幕是否显示余量为零、“请购气”或“电池欠压”。余量不足请购气后插卡；"
                "电池没电请换电池后再插卡开阀；"],
    "smart": ["物联网智能表：按表上按键看余额，欠费时表会远程关阀，缴清后长按按键约 3 秒开阀；"],
    "mechanical": ["机械表：看看是否收到欠费停气通知，欠费停气缴清后需联系我们恢复供气；"],
    None: ["IC卡表请插卡查看余量和电池提示（余量为零或电池没电会关阀）；物联网智能表请查看余额，欠费会远程关阀；"],
}
NO_GAS_TAIL = [
    "表后（或灶前）的自闭阀是否跳闸关闭（复位提杆落下）：关闭所有灶具开关、确认没有燃气味后，把复位提杆向上提起，"
    "保持 2–3 秒再松手；",
    "灶具能打火但点不着：检查灶具电池是否没电、灶头是否潮湿或堵塞。",
]
HEATING_STEPS = [
    "暖气片放气：备好接水的盆和毛巾，用放气钥匙或一字螺丝刀逆时针拧开暖气片上端的放气阀，听到“嘶嘶”声放出空气，"
    "流出水后立即拧紧；",
    "检查阀门：进户总阀和每组暖气片的进水、回水阀门都要全部打开（把手与管道平行为开）；",
    "清洗过滤器：户内入口处的过滤器（Y 型过滤器）堵塞会导致水流不畅，关闭前后阀门后拧开清理滤网；不熟悉操作请报修由师傅处理；",
    "问问邻居家热不热：整栋楼都不热多为管网或热源问题，我们会统一处理；",
    "测室内温度：温度计放在房间中央、离地约 1.5 米处，远离暖气片和窗户；供暖期卧室、客厅不低于 18℃ 为达标。",
]


def numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


class SelfCheckFlow(Flow):
    """Shared shape: area → outage check → self-check → contact → ticket."""

    answer_slots = ("address", "phone")

    def expects(self, turn: Turn) -> bool:
        text = turn.text
        if self.asking == "check" and (STILL_RE.search(text) or RECOVERED_RE.search(text)):
            return True
        if self.asking == "area" and district_in(text) is not None:
            return True
        return super().expects(turn) or (self.asking == "phone" and phone_in(text, turn.understanding.slots) is not None)

    kind: ClassVar[str] = "gas"
    ticket_type: ClassVar[str] = "repair"
    problem: ClassVar[str] = ""
    still_label: ClassVar[str] = ""
    fixed_label: ClassVar[str] = "恢复了"

    async def start(self, ctx: BotContext, turn: Turn) -> BotReply:
        self.slots["said"] = turn.text[:300]
        customer = await contact_customer(ctx)
        existing = await open_report(ctx.session, ticket_type=self.ticket_type, conversation_id=ctx.conversation.id,
                                     customer_id=customer.id if customer else None,
                                     title=self.ticket_fields(Area())["title"])
        if existing is not None:  # reported already: no second self-check, no second ticket
            await do_add_ticket_note(ctx.session, BOT_ACTOR, existing, f"居民再次反映：{turn.text.strip()[:300]}")
            self.finish(ctx)
            return reply(f"您反映的问题已经登记，工单号 {existing.number}，目前状态：{ticket_status_text(existing)}。"
                         "我已把您刚才说的情况补充到这张工单，处理人员会看到，不需要重复报修。",
                         quick=[{"label": "查询进度", "text": "查询工单进度"}, {"label": "转人工", "action": "handoff"}],
                         intent=self.intent)
        return await self.step(ctx, turn)

    # -- hooks
    async def check_text(self, ctx: BotContext, customer: Customer | None) -> str:
        raise NotImplementedError

    def ticket_fields(self, area: Area) -> dict[str, str | None]:
        raise NotImplementedError

    # -- the flow
    def _absorb_contact(self, turn: Turn) -> bool:
        changed = False
        phone = phone_in(turn.text, turn.understanding.slots)
        if phone and phone != self.slots.get("phone"):
            self.slots["phone"] = phone
            changed = True
        address = turn.understanding.slots.get("address")
        if address and self.asking != "area":
            parts = parse_free_address(address)
            if parts is not None or self.asking == "address":
                self.slots["address"] = address
                if parts is not None and parts.district:
                    self.slots["district"] = parts.district
                    self.slots["community"] = parts.community
                changed = True
        if match := TEMPERATURE_RE.search(turn.text):
            self.slots["indoor_temp"] = match.group(1)
        return changed

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        text = turn.text.strip()
        customer = await contact_customer(ctx)
        self._absorb_contact(turn)
        # 1. the area, for the outage check
        if "district" not in self.slots and not self.slots.get("area_skipped"):
            area = area_in(text, turn.understanding.slots)
            if area.district:
                self.slots["area_given"] = "1"  # the resident named a place: look there, not at their file
                parts = parse_free_address(area.address_text or text)
                if parts is not None and parts.building:
                    self.slots["building"] = parts.building
            else:
                area = customer_area(customer)
            if area.district:
                self.slots["district"] = area.district
                if area.community:
                    self.slots["community"] = area.community
            elif self.asking == "area" and turn.choice == "skip":
                self.slots["area_skipped"] = "1"
            else:
                quick = [option("跳过，直接自查", "skip")]
                if self.asking == "area":
                    return self.reprompt("没能识别区名，请输入所在的区和小区，例如：和平区幸福里小区。", quick=quick)
                self.asking = "area"
                return reply(f"{self.problem}，我先帮您查一下有没有计划{'停气' if self.kind == 'gas' else '停暖'}。"
                             "请问您家在哪个区、哪个小区？（例如：和平区幸福里小区）", quick=quick)
        # 2. announced outages
        if "outage_checked" not in self.slots:
            self.slots["outage_checked"] = "1"
            found = []
            if customer is not None and not self.slots.get("area_given"):
                # The linked customer's homes, down to the building, and the 户号 lists staff imported.
                found = await notices_for_customer(ctx.session, customer.id, kind=self.kind)
            elif self.slots.get("district") or self.slots.get("community"):
                found = await outages_affecting(ctx.session, district=self.slots.get("district") or None,
                                                community=self.slots.get("community"),
                                                building=self.slots.get("building"), kind=self.kind)
            if found:
                self.slots["outage"] = describe(found[0])
                self.asking = "outage"
                label = "停气" if self.kind == "gas" else "停暖"
                return reply(f"查到您所在区域有{label}公告：\n" + "\n".join(describe(o) for o in found),
                             f"{label}期间请关闭{'灶具开关和表前阀' if self.kind == 'gas' else '暖气片放气阀'}，"
                             f"恢复后即可正常使用。如果您家不在通知范围内，可以继续排查。",
                             quick=[option("知道了", "done"), option("不在范围内，继续排查", "continue")])
        if self.asking == "outage":
            if turn.choice == "done" or YES_RE.match(text) or "知道" in text:
                self.finish(ctx)
                return reply(f"好的。恢复{'供气' if self.kind == 'gas' else '供暖'}后如仍有问题，随时告诉我。",
                             intent=self.intent)
            self.asking = None
        # 3. self-check
        if not self.slots.get("checked"):
            if self.asking == "check":
                still = turn.choice == "still" or (turn.choice is None and bool(STILL_RE.search(text)))
                if turn.choice == "fixed" or (turn.choice is None and not still and RECOVERED_RE.search(text)):
                    self.finish(ctx)
                    return reply("太好了，问题已解决！如有其他需要随时找我。", intent=self.intent)
                if still:
                    self.slots["checked"] = "1"
                    self.asking = None
                else:
                    # What the resident found ("卡里还有钱", "热水器也打不着") goes to the crew with the ticket.
                    if turn.choice is None and text:
                        self.slots["findings"] = "；".join(filter(None, [self.slots.get("findings"), text]))[:300]
                    return self.reprompt("好的，已记下您说的情况。检查完成后请点击下方按钮告诉我结果。"
                                         if turn.choice is None and text else "检查完成后请点击下方按钮告诉我结果。",
                                         quick=self._check_quick())
            else:
                self.asking = "check"
                return reply("请先按以下步骤自查：\n" + await self.check_text(ctx, customer),
                             quick=self._check_quick())
        # 4. contact for the ticket
        if customer is not None:
            self.slots.setdefault("phone", customer_phone(customer) or "")
            if not self.slots.get("address"):
                area = customer_area(customer)
                self.slots["address"] = area.address_text or ""
                self.slots["district"] = area.district or self.slots.get("district", "")
        if not self.slots.get("phone"):
            if self.asking == "phone":
                return self.reprompt("请输入正确的手机号码（11 位）或带区号的固定电话。")
            self.asking = "phone"
            return reply("我来为您登记报修。请留一个联系电话，方便师傅联系您。")
        if not self.slots.get("address"):
            if self.asking == "address" and len(text) >= 4 and not phone_in(text, turn.understanding.slots):
                self.slots["address"] = text[:200]
            else:
                if self.asking == "address":
                    return self.reprompt("请输入详细地址，例如：和平区幸福里小区3号楼2单元501。")
                self.asking = "address"
                return reply("请输入详细地址（区 + 小区 + 楼号 + 单元 + 门牌），例如：和平区幸福里小区3号楼2单元501。")
        return await self._create_ticket(ctx, customer)

    def _said(self) -> str:
        findings = f"\n居民自查情况：{self.slots['findings']}" if self.slots.get("findings") else ""
        return f"{findings}\n居民原话：{self.slots.get('said', '')}"

    def _check_quick(self) -> list[dict[str, str]]:
        return [option(self.still_label, "still"), option(self.fixed_label, "fixed")]

    async def _create_ticket(self, ctx: BotContext, customer: Customer | None) -> BotReply:
        area = Area(self.slots.get("district") or None, self.slots.get("community"), self.slots.get("address"))
        fields = self.ticket_fields(area)
        try:
            filed = await do_file_report(ctx.session, BOT_ACTOR, TicketCreate(
                type=self.ticket_type, title=fields["title"], description=fields["description"] or "",
                customer_id=customer.id if customer else None, contact_phone=self.slots["phone"],
                address_text=(self.slots.get("address") or None), district=area.district,
                channel=ctx.conversation.channel, conversation_id=ctx.conversation.id))
        except GasdeskError as exc:
            if exc.code == "invalid_phone":
                self.slots.pop("phone", None)
                self.asking = "phone"
                return reply(BAD_PHONE, understood=False)
            raise
        self.finish(ctx)
        ticket = filed.ticket
        if not filed.created:
            return reply(f"您反映的问题已经登记，工单号 {ticket.number}，目前状态：{ticket_status_text(ticket)}。"
                         "我已把这次自查的结果补充到这张工单，不需要重复报修。", intent=self.intent)
        return reply(f"已为您登记{fields['label']}工单，工单号 {ticket.number}。{promise(ticket.respond_by)}"
                     f"（联系电话 {mask_phone(ticket.contact_phone)}）。",
                     "等待期间如闻到燃气味，请立即开窗、关闭表前阀，到室外拨打 96777。" if self.kind == "gas" else
                     "可以说“查询进度”随时查看处理情况。", intent=self.intent)


class NoGasFlow(SelfCheckFlow):
    name = "no_gas"
    intent = "no_gas"
    ticket_type = "no_gas"
    title = "无气报修"
    # What a self-check turns up is said in these words ("卡里还有钱", "表前阀是开着的").
    related = frozenset({"meter_guidance", "balance_query", "outage_query", "payment_howto"})
    kind = "gas"
    problem = "家里没气了"
    still_label = "已检查，还是没气"

    async def check_text(self, ctx: BotContext, customer: Customer | None) -> str:
        account = customer.accounts[0] if customer and customer.accounts else None
        meter = account.meter_type if account and account.meter_type in NO_GAS_METER else None
        lines = numbered([*NO_GAS_COMMON, *NO_GAS_METER[meter], *NO_GAS_TAIL])
        notes = []
        if account is not None:
            if account.status == "arrears_cut":
                notes.append(f"提示：您的户号 {account.account_no} 目前为欠费停气状态，缴清欠费后才能恢复供气。")
            else:
                try:
                    info = await billing_system_for(ctx.session).summary(account.account_no)
                except GasdeskError:
                    info = None
                if info is not None and info.arrears > 0:
                    notes.append(f"提示：您的户号 {account.account_no} 有欠费 {info.arrears} 元，欠费可能导致停气，请先缴清。")
        return "\n".join([lines, *notes, LEAK_NOTE])

    def ticket_fields(self, area: Area) -> dict[str, str | None]:
        return {"label": "无气报修",
                "title": "居民报无气" + (f" - {area.district}" if area.district else ""),
                "description": "居民在线报修：家里没气，已按指引自查（表前阀、余量/电池、自闭阀、其他器具）仍无气。"
                               + self._said()}


class HeatingFlow(SelfCheckFlow):
    name = "heating_not_warm"
    intent = "heating_not_warm"
    title = "暖气不热报修"
    related = frozenset({"outage_query"})
    kind = "heating"
    problem = "暖气不热"
    still_label = "已检查，还是不热"
    fixed_label = "变热了"

    async def check_text(self, ctx: BotContext, customer: Customer | None) -> str:
        return numbered(HEATING_STEPS)

    def ticket_fields(self, area: Area) -> dict[str, str | None]:
        temp = f"\n室内温度：{self.slots['indoor_temp']}℃" if self.slots.get("indoor_temp") else ""
        return {"label": "暖气不热报修",
                "title": "暖气不热" + (f" - {area.district}" if area.district else ""),
                "description": "居民在线报修：暖气不热，已按指引自查（放气、阀门全开、过滤器、对比邻居、室内温度）仍不热。"
                               f"{temp}" + self._said()}
