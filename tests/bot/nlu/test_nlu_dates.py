from datetime import UTC, datetime

import pytest

from gasdesk.bot.nlu.dates import cn_number, resolve_date, resolve_time

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass

NOW = datetime(2024, 11, 27, 10, 0)  # a Wednesday morning, naive = Asia/Shanghai local time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天下午", "2024-11-28"),
        ("后天", "2024-11-29"),
        ("大后天上午", "2024-11-30"),
        ("今天晚上7点", "2024-11-27"),
        ("周六上午", "2024-11-30"),
        ("这周六", "2024-11-30"),
        ("这周一", "2024-11-25"),  # this calendar week, even when already past
        ("下周一", "2024-12-02"),
        ("下个星期天", "2024-12-08"),
        ("礼拜三", "2024-11-27"),  # a bare weekday means the next one, today included
        ("3号", "2024-12-03"),  # already past this month -> next month
        ("28号", "2024-11-28"),
        ("下个月5号", "2024-12-05"),
        ("12月3日", "2024-12-03"),
        ("十二月三号", "2024-12-03"),
        ("1月8号", "2025-01-08"),
        ("2025年3月1日", "2025-03-01"),
        ("三天后", "2024-11-30"),
    ],
)
def test_resolve_date(text, expected):
    assert resolve_date(text, NOW) == expected


@pytest.mark.parametrize("text", ["3号楼2单元", "地铁5号线", "幸福路12号", "工单号WX20240312001", "快一点"])
def test_numbers_that_are_not_dates(text):
    assert resolve_date(text, NOW) is None


def test_now_is_converted_to_shanghai():
    # 2024-11-27 17:00 UTC is already Thursday 01:00 in Shanghai, so 明天 is Friday.
    assert resolve_date("明天", datetime(2024, 11, 27, 17, 0, tzinfo=UTC)) == "2024-11-29"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天下午", "下午"),
        ("周六上午", "上午"),
        ("中午", "中午"),
        ("今晚", "晚上"),
        ("早上", "上午"),
        ("今天晚上7点", "19:00"),
        ("下午两点半", "14:30"),
        ("上午十点", "10:00"),
        ("中午1点", "13:00"),
        ("9:30", "09:30"),
        ("下午3点一刻", "15:15"),
        ("约3点", "15:00"),  # an unqualified small hour is an afternoon visit
        ("便宜一点", None),  # 一点 = "a little", not 1 o'clock
        ("没什么", None),
    ],
)
def test_resolve_time(text, expected):
    assert resolve_time(text) == expected


def test_cn_number():
    assert [cn_number(t) for t in ("三", "十", "十二", "二十五", "两", "31", "百")] == [3, 10, 12, 25, 2, 31, None]
