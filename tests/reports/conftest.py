"""A report as a builder would make it (every chart kind, a table long enough to run over pages), for the
renderers' tests: the renderers read only the Report, so their tests need no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gasdesk.reports.model import Chart, Kpi, Period, Report, Series, Table

WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
HOURS = [f"{h:02d}时" for h in range(24)]
CONTACTS_BY_HOUR = [3, 1, 0, 0, 0, 2, 9, 27, 64, 88, 95, 81, 60, 72, 90, 86, 77, 58, 40, 33, 25, 17, 9, 5]


def sample_report(rows: int = 12) -> Report:
    """An overview 日报 of 2026-12-03 (UTC+8) against 2026-12-02, with ``rows`` agents in its table."""
    return Report(
        key="overview",
        title="客服运营日报",
        period=Period("day", datetime(2026, 12, 2, 16, tzinfo=UTC), datetime(2026, 12, 3, 16, tzinfo=UTC), "2026-12-03"),
        previous=Period("day", datetime(2026, 12, 1, 16, tzinfo=UTC), datetime(2026, 12, 2, 16, tzinfo=UTC), "2026-12-02"),
        generated_at=datetime(2026, 12, 4, 0, 0, tzinfo=UTC),
        filters={"district": "和平区"},
        kpis=[Kpi("contacts", "会话总数", 1042, 980, "件"),
              Kpi("ai_rate", "智能客服承接率", 63.5, 60.25, "%"),
              Kpi("transfer_rate", "转人工率", 21.75, 24.5, "%", better="lower"),
              Kpi("csat", "满意度", 4.62, None, "分"),
              Kpi("aht", "平均处理时长", 312, 298, "秒", better="lower")],
        charts=[Chart("by_hour", "各时段会话量", "line", HOURS, [Series("会话", list(CONTACTS_BY_HOUR))]),
                Chart("by_channel", "各渠道会话量", "bar", ["网页", "微信", "短信", "热线"],
                      [Series("本期", [420, 388, 54, 180]), Series("上期", [401, 350, 61, 168])]),
                Chart("handled", "承接方式", "stacked_bar", ["网页", "微信", "热线"],
                      [Series("智能客服", [300, 260, 40]), Series("知识库", [60, 70, 0]), Series("人工", [60, 58, 140])]),
                Chart("tickets", "工单类型", "pie", ["报修", "投诉", "咨询"], [Series("工单", [57, 12, 31])]),
                Chart("peaks", "高峰时段热力图", "heatmap", HOURS,
                      [Series(day, [v * (i + 1) // 3 for v in CONTACTS_BY_HOUR]) for i, day in enumerate(WEEKDAYS)],
                      y_categories=WEEKDAYS)],
        tables=[Table("agents", "坐席工作量", ["坐席", "接待量", "平均处理时长（秒）", "质检得分"],
                      [[f"坐席{i:03d}", 40 + i, 300.5 + i, 90 - (i % 7)] for i in range(rows)]),
                Table("topics", "热点问题", ["意图", "次数"], [["燃气报修", 120], ["缴费查询", 98], ["停气通知", None]])],
        notes=["热力图为本周各日各时段的会话量。"],
    )


@pytest.fixture
def report() -> Report:
    return sample_report()
