"""The holiday notice with a fake clock: before/after its window, 调休 days, overrides; and where residents hear it."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import pipeline, service
from gasdesk.db import commit
from gasdesk.hours.service import do_set_override, holiday_notice

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADMIN = Actor.system("hours-test")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


NATIONAL_DAY = "国庆期间营业厅 10月1日至7日休息，10月10日（周六）调休正常上班；热线 96777 24 小时服务"
SPRING = "春节期间营业厅 2月15日至23日休息，2月14日（周六）、2月28日（周六）调休正常上班；热线 96777 24 小时服务"


@pytest.mark.parametrize(("moment", "expected"), [
    (at(2026, 2, 7, 23, 59), None),  # 8 days before 春节: outside the 7-day window
    (at(2026, 2, 8, 0, 5), SPRING),  # 7 days before: announced, both 调休 Saturdays named
    (at(2026, 2, 16, 12, 0), SPRING.replace("2月14日（周六）、", "")),  # during it: the past 调休 day is dropped
    (at(2026, 2, 24, 9, 0), None),  # after it (the 2月28日 workday is not announced on its own)
    (at(2026, 9, 23, 10, 0), "中秋节期间营业厅 9月25日至27日休息；热线 96777 24 小时服务"),  # the nearer closure first
    (at(2026, 9, 28, 10, 0), NATIONAL_DAY),
    (at(2026, 10, 7, 20, 0), NATIONAL_DAY),
    (at(2026, 10, 8, 9, 0), None),
])
async def test_holiday_notice_windows(session, moment: datetime, expected: str | None) -> None:
    notice = await holiday_notice(session, moment)
    assert (notice.text if notice else None) == expected


async def test_the_window_is_configurable(session, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_HOLIDAY_NOTICE_DAYS", "0")
    reset_settings_cache()
    assert await holiday_notice(session, at(2026, 9, 30, 10, 0)) is None
    assert await holiday_notice(session, at(2026, 10, 1, 10, 0)) is not None


async def test_spring_festival_and_local_overrides_beyond_the_library(session) -> None:
    spring = await holiday_notice(session, at(2026, 2, 12, 10, 0))
    assert spring is not None and spring.text.startswith("春节期间营业厅 2月15日至23日休息")
    assert "2月14日（周六）" in spring.text and "2月28日（周六）" in spring.text
    # 2027 has no library data: the admin's overrides make the notice
    assert await holiday_notice(session, at(2027, 9, 28, 10, 0)) is None
    for day in range(1, 8):
        await do_set_override(session, ADMIN, line="counters", day=date(2027, 10, day), hours="", note="国庆")
    await do_set_override(session, ADMIN, line="counters", day=date(2027, 10, 9), hours="08:30-17:00", note="国庆")
    await commit(session)
    notice = await holiday_notice(session, at(2027, 9, 28, 10, 0))
    assert notice is not None
    assert notice.text.startswith("国庆期间营业厅 10月1日至7日休息，10月9日（周六）调休正常上班")


async def test_the_greeting_carries_the_notice_only_inside_its_window(session) -> None:
    clock.set_now(at(2026, 9, 28, 10, 0))
    conversation = await pipeline.start_conversation(session, channel="webchat", visitor_id="v_holiday1")
    await commit(session)
    texts = [m.text or "" for m in await service.messages_after(session, conversation.id)]
    assert any(t.startswith("温馨提示：国庆期间营业厅 10月1日至7日休息") for t in texts)
    clock.set_now(at(2026, 11, 2, 10, 0))
    quiet = await pipeline.start_conversation(session, channel="webchat", visitor_id="v_holiday2")
    await commit(session)
    assert not any("温馨提示" in (m.text or "") for m in await service.messages_after(session, quiet.id))
