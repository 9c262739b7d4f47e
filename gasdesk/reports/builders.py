"""Reports from the analytics roll-ups: one builder per report key, each returning a :class:`Report`.

Builders read ``analytics.service`` (buckets only) plus a few names for labels (teams, agents, knowledge
articles); never conversations or messages. Every KPI carries the previous period's value (the day, week,
month or year before) for comparison.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.catalogue import metric
from gasdesk.analytics.service import (
    SeriesGrain,
    breakdown_figures,
    figures,
    hours_with,
    series_figures,
    week_hour_figures,
)
from gasdesk.auth.models import User
from gasdesk.bot.nlu_bot import INTENT_LABELS
from gasdesk.clock import as_utc, local_zone, to_local, utcnow
from gasdesk.conversations.models import channel_label
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.kb.models import KbArticle
from gasdesk.reports.model import Chart, Grain, Kpi, Period, Report, Series, Table
from gasdesk.tickets.models import TYPE_LABELS, Team

GRAINS: tuple[Grain, ...] = ("day", "week", "month", "year")
GRAIN_LABELS: dict[Grain, str] = {"day": "日报", "week": "周报", "month": "月报", "year": "年报"}
FILTERS = ("team", "channel", "district")
WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]


# ------------------------------------------------------------------ periods


def _local_midnight(day: date) -> datetime:
    return as_utc(datetime(day.year, day.month, day.day, tzinfo=local_zone()))


def period_for(grain: Grain, day: date) -> Period:
    """The day, week (Monday to Sunday), month or year holding ``day`` in the display zone (Asia/Shanghai),
    as [start, end) in UTC with the label people read."""
    if grain == "day":
        first, last = day, day
        label = day.isoformat()
    elif grain == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=6)
        iso = first.isocalendar()
        label = f"{iso.year}年第{iso.week}周（{first:%m-%d} 至 {last:%m-%d}）"
    elif grain == "month":
        first = day.replace(day=1)
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        label = f"{day.year}年{day.month}月"
    elif grain == "year":
        first, last = date(day.year, 1, 1), date(day.year, 12, 31)
        label = f"{day.year}年"
    else:
        raise InvalidInput("周期只能是 day、week、month 或 year", code="invalid_grain")
    return Period(grain, _local_midnight(first), _local_midnight(last + timedelta(days=1)), label)


def previous_period(period: Period) -> Period:
    """The period of the same grain just before ``period``."""
    return period_for(period.grain, to_local(period.start).date() - timedelta(days=1))


# ------------------------------------------------------------------ what a builder works with


@dataclass(frozen=True)
class Scope:
    session: AsyncSession
    period: Period
    previous: Period
    where: dict[str, str | int]

    @property
    def slot_grain(self) -> SeriesGrain:
        return {"day": "hour", "week": "day", "month": "day", "year": "month"}[self.period.grain]  # type: ignore[return-value]

    async def kpis(self, names: list[str]) -> list[Kpi]:
        now = await figures(self.session, names, self.period.start, self.period.end, where=self.where)
        before = await figures(self.session, names, self.previous.start, self.previous.end, where=self.where)
        out = []
        for name in names:
            m = metric(name)
            out.append(Kpi(name, m.label, _round(now[name]), _round(before[name]), m.unit, m.better))
        return out

    async def slots(self, name: str, where: dict[str, str | int] | None = None) -> tuple[list[str], list[float | None]]:
        found = await series_figures(self.session, name, self.period.start, self.period.end, grain=self.slot_grain,
                                     where={**self.where, **(where or {})})
        return [self.slot_label(at) for at, _ in found], [_round(v) for _, v in found]

    def slot_label(self, at: datetime) -> str:
        local = to_local(at)
        return {"hour": f"{local:%H}:00", "day": f"{local:%m-%d}", "month": f"{local.month}月"}[self.slot_grain]

    async def by(self, name: str, dimension: str, *, previous: bool = False) -> dict[str, float | None]:
        period = self.previous if previous else self.period
        found = await breakdown_figures(self.session, name, period.start, period.end, by=dimension, where=self.where)
        return {key: _round(value) for key, value in found.items()}


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def _chart(key: str, title: str, kind: Literal["line", "bar", "stacked_bar", "pie", "heatmap"],
           categories: list[str], series: list[Series], unit: str = "",
           y_categories: list[str] | None = None) -> Chart:
    return Chart(key, title, kind, categories, series, y_categories or [], unit)


async def _team_names(session: AsyncSession) -> dict[str, str]:
    return {str(i): n for i, n in (await session.execute(select(Team.id, Team.name))).all()}


async def _user_names(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    wanted = [int(i) for i in ids if i.isdigit()]
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {str(i): n for i, n in rows.all()}


def _intent_label(code: str) -> str:
    return INTENT_LABELS.get(code, code) if code else "未识别"


def _type_label(code: str) -> str:
    return TYPE_LABELS.get(code, code) if code else "未分类"  # type: ignore[call-overload]


# ------------------------------------------------------------------ the reports


async def _overview(s: Scope) -> Report:
    kpis = await s.kpis(["contacts", "ai_rate", "transfer_rate", "accepted", "avg_wait_s", "avg_handle_s", "csat",
                         "tickets_created", "sla_compliance", "followup_score", "calls_answered", "qa_score"])
    labels, contacts = await s.slots("contacts")
    _, handoffs = await s.slots("handoffs")
    _, accepted = await s.slots("accepted")
    _, tickets = await s.slots("tickets_created")
    chart = _chart("trend", "进线与人工接待趋势", "line", labels, [
        Series("进线量", contacts), Series("转人工", handoffs), Series("坐席接线", accepted), Series("新建工单", tickets)],
        "次")
    return _report(s, "overview", "运营总览", kpis, [chart])


async def _channels(s: Scope) -> Report:
    kpis = await s.kpis(["contacts", "handoffs", "transfer_rate", "calls_answered", "calls_abandoned",
                         "call_abandon_rate"])
    shares = await s.by("contacts", "channel")
    before = await s.by("contacts", "channel", previous=True)
    per_channel = [c for c in shares if c] or ["webchat"]
    labels: list[str] = []
    stacked = []
    for channel in per_channel:
        labels, values = await s.slots("contacts", {"channel": channel})
        stacked.append(Series(channel_label(channel), values))
    handoffs = await s.by("handoffs", "channel")
    table = Table("by_channel", "各渠道进线", ["渠道", "进线量", "上期", "转人工", "转人工率(%)"], [
        [channel_label(c) or "未知", v, before.get(c), handoffs.get(c, 0.0),
         round(100 * (handoffs.get(c) or 0.0) / v, 1) if v else None] for c, v in shares.items()])
    return _report(s, "channels", "渠道进线", kpis, [
        _chart("by_hour", "各渠道进线（按时段）", "stacked_bar", labels, stacked, "次"),
        _chart("share", "渠道占比", "pie", [channel_label(c) or "未知" for c in shares],
               [Series("进线量", list(shares.values()))], "次"),
    ], [table])


async def _ai(s: Scope) -> Report:
    kpis = await s.kpis(["ai_rate", "transfer_rate", "kb_answer_rate", "bot_turns", "ai_handled", "handoffs"])
    labels, ai_rate = await s.slots("ai_rate")
    _, transfer = await s.slots("transfer_rate")
    _, kb_rate = await s.slots("kb_answer_rate")
    outcomes = await s.by("bot.turn", "detail")
    reasons = await s.by("handoffs", "detail")
    outcome_labels = {"answered": "直接答复", "clarify": "澄清追问", "handoff": "转人工", "emergency": "紧急（漏气）",
                      "flow_step": "业务流程中", "flow_done": "办结业务", "flow_cancelled": "流程取消"}
    reason_labels = {"request": "居民要求", "keyword": "关键词", "intent": "意图规则", "misses": "多次未识别",
                     "emergency": "紧急"}
    return _report(s, "ai", "AI 承接", kpis, [
        _chart("rates", "AI 承接率、转人工率、知识库接待率", "line", labels,
               [Series("AI 承接率", ai_rate), Series("转人工率", transfer), Series("知识库接待率", kb_rate)], "%"),
        _chart("outcomes", "机器人应答结果", "pie", [outcome_labels.get(k, k or "其他") for k in outcomes],
               [Series("轮次", list(outcomes.values()))], "次"),
    ], [Table("handoff_reasons", "转人工原因", ["原因", "次数"],
              [[reason_labels.get(k, k or "其他"), v] for k, v in reasons.items()])])


async def _kb(s: Scope) -> Report:
    kpis = await s.kpis(["kb_hits", "kb_misses", "kb_hit_rate", "kb_helpful", "kb_not_helpful"])
    labels, hits = await s.slots("kb_hits")
    _, misses = await s.slots("kb_misses")
    top_misses = await s.by("kb.miss", "intent")
    not_helpful = await s.by("kb.not_helpful", "detail")
    article_ids = [int(k.split(":", 1)[1]) for k in not_helpful if k.startswith("article:")]
    titles = {f"article:{i}": t for i, t in (await s.session.execute(
        select(KbArticle.id, KbArticle.title).where(KbArticle.id.in_(article_ids)))).all()} if article_ids else {}
    return _report(s, "kb", "知识库", kpis, [
        _chart("hits", "命中与未命中", "bar", labels, [Series("命中", hits), Series("未命中", misses)], "次"),
    ], [
        Table("top_misses", "未命中最多的问题（按意图）", ["意图", "未命中次数"],
              [[_intent_label(k), v] for k, v in list(top_misses.items())[:20]]),
        Table("not_helpful", "被评“没帮助”的文章", ["文章", "次数"],
              [[titles.get(k, k), v] for k, v in list(not_helpful.items())[:20]]),
    ], notes=["未命中的原话经脱敏后加密保存，详见知识库管理页的“未命中问题”。"])


async def _tickets(s: Scope) -> Report:
    kpis = await s.kpis(["tickets_created", "tickets_dispatched", "tickets_resolved", "avg_resolve_s",
                         "sla_compliance", "sla_at_risk", "sla_breached"])
    by_type = await s.by("tickets_created", "ticket_type")
    teams = await _team_names(s.session)
    by_team = await s.by("tickets_created", "team_id")
    resolved_team = await s.by("tickets_resolved", "team_id")
    sla_team = await s.by("sla_compliance", "team_id")
    breached_team = await s.by("sla_breached", "team_id")
    flow = await figures(s.session, ["tickets_created", "tickets_dispatched", "tickets_resolved", "tickets_closed"],
                         s.period.start, s.period.end, where=s.where)
    team_keys = list(dict.fromkeys([*by_team, *resolved_team]))
    return _report(s, "tickets", "工单", kpis, [
        _chart("by_type", "按类型", "bar", [_type_label(k) for k in by_type], [Series("新建", list(by_type.values()))],
               "件"),
        _chart("flow", "按状态（本期流转）", "bar", ["新建", "派单", "办结", "关闭"],
               [Series("工单", [_round(v) for v in flow.values()])], "件"),
        _chart("by_team", "按班组", "bar", [teams.get(k, "未分配") for k in team_keys],
               [Series("新建", [by_team.get(k, 0.0) for k in team_keys]),
                Series("办结", [resolved_team.get(k, 0.0) for k in team_keys])], "件"),
    ], [Table("teams", "班组 SLA", ["班组", "新建", "办结", "SLA 达标率(%)", "超时"],
              [[teams.get(k, "未分配"), by_team.get(k, 0.0), resolved_team.get(k, 0.0), sla_team.get(k),
                breached_team.get(k, 0.0)] for k in team_keys])])


async def _followups(s: Scope) -> Report:
    kpis = await s.kpis(["followups", "followup_score", "followup_solved_rate", "csat"])
    labels, score = await s.slots("followup_score")
    _, csat = await s.slots("csat")
    counts = await s.by("followups", "detail")
    scores = await s.by("followup_score", "detail")
    solved = await s.by("followup_solved_rate", "detail")
    return _report(s, "satisfaction", "回访与满意度", kpis, [
        _chart("trend", "满意度趋势", "line", labels, [Series("回访满意度", score), Series("会话评价", csat)], "分"),
        _chart("categories", "问题类别", "bar", [_type_label(k) for k in counts],
               [Series("回访数", list(counts.values()))], "次"),
    ], [Table("categories", "各类问题回访结果", ["问题类别", "回访数", "平均分", "解决率(%)"],
              [[_type_label(k), v, scores.get(k), solved.get(k)] for k, v in counts.items()])])


async def _agents(s: Scope) -> Report:
    kpis = await s.kpis(["accepted", "handled", "avg_handle_s", "avg_wait_s", "csat", "qa_score"])
    handled = await s.by("handled", "agent_id")
    accepted = await s.by("accepted", "agent_id")
    avg_handle = await s.by("avg_handle_s", "agent_id")
    busy = await s.by("handle_time_s", "agent_id")
    csat = await s.by("csat", "agent_id")
    qa = await s.by("qa_score", "agent_id")
    calls = await s.by("calls_answered", "agent_id")
    keys = [k for k in dict.fromkeys([*handled, *accepted, *calls]) if k]
    names = await _user_names(s.session, keys)
    # Occupancy: handling time over the agent's working hours, counted as the hours with any hand-over
    # (login time is not an analytics fact yet).
    active_hours = await hours_with(s.session, "accepted", s.period.start, s.period.end, by="agent_id",
                                    where=s.where)
    rows = []
    for key in keys:
        occupancy = (100 * (busy.get(key) or 0.0) / (active_hours[key] * 3600)) if active_hours.get(key) else None
        rows.append([names.get(key, f"#{key}"), accepted.get(key, 0.0), handled.get(key, 0.0), avg_handle.get(key),
                     _round(min(occupancy, 100.0)) if occupancy is not None else None, calls.get(key, 0.0),
                     csat.get(key), qa.get(key)])
    return _report(s, "agents", "坐席绩效", kpis, [
        _chart("handled", "坐席处理量", "bar", [r[0] for r in rows],  # type: ignore[misc]
               [Series("接线", [r[1] for r in rows]), Series("处理", [r[2] for r in rows])], "次"),  # type: ignore[misc]
    ], [Table("agents", "坐席明细", ["坐席", "接线", "处理", "平均处理时长(秒)", "占用率(%)", "热线接通", "满意度",
                                   "质检平均分"], rows)],
        notes=["占用率 = 处理时长 ÷ 有接线的小时数（暂以此近似在岗时长）。"])


async def _peaks(s: Scope) -> Report:
    kpis = await s.kpis(["contacts", "accepted", "avg_wait_s"])
    cells = await week_hour_figures(s.session, "contacts", s.period.start, s.period.end, where=s.where)
    grid = [[cells[(d, h)] or 0.0 for h in range(24)] for d in range(7)]
    by_hour = [sum(grid[d][h] for d in range(7)) for h in range(24)]
    by_day = [sum(row) for row in grid]
    notes = []
    if any(by_hour):
        peak_hour = max(range(24), key=lambda h: by_hour[h])
        notes.append(f"高峰时段：{peak_hour:02d}:00–{peak_hour + 1:02d}:00，共 {by_hour[peak_hour]:.0f} 次进线；"
                     f"最忙：{WEEKDAYS[max(range(7), key=lambda d: by_day[d])]}。")
    hours = [f"{h:02d}" for h in range(24)]
    return _report(s, "peaks", "高峰时段", kpis, [
        _chart("heatmap", "进线热力图（星期 × 时段）", "heatmap", hours,
               [Series(WEEKDAYS[d], list(grid[d])) for d in range(7)], "次", y_categories=list(WEEKDAYS)),
        _chart("by_hour", "各时段进线", "bar", hours, [Series("进线量", by_hour)], "次"),  # type: ignore[arg-type]
    ], notes=notes)


async def _topics(s: Scope) -> Report:
    kpis = await s.kpis(["bot_turns", "handoffs", "kb_misses"])
    now = await s.by("bot.turn", "intent")
    before = await s.by("bot.turn", "intent", previous=True)
    handoffs = await s.by("handoffs", "intent")
    top = [k for k in now if k][:15]
    rising = sorted((k for k in now if k), key=lambda k: -((now[k] or 0.0) - (before.get(k) or 0.0)))
    rising = [k for k in rising if (now[k] or 0.0) > (before.get(k) or 0.0)][:10]
    return _report(s, "topics", "热点问题", kpis, [
        _chart("top", "热门意图", "bar", [_intent_label(k) for k in top], [Series("咨询量", [now[k] for k in top])],
               "次"),
    ], [
        Table("top", "热门意图", ["意图", "咨询量", "上期", "转人工"],
              [[_intent_label(k), now[k], before.get(k), handoffs.get(k, 0.0)] for k in top]),
        Table("rising", "上升最快", ["意图", "本期", "上期", "增加"],
              [[_intent_label(k), now[k], before.get(k, 0.0), _round((now[k] or 0.0) - (before.get(k) or 0.0))]
               for k in rising]),
    ], notes=["热点按机器人识别的意图统计；关键词原文不进入统计库（含个人信息）。"])


async def _quality(s: Scope) -> Report:
    kpis = await s.kpis(["qa_scored", "qa_score"])
    labels, score = await s.slots("qa_score")
    by_agent = await s.by("qa_score", "agent_id")
    counts = await s.by("qa_scored", "agent_id")
    names = await _user_names(s.session, [k for k in by_agent if k])
    return _report(s, "quality", "质检", kpis, [
        _chart("trend", "质检平均分趋势", "line", labels, [Series("平均分", score)], "分"),
    ], [Table("agents", "坐席质检", ["坐席", "质检量", "平均分"],
              [[names.get(k, f"#{k}" if k else "未知"), counts.get(k, 0.0), v] for k, v in by_agent.items()])])


def _report(s: Scope, key: str, title: str, kpis: list[Kpi], charts: list[Chart], tables: list[Table] | None = None,
            notes: list[str] | None = None) -> Report:
    return Report(key=key, title=f"{title}{GRAIN_LABELS[s.period.grain]}", period=s.period, previous=s.previous,
                  generated_at=utcnow(), filters={}, kpis=kpis, charts=charts, tables=tables or [],
                  notes=notes or [])


BUILDERS: dict[str, Callable[[Scope], Awaitable[Report]]] = {
    "overview": _overview, "channels": _channels, "ai": _ai, "kb": _kb, "tickets": _tickets,
    "satisfaction": _followups, "agents": _agents, "peaks": _peaks, "topics": _topics, "quality": _quality,
}
# "followups" was the 回访 report's first name; /api/v1/reports/followups is the 回访 outcomes API
# (gasdesk/followups), so the report is "satisfaction" in paths and keys.
ALIASES = {"followups": "satisfaction"}
REPORT_TITLES = {"overview": "运营总览", "channels": "渠道进线", "ai": "AI 承接", "kb": "知识库", "tickets": "工单",
                 "satisfaction": "回访与满意度", "agents": "坐席绩效", "peaks": "高峰时段", "topics": "热点问题",
                 "quality": "质检"}


def check_filters(filters: dict[str, str]) -> dict[str, str | int]:
    """The analytics ``where`` for report filters (team → team_id, channel, district); unknown or empty
    values are refused or dropped."""
    where: dict[str, str | int] = {}
    for name, value in filters.items():
        if name not in FILTERS:
            raise InvalidInput(f"未知的筛选条件: {name}", code="invalid_filter")
        value = (value or "").strip()
        if not value:
            continue
        if name == "team":
            if not value.isdigit():
                raise InvalidInput("班组应为编号", code="invalid_filter")
            where["team_id"] = int(value)
        else:
            where[name] = value[:40]
    return where


def check_report_query(key: str, filters: dict[str, str]) -> None:
    """Refuse an unknown report ``key`` (``NotFound``) or filter (``InvalidInput``), as ``build_report`` would:
    for callers that have the report built elsewhere (the render process), where errors are not typed."""
    if ALIASES.get(key, key) not in BUILDERS:
        raise NotFound("没有这个报表", code="report_not_found")
    check_filters(filters)


async def build_report(session: AsyncSession, key: str, period: Period, *, filters: dict[str, str]) -> Report:
    """Report ``key`` (``overview``, ``channels``, ``ai``, ``kb``, ``tickets``, ``satisfaction`` — alias
    ``followups`` —, ``agents``, ``peaks``, ``topics``, ``quality``) for ``period``, limited by ``filters`` (team, channel, district),
    with the previous period's figures for comparison."""
    check_report_query(key, filters)
    builder = BUILDERS[ALIASES.get(key, key)]
    where = check_filters(filters)
    report = await builder(Scope(session, period, previous_period(period), where))
    shown = {name: value for name, value in filters.items() if (value or "").strip()}
    return Report(**{**report.__dict__, "filters": shown})
