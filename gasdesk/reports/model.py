"""The shape of a report, whatever shows it: the report pages (ECharts), the xlsx export (native Excel
charts) and the PDF export (server-side charts) all render one :class:`Report`. Builders
(``reports/builders.py``) make reports from the analytics roll-ups; renderers never query the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Grain = Literal["day", "week", "month", "year"]
ChartKind = Literal["line", "bar", "stacked_bar", "pie", "heatmap"]
Cell = str | int | float | None


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, with the label people read (Asia/Shanghai), e.g. 2026年12月 or 2026-12-03."""

    grain: Grain
    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True)
class Kpi:
    """One headline figure with the previous period's value for comparison (None: no data then)."""

    key: str
    label: str
    value: float | None
    previous: float | None = None
    unit: str = ""  # "%", "秒", "件", "分" …
    better: Literal["higher", "lower", "neither"] = "higher"


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    """A chart: ``categories`` along the x axis (hours, days, channels…); for a heatmap, ``categories`` are
    the x labels, ``y_categories`` the y labels and each series one row (a y label) of values."""

    key: str
    title: str
    kind: ChartKind
    categories: list[str]
    series: list[Series]
    y_categories: list[str] = field(default_factory=list)
    unit: str = ""


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class Report:
    """A whole report: ``key`` names the kind (``overview``, ``channels``, ``ai``, ``kb``, ``tickets``,
    ``satisfaction`` — 回访; ``build_report`` also takes ``followups`` for it —, ``agents``, ``peaks``, ``topics``,
    ``quality``); ``filters`` are what it was limited to (team, channel, district), shown in its header."""

    key: str
    title: str
    period: Period
    previous: Period | None
    generated_at: datetime
    filters: dict[str, str] = field(default_factory=dict)
    kpis: list[Kpi] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
