"""The xlsx export opens with openpyxl and holds the report's figures as numbers and its charts as native
Excel charts that refer to their data."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from openpyxl.chart import BarChart, LineChart, PieChart

from gasdesk.reports.model import Report
from gasdesk.reports.xlsx import report_to_xlsx
from tests.reports.conftest import CONTACTS_BY_HOUR, HOURS, WEEKDAYS, sample_report


def _open(report: Report):
    return load_workbook(io.BytesIO(report_to_xlsx(report)))


def test_summary_sheet_has_header_and_kpis_as_numbers(report) -> None:
    wb = _open(report)
    assert wb.sheetnames == ["概览", "图表", "图表数据", "坐席工作量", "热点问题"]
    ws = wb["概览"]
    cells = {(c.row, c.column): c.value for row in ws.iter_rows() for c in row if c.value is not None}
    assert cells[(1, 1)] == "客服运营日报"
    text = [str(v) for v in cells.values()]
    assert any(v.startswith("2026-12-03（2026-12-03 00:00 至 2026-12-04 00:00）") for v in text)  # local times
    assert "2026-12-02" in text and "区域：和平区" in text
    rows = {r[0]: r[1:] for r in ws.iter_rows(min_row=8, values_only=True) if r[0]}
    assert rows["指标"] == ("本期", "上期", "变化", "变化率", "单位")
    assert rows["会话总数"] == (1042, 980, 62, 62 / 980, "件")
    assert rows["智能客服承接率"][:3] == (63.5, 60.25, 3.25)
    assert rows["智能客服承接率"][3] is None  # a rate changes by points, not by a ratio of itself
    assert rows["满意度"] == (4.62, None, None, None, "分")
    change = next(c for row in ws.iter_rows() for c in row if c.value == 62)
    assert change.font.color.rgb.endswith("2E7D32")  # more contacts: "higher" is better, green
    worse = next(r for r in ws.iter_rows() if r[0].value == "平均处理时长")
    assert worse[3].value == 14 and worse[3].font.color.rgb.endswith("C62828")  # longer handling: red


def test_charts_are_native_and_refer_to_the_data_sheet(report) -> None:
    wb = _open(report)
    charts = wb["图表"]._charts
    assert [type(c) for c in charts] == [LineChart, BarChart, BarChart, PieChart]
    line, bar, stacked, pie = charts
    assert bar.grouping == "clustered" and stacked.grouping == "stacked" and stacked.overlap == 100
    data = wb["图表数据"]
    # Each series' values reference the block of figures on 图表数据, and those cells hold the numbers.
    ref = line.series[0].val.numRef.f
    assert ref == "'图表数据'!$B$3:$B$26"
    assert [data[f"B{r}"].value for r in range(3, 27)] == CONTACTS_BY_HOUR
    assert line.series[0].cat.strRef.f == "'图表数据'!$A$3:$A$26"
    assert [data[f"A{r}"].value for r in range(3, 27)] == HOURS
    assert data["B2"].value == "会话"  # the series name, taken as its title
    assert len(bar.series) == 2 and len(stacked.series) == 3 and len(pie.series) == 1
    bar_values = [s.val.numRef.f for s in bar.series]
    assert bar_values == ["'图表数据'!$B$30:$B$33", "'图表数据'!$C$30:$C$33"]
    assert [data[f"C{r}"].value for r in range(30, 34)] == [401, 350, 61, 168]


def test_heatmap_is_a_colour_scaled_table(report) -> None:
    ws = _open(report)["图表"]
    top = next(c.row for row in ws.iter_rows() for c in row if c.value == "高峰时段热力图")
    assert [ws.cell(top + 1, 2 + j).value for j in range(24)] == HOURS
    assert [ws.cell(top + 2 + i, 1).value for i in range(7)] == WEEKDAYS
    assert ws.cell(top + 2 + 6, 2 + 10).value == CONTACTS_BY_HOUR[10] * 7 // 3
    ranges = [str(r.sqref) for r in ws.conditional_formatting]
    assert ranges == [f"B{top + 2}:Y{top + 8}"]
    rule = next(iter(ws.conditional_formatting)).rules[0]
    assert rule.type == "colorScale"


def test_tables_get_sheets_with_numbers(report) -> None:
    wb = _open(report)
    ws = wb["坐席工作量"]
    assert [c.value for c in ws[2]] == ["坐席", "接待量", "平均处理时长（秒）", "质检得分"]
    assert [c.value for c in ws[3]] == ["坐席000", 40, 300.5, 90]
    assert ws.max_row == 2 + 12
    assert [c.value for c in wb["热点问题"][5]] == ["停气通知", None]


def test_long_titles_and_clashing_names_make_valid_sheet_names() -> None:
    report = sample_report()
    long = "各区域/各班组工单办结情况：按类型统计（含超时）与满意度"
    tables = [*report.tables, *(type(report.tables[0])(f"t{i}", long, ["a"], [[i]]) for i in range(2))]
    wb = _open(Report(**{**report.__dict__, "tables": tables, "charts": []}))
    names = wb.sheetnames[-2:]
    assert all(len(n) <= 31 and "/" not in n and ":" not in n for n in names)
    assert names[0] != names[1]
    assert "图表" not in wb.sheetnames
