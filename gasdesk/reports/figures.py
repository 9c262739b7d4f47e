"""How a report's figures read, the same in every renderer (xlsx, PDF): numbers, the change against the
previous period, the period and filter lines of a report's header."""

from __future__ import annotations

from dataclasses import dataclass

from gasdesk.clock import format_local
from gasdesk.reports.model import Kpi, Report

FILTER_LABELS = {"team": "班组", "channel": "渠道", "district": "区域"}
GRAIN_LABELS = {"day": "日报", "week": "周报", "month": "月报", "year": "年报"}
PERCENT_UNITS = frozenset({"%"})


@dataclass(frozen=True)
class Change:
    """A KPI against the previous period: ``delta`` in the KPI's own unit (percentage points for rates),
    ``ratio`` the relative change (0.25 = +25 %; None for rates, whose change is read in points, or when
    the previous value is 0); ``good`` whether it moved the way the KPI wants (None: no preference or no move)."""

    delta: float
    ratio: float | None
    good: bool | None
    text: str


def kpi_change(kpi: Kpi) -> Change | None:
    """The KPI's change against the previous period, or None when either figure is missing."""
    if kpi.value is None or kpi.previous is None:
        return None
    delta = kpi.value - kpi.previous
    is_rate = kpi.unit in PERCENT_UNITS
    ratio = None if is_rate or kpi.previous == 0 else delta / abs(kpi.previous)
    if delta == 0 or kpi.better == "neither":
        good = None
    else:
        good = (delta > 0) == (kpi.better == "higher")
    if is_rate:
        text = f"{delta:+.1f} 个百分点"
    elif ratio is not None:
        text = f"{ratio * 100:+.1f}%"
    else:
        text = ("+" if delta > 0 else "") + _plain(delta)
    return Change(delta=delta, ratio=ratio, good=good, text=text)


def _plain(value: float) -> str:
    """Thousands separators and at most two decimals, trailing zeros dropped: 1,042 · 60.25 · 4.6."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def format_number(value: float | int | None, unit: str = "") -> str:
    """A figure as people read it: thousands separators, at most two decimals, the unit after it; — for none."""
    if value is None:
        return "—"
    text = _plain(value)
    return f"{text}{unit}" if unit in PERCENT_UNITS else f"{text} {unit}".rstrip()


def period_line(report: Report) -> str:
    """统计周期 as one line: the label and the local start/end times."""
    p = report.period
    return f"{p.label}（{format_local(p.start)} 至 {format_local(p.end)}）"


def filter_line(report: Report) -> str:
    """筛选条件 as one line, or 全部 when the report covers everything."""
    parts = [f"{FILTER_LABELS.get(k, k)}：{v}" for k, v in report.filters.items() if v]
    return "；".join(parts) or "全部"


def export_filename(report: Report, extension: str) -> str:
    """The file name people get: 日报-2026-12-03.xlsx for the overview, else the report's title and period."""
    name = GRAIN_LABELS[report.period.grain] if report.key == "overview" else report.title
    label = report.period.label
    stem = f"{name}-{label}"
    for bad in '/\\:*?"<>|\r\n\t':
        stem = stem.replace(bad, "-")
    return f"{stem}.{extension}"
