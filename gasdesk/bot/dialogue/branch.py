"""Branch information: the branch for the district the resident names (or the verified customer's address;
otherwise ask with buttons): address, phone, today's hours and whether it is open now, the weekly hours and
the holiday schedule of the next 30 days."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.bot.base import BotContext, BotReply
from gasdesk.bot.dialogue.common import area_in, contact_customer, customer_area, district_in
from gasdesk.bot.dialogue.flow import Flow, Turn, option, reply
from gasdesk.branches.models import ServiceBranch
from gasdesk.branches.service import list_branches
from gasdesk.clock import to_local, utcnow
from gasdesk.customers.addresses import normalize_district
from gasdesk.hours.service import holiday_notice, opening_state, special_days

WEEKDAYS = "一二三四五六日"
HOLIDAY_DAYS = 30


def weekly_text(branch: ServiceBranch) -> str:
    """"周一至周五 08:30-17:00；周六 09:00-16:00；周日休息"."""
    groups: list[tuple[int, int, str]] = []
    for day in range(1, 8):
        hours = branch.weekly_hours.get(str(day), "")
        if groups and groups[-1][2] == hours and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, hours)
        else:
            groups.append((day, day, hours))
    parts = []
    for first, last, hours in groups:
        days = f"周{WEEKDAYS[first - 1]}" + (f"至周{WEEKDAYS[last - 1]}" if last > first else "")
        parts.append(f"{days} {hours}" if hours else f"{days}休息")
    return "；".join(parts)


async def holiday_text(session: AsyncSession, branch: ServiceBranch, today: date) -> str:
    """The next 30 days' statutory holidays, 调休 workdays and local changes of the branch's hours."""
    lines = []
    for day, hours in await special_days(session, branch, today, HOLIDAY_DAYS):
        label = f"{day:%m月%d日}（周{WEEKDAYS[day.weekday()]}）"
        what = "休息" if not hours.hours else f"营业时间调整为 {hours.hours}"
        lines.append(f"  {label}{what}" + (f"（{hours.note}）" if hours.note else ""))
    return "近期节假日安排：\n" + "\n".join(lines) if lines else ""


async def branch_text(session: AsyncSession, branch: ServiceBranch) -> str:
    now = to_local(utcnow())
    status = await opening_state(session, branch)
    if not status.hours_today:
        today = f"今天休息（{status.note}）" if status.note and status.note != "今日休息" else "今天休息"
    else:
        today = f"今天营业时间 {status.hours_today}" + (f"（{status.note}）" if status.note else "")
        today += "，现在正在营业" if status.is_open else "，现在不在营业时间"
    lines = [f"【{branch.name}】", f"地址：{branch.address}", f"电话：{branch.phone}", today,
             f"平时营业时间：{weekly_text(branch)}"]
    holidays = await holiday_text(session, branch, now.date())
    if holidays:
        lines.append(holidays)
    return "\n".join(lines)


class BranchFlow(Flow):
    name = "branch"
    intent = "branch_info"
    title = "查询营业厅"
    answer_slots = ("address",)

    def expects(self, turn: Turn) -> bool:
        return super().expects(turn) or district_in(turn.text) is not None

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        branches = await list_branches(ctx.session)
        if not branches:
            self.finish(ctx)
            return reply("抱歉，暂时查不到营业厅信息，请拨打客服热线 96777 咨询。")
        districts = list(dict.fromkeys(b.district for b in branches))
        mentioned = (turn.choice if turn.choice in districts else None) or district_in(turn.text, districts) \
            or area_in(turn.text, turn.understanding.slots).district
        if mentioned:
            self.slots["district"] = mentioned  # a newly named district replaces the earlier one
        if "district" not in self.slots:
            area = customer_area(await contact_customer(ctx))
            if area.district:
                self.slots["district"] = area.district
                self.slots["from_account"] = "1"
        quick = [option(d) for d in districts[:8]]
        if "district" not in self.slots:
            if self.asking == "district":
                return self.reprompt("没能识别您所在的区，请点击选择：", quick=quick)
            self.asking = "district"
            return reply("请问您在哪个区？我帮您找最近的营业厅。", quick=quick)
        district = self.slots["district"]
        wanted = normalize_district(district)
        here = [b for b in branches if normalize_district(b.district) == wanted]
        self.finish(ctx)
        others = [{"label": f"{d}营业厅", "text": f"{d}的营业厅在哪"} for d in districts if d not in
                  {b.district for b in here}][:4]
        if not here:
            listing = "\n".join(f"· {b.name}（{b.district}）：{b.address}，电话 {b.phone}" for b in branches[:6])
            return reply(f"{district}暂时没有营业厅，您可以前往以下营业厅办理：\n{listing}", quick=others,
                         intent=self.intent)
        lead = "根据您的地址，" if self.slots.get("from_account") and not mentioned else ""
        texts = [f"{lead}{district}的营业厅信息如下：", *[await branch_text(ctx.session, b) for b in here[:3]]]
        notice = await holiday_notice(ctx.session)
        if notice is not None:
            texts.append(f"温馨提示：{notice.text}。")
        texts.append("办理业务请携带户主身份证和户号（缴费单或燃气卡）。")
        return reply(*texts, quick=others, intent=self.intent)
