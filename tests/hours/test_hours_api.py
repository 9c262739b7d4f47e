"""The hours API and the admin page: overrides through HTTP, the opening state, the public notice, the warning."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gasdesk import clock
from tests.factories import login, page_csrf_token

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_overrides_state_and_notice_over_http(client, factory) -> None:
    clock.set_now(datetime(2027, 9, 28, 10, 0, tzinfo=SHANGHAI))
    admin = await factory.user("admin")
    headers = {"Authorization": f"Bearer {await factory.token(admin)}"}
    assert (await client.get("/api/v1/hours/notice")).json() == {"text": None}
    warning = (await client.get("/api/v1/hours/calendar", headers=headers)).json()["warning"]
    assert "2027" in warning, "the library has no 2027 data: the admin is told to enter it"
    for day in range(1, 8):
        response = await client.put("/api/v1/hours/overrides", headers=headers,
                                    json={"line": "counters", "day": f"2027-10-0{day}", "hours": "", "note": "国庆"})
        assert response.status_code == 200, response.text
    bad = await client.put("/api/v1/hours/overrides", headers=headers,
                           json={"line": "moon", "day": "2027-10-01", "hours": "", "note": ""})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_service_line"
    notice = (await client.get("/api/v1/hours/notice")).json()["text"]
    assert notice.startswith("国庆期间营业厅 10月1日至7日休息")
    clock.set_now(datetime(2027, 10, 2, 10, 0, tzinfo=SHANGHAI))
    headers = {"Authorization": f"Bearer {await factory.token(admin)}"}  # a token of the new day
    state = (await client.get("/api/v1/hours/state?kind=counters", headers=headers)).json()
    assert state == {"kind": "counters", "is_open": False, "hours_today": "", "note": "国庆", "day_kind": "holiday",
                     "holiday": "国庆"}
    rows = (await client.get("/api/v1/hours/overrides", headers=headers)).json()
    assert len(rows) == 7
    assert (await client.delete(f"/api/v1/hours/overrides/{rows[0]['id']}", headers=headers)).status_code == 204


async def test_the_admin_page_adds_an_override_and_shows_the_warning(client, factory) -> None:
    clock.set_now(datetime(2026, 12, 4, 10, 0, tzinfo=SHANGHAI))
    admin = await factory.user("admin", username="hoursadmin")
    await login(client, admin.username)
    page = await client.get("/admin/hours")
    assert page.status_code == 200 and "节假日库（chinese_calendar）尚无 2027 年" in page.text
    token = await page_csrf_token(client)
    saved = await client.post("/admin/hours", data={"csrf_token": token, "line": "counters", "day": "2027-01-01",
                                                    "closed": "1", "note": "元旦"})
    assert saved.status_code == 303
    again = await client.get("/admin/hours")
    assert "2027-01-01" in again.text and "元旦" in again.text
    refused = await client.post("/admin/hours", data={"csrf_token": token, "line": "counters", "day": "2027-01-02",
                                                      "hours": "25:00-26:00"})
    assert refused.status_code == 422 and "营业时间格式" in refused.text
