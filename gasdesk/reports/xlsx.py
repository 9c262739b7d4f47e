"""A report as an Excel workbook: 概览 (title, period, filters, KPIs against the previous period), 图表 with
native Excel charts (line, bar, stacked bar, pie; a heat map as a colour-scaled table), 图表数据 holding
the charts' figures, and one sheet per table. Numbers are stored as numbers, so people can compute with them."""

from __future__ import annotations

import io
from collections.abc import Iterable

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, PieChart, Reference
from openpyxl.chart._chart import ChartBase
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.chart.label import DataLabelList
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gasdesk.clock import format_local
from gasdesk.reports.figures import filter_line, kpi_change, period_line
from gasdesk.reports.model import Cell, Chart, Report, Table

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="2F5597")
TITLE_FONT = Font(bold=True, size=16)
THIN = Side(style="thin", color="BFBFBF")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
GOOD_FONT = Font(color="2E7D32")
BAD_FONT = Font(color="C62828")
CHART_ROWS = 20  # rows one chart takes on the 图表 sheet (15 cm high at the default row height)
SHEET_NAME_MAX = 31  # Excel's limit
FORBIDDEN_IN_SHEET_NAMES = "[]:*?/\\"


def report_to_xlsx(report: Report) -> bytes:
    """Render ``report`` as an .xlsx workbook (bytes). Pure: reads only the report."""
    wb = Workbook()
    summary = wb.active
    assert summary is not None  # a new workbook always has its first sheet
    summary.title = "概览"
    _summary_sheet(summary, report)
    if report.charts:
        charts = wb.create_sheet("图表")
        data = wb.create_sheet("图表数据")
        _chart_sheets(charts, data, report.charts)
    names = {ws.title for ws in wb.worksheets}
    for table in report.tables:
        ws = wb.create_sheet(_sheet_name(table.title, names))
        names.add(ws.title)
        _table_block(ws, table, top=1)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- 概览


def _summary_sheet(ws: Worksheet, report: Report) -> None:
    ws["A1"] = report.title
    ws["A1"].font = TITLE_FONT
    header = [("统计周期", period_line(report)),
              ("对比周期", report.previous.label if report.previous else "—"),
              ("筛选条件", filter_line(report)),
              ("生成时间", format_local(report.generated_at))]
    for i, (label, text) in enumerate(header, start=3):
        ws.cell(i, 1, label).font = Font(bold=True)
        ws.cell(i, 2, text)
    top = 3 + len(header) + 1
    _header_row(ws, top, ["指标", "本期", "上期", "变化", "变化率", "单位"])
    for row, kpi in enumerate(report.kpis, start=top + 1):
        change = kpi_change(kpi)
        values: list[Cell] = [kpi.label, kpi.value, kpi.previous, change.delta if change else None,
                              change.ratio if change else None, kpi.unit]
        for col, value in enumerate(values, start=1):
            cell = ws.cell(row, col, value)
            cell.border = BOX
        ws.cell(row, 2).number_format = ws.cell(row, 3).number_format = "#,##0.##"
        ws.cell(row, 4).number_format = "+#,##0.##;-#,##0.##;0"
        ws.cell(row, 5).number_format = "+0.0%;-0.0%;0.0%"
        if change and change.good is not None:
            ws.cell(row, 4).font = ws.cell(row, 5).font = GOOD_FONT if change.good else BAD_FONT
    row = top + len(report.kpis) + 2
    for note in report.notes:
        ws.cell(row, 1, note)
        row += 1
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 16
    for letter in "CDEF":
        ws.column_dimensions[letter].width = 12


# ---------------------------------------------------------------- 图表 and 图表数据


def _chart_sheets(charts: Worksheet, data: Worksheet, items: Iterable[Chart]) -> None:
    """Each chart's figures go to the data sheet as a block (categories down column A, one column per
    series); the chart on the 图表 sheet refers to that block. A heat map is a table on the 图表 sheet itself,
    coloured by a 3-colour scale."""
    data_row = 1
    chart_row = 1
    for chart in items:
        charts.cell(chart_row, 1, chart.title).font = Font(bold=True, size=12)
        if chart.kind == "heatmap":
            used = _heatmap(charts, chart, chart_row + 1)
            chart_row += used + 2
            continue
        data.cell(data_row, 1, chart.title).font = Font(bold=True)
        header = data_row + 1
        _header_row(data, header, [_axis_title(chart), *(s.name for s in chart.series)])
        for i, category in enumerate(chart.categories):
            data.cell(header + 1 + i, 1, category)
            for j, series in enumerate(chart.series):
                value = series.values[i] if i < len(series.values) else None
                data.cell(header + 1 + i, 2 + j, value)
        last = header + len(chart.categories)
        excel_chart = _native_chart(chart)
        # A pie shows one series (the first); the other kinds every series.
        columns = 1 if chart.kind == "pie" else max(1, len(chart.series))
        values = Reference(data, min_col=2, max_col=1 + columns, min_row=header, max_row=max(last, header + 1))
        excel_chart.add_data(values, titles_from_data=True)
        categories = Reference(data, min_col=1, min_row=header + 1, max_row=max(last, header + 1))
        for series in excel_chart.series:
            # Labels, not numbers: a string reference (openpyxl's set_categories makes a numeric one).
            series.cat = AxDataSource(strRef=StrRef(f=str(categories)))
        charts.add_chart(excel_chart, f"A{chart_row + 1}")
        chart_row += CHART_ROWS + 2
        data_row = last + 2
    data.column_dimensions["A"].width = 16


def _native_chart(chart: Chart) -> ChartBase:
    made: ChartBase
    if chart.kind == "line":
        made = LineChart()
    elif chart.kind in ("bar", "stacked_bar"):
        bar = BarChart()
        bar.type = "col"
        if chart.kind == "stacked_bar":
            bar.grouping = "stacked"
            bar.overlap = 100
        made = bar
    elif chart.kind == "pie":
        pie = PieChart()
        pie.dataLabels = DataLabelList()
        pie.dataLabels.showPercent = True
        made = pie
    else:  # pragma: no cover - ChartKind is closed; a new kind must be drawn here first
        raise ValueError(f"no native chart for {chart.kind}")
    made.title = chart.title
    made.width, made.height = 24, 10  # cm
    if not isinstance(made, PieChart):
        made.y_axis.title = chart.unit or None
        made.x_axis.title = None
        # openpyxl ≥ 3.1 hides axes unless told otherwise; Excel then draws a chart without labels
        made.x_axis.delete = False
        made.y_axis.delete = False
    return made


def _heatmap(ws: Worksheet, chart: Chart, top: int) -> int:
    """The heat map as a table (x labels across, y labels down) with a colour scale; returns rows used."""
    _header_row(ws, top, ["", *chart.categories])
    for i, series in enumerate(chart.series):
        label = chart.y_categories[i] if i < len(chart.y_categories) else series.name
        ws.cell(top + 1 + i, 1, label).font = Font(bold=True)
        for j, value in enumerate(series.values):
            ws.cell(top + 1 + i, 2 + j, value).border = BOX
    if chart.series and chart.categories:
        last_col = get_column_letter(1 + len(chart.categories))
        area = f"B{top + 1}:{last_col}{top + len(chart.series)}"
        ws.conditional_formatting.add(area, ColorScaleRule(start_type="min", start_color="FFFFFF",
                                                           mid_type="percentile", mid_value=50, mid_color="FFD966",
                                                           end_type="max", end_color="C00000"))
    return 1 + len(chart.series)


def _axis_title(chart: Chart) -> str:
    return "类别" if chart.kind == "pie" else "时间/类别"


# ---------------------------------------------------------------- tables


def _table_block(ws: Worksheet, table: Table, top: int) -> None:
    ws.cell(top, 1, table.title).font = Font(bold=True, size=12)
    _header_row(ws, top + 1, table.columns)
    for i, row in enumerate(table.rows, start=top + 2):
        for j, value in enumerate(row, start=1):
            ws.cell(i, j, value).border = BOX
    ws.freeze_panes = ws.cell(top + 2, 1)
    for j, column in enumerate(table.columns, start=1):
        longest = max([_width(column), *(_width(r[j - 1]) for r in table.rows[:200] if j - 1 < len(r))])
        ws.column_dimensions[get_column_letter(j)].width = min(40, max(8, longest + 2))


def _width(value: Cell) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)  # CJK characters are two columns wide


def _header_row(ws: Worksheet, row: int, labels: Iterable[str]) -> None:
    for col, label in enumerate(labels, start=1):
        cell = ws.cell(row, col, label)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        cell.border = BOX


def _sheet_name(title: str, taken: set[str]) -> str:
    """A valid, unique sheet name (Excel: ≤ 31 characters, none of []:*?/\\)."""
    base = "".join("-" if ch in FORBIDDEN_IN_SHEET_NAMES else ch for ch in title).strip("'") or "表"
    base = base[:SHEET_NAME_MAX]
    name, n = base, 2
    while name in taken:
        suffix = f"({n})"
        name = base[:SHEET_NAME_MAX - len(suffix)] + suffix
        n += 1
    return name
