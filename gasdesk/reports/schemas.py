"""The reports API's shapes: a mirror of ``reports.model.Report`` as JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from gasdesk.reports.model import Report
from gasdesk.schemas import IsoDatetime, Out


class PeriodOut(Out):
    grain: Literal["day", "week", "month", "year"]
    start: IsoDatetime
    end: IsoDatetime
    label: str


class KpiOut(Out):
    key: str
    label: str
    value: float | None
    previous: float | None
    unit: str
    better: Literal["higher", "lower", "neither"]


class SeriesOut(Out):
    name: str
    values: list[float | None]


class ChartOut(Out):
    key: str
    title: str
    kind: Literal["line", "bar", "stacked_bar", "pie", "heatmap"]
    categories: list[str]
    series: list[SeriesOut]
    y_categories: list[str]
    unit: str


class TableOut(Out):
    key: str
    title: str
    columns: list[str]
    rows: list[list[str | int | float | None]]


class ReportOut(Out):
    key: str
    title: str
    period: PeriodOut
    previous: PeriodOut | None
    generated_at: IsoDatetime
    filters: dict[str, str]
    kpis: list[KpiOut]
    charts: list[ChartOut]
    tables: list[TableOut]
    notes: list[str]


def report_out(report: Report) -> dict[str, Any]:
    """The report as the API sends it (and as the page's charts read it)."""
    return asdict(report)
