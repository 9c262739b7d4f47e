"""Staff notifications reach people: stored redacted and encrypted, pushed after commit to every staff page's
bell over /ws/staff (all roles, dispatcher and field crew included), listed and marked read through the REST
API (audited), and a resident's gas-leak report reaches the on-duty staff's open pages within 2 s."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import select, text

from gasdesk.audit.models import AuditEntry
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit, rollback
from gasdesk.notifications.models import Notification
from gasdesk.notifications.service import do_notify
from tests.factories import ChatSocket, login, new_visitor, served, staff_user, wo_headers

PHONE = "13987654321"


async def _notify(session, user_id: int, kind: str = "ticket.assigned", title: str = "新派工单 GD1",
                  body: str = "", link: str | None = "/tickets/1") -> Notification:
    note = do_notify(session, user_id, kind, title, body, link=link)
    await commit(session)
    return note


# ---------------------------------------------------------------- service


async def test_notify_is_redacted_encrypted_and_pushed_only_after_commit(session, events) -> None:
    crew_id = (await staff_user(session, "field_crew")).id
    do_notify(session, crew_id, "emergency.gas_leak", "燃气泄漏报警", f"厨房有煤气味，电话 {PHONE}", link="/tickets/9")
    assert [e for e in events if e.type == "notification.created"] == []
    await rollback(session)
    assert [e for e in events if e.type == "notification.created"] == []  # nothing announced for a rollback

    note = await _notify(session, crew_id, "emergency.gas_leak", "燃气泄漏报警", f"厨房有煤气味，电话 {PHONE}",
                         link="/tickets/9")
    [event] = [e for e in events if e.type == "notification.created"]
    assert event.payload["user_id"] == crew_id
    pushed = event.payload["notification"]
    assert pushed["id"] == note.id and pushed["urgent"] is True and pushed["kind_label"] == "燃气泄漏报警"
    assert pushed["body"] == "厨房有煤气味，电话 [手机号]" and pushed["read"] is False
    raw = (await session.execute(text("SELECT title, body FROM notifications WHERE id = :i"), {"i": note.id})).one()
    assert "煤气" not in raw.body and PHONE not in raw.body and "燃气" not in raw.title


# ---------------------------------------------------------------- REST


async def test_list_count_and_mark_read_through_the_api_are_audited(client, session, factory) -> None:
    dispatcher = await staff_user(session, "dispatcher")
    other = await staff_user(session, "agent")
    first = await _notify(session, dispatcher.id, title="新工单 GD1")
    second = await _notify(session, dispatcher.id, kind="sla.breached", title="工单 GD2 已超时")
    foreign = await _notify(session, other.id, title="别人的通知")
    headers = await wo_headers(factory, dispatcher)

    listed = (await client.get("/api/v1/notifications", headers=headers)).json()
    assert [n["id"] for n in listed["items"]] == [second.id, first.id]  # newest first, only mine
    assert listed["unread"] == 2 and listed["items"][0]["kind_label"] == "工单已超时"
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).json() == {"unread": 2}

    # someone else's notification does not exist for me
    response = await client.post(f"/api/v1/notifications/{foreign.id}/read", headers=headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "notification_not_found"

    marked = await client.post(f"/api/v1/notifications/{first.id}/read", headers=headers)
    assert marked.status_code == 200 and marked.json()["read"] is True
    again = await client.post(f"/api/v1/notifications/{first.id}/read", headers=headers)  # idempotent
    assert again.status_code == 200
    unread = (await client.get("/api/v1/notifications?unread=true", headers=headers)).json()
    assert [n["id"] for n in unread["items"]] == [second.id] and unread["unread"] == 1

    assert (await client.post("/api/v1/notifications/read-all", headers=headers)).json() == {"marked": 1, "unread": 0}
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).json() == {"unread": 0}

    rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.actor_id == dispatcher.id,
                                                               AuditEntry.action.like("notification.%"))
                                      .order_by(AuditEntry.id)))
    assert [(r.action, r.entity_type, r.entity_id) for r in rows] == [
        ("notification.read", "notification", str(first.id)), ("notification.read_all", "user", str(dispatcher.id))]
    still_unread = await session.scalar(select(Notification.read_at).where(Notification.id == foreign.id))
    assert still_unread is None


async def test_every_staff_role_may_read_and_residents_may_not(client, session, factory) -> None:
    for role in ("admin", "supervisor", "agent", "dispatcher", "field_crew"):
        headers = await wo_headers(factory, await staff_user(session, role))
        assert (await client.get("/api/v1/notifications", headers=headers)).status_code == 200, role
    assert (await client.get("/api/v1/notifications")).status_code == 401


async def test_notification_page_lists_and_opens_the_link(client, session) -> None:
    crew = await staff_user(session, "field_crew")
    note = await _notify(session, crew.id, title="新派工单 GD00042", link="/crew")
    assert (await login(client, crew.username)).status_code == 303
    page = await client.get("/notifications", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "新派工单 GD00042" in page.text and "未读 1 条" in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    opened = await client.post(f"/notifications/{note.id}/read", data={"csrf_token": token},
                               headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/crew"
    assert "未读 0 条" in (await client.get("/notifications", headers={"Accept": "text/html"})).text


# ---------------------------------------------------------------- live push over /ws/staff


async def _cookie(host: str, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://{host}") as c:
        assert (await login(c, username)).status_code == 303
        return {"Cookie": f"gasdesk_session={c.cookies.get('gasdesk_session')}"}


async def test_every_role_gets_live_pushes_and_reads_from_other_pages(app, session) -> None:
    dispatcher = await staff_user(session, "dispatcher")
    crew = await staff_user(session, "field_crew")
    await _notify(session, dispatcher.id, title="旧通知")
    async with served(app) as host:
        origin = f"http://{host}"
        d_cookie = await _cookie(host, dispatcher.username)
        c_cookie = await _cookie(host, crew.username)
        async with ChatSocket.connect(host, "/ws/staff", origin=origin, additional_headers=d_cookie) as page1, \
                ChatSocket.connect(host, "/ws/staff", origin=origin, additional_headers=d_cookie) as page2, \
                ChatSocket.connect(host, "/ws/staff", origin=origin, additional_headers=c_cookie) as crew_page:
            assert (await page1.until("hello"))["unread"] == 1
            await page2.until("hello")
            assert (await crew_page.until("hello"))["unread"] == 0

            note = await _notify(session, crew.id, title="新派工单 GD7", link="/crew")
            pushed = (await crew_page.until("notification"))["notification"]
            assert (pushed["id"], pushed["title"], pushed["link"]) == (note.id, "新派工单 GD7", "/crew")
            assert [f for f in await page1.quiet(0.3) if f["type"] == "notification"] == []  # only its owner

            # reading on one page updates the bell of the others
            async with httpx.AsyncClient(base_url=origin) as c:
                await login(c, dispatcher.username)  # a third page of the same user
                assert (await c.post("/api/v1/notifications/read-all")).status_code == 200
            read = await page2.until("notification_read")
            assert read["ids"] is None and read["unread"] == 0

            await page1.send(type="ping")
            assert (await page1.until("pong"))["type"] == "pong"


async def test_gas_leak_reported_in_chat_reaches_on_duty_staff_within_2s(app, session, monkeypatch) -> None:
    """厨房有煤气味 typed by a resident: every on-duty dispatcher, agent and supervisor with a page open gets the
    urgent notification on their bell's socket within 2 s of sending (the browser test measures the toast)."""
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    reset_settings_cache()
    dispatcher = await staff_user(session, "dispatcher")
    supervisor = await staff_user(session, "supervisor")
    async with served(app) as host:
        origin = f"http://{host}"
        d_cookie = await _cookie(host, dispatcher.username)
        s_cookie = await _cookie(host, supervisor.username)
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host, "/ws/staff", origin=origin, additional_headers=d_cookie) as d_page, \
                ChatSocket.connect(host, "/ws/staff", origin=origin, additional_headers=s_cookie) as s_page, \
                ChatSocket.connect(host) as resident:
            await d_page.until("hello")
            await s_page.until("hello")
            await resident.send(type="hello", token=visitor["token"])
            await resident.until("welcome", timeout=30)  # the first turn trains the NLU model
            started = time.monotonic()
            await resident.send(type="message", client_msg_id="leak-1", text="厨房有煤气味")
            alerts = await asyncio.gather(d_page.until("notification", timeout=10),
                                          s_page.until("notification", timeout=10))
            elapsed = time.monotonic() - started
    for frame in alerts:
        note = frame["notification"]
        assert note["kind"] == "emergency.gas_leak" and note["urgent"] and note["link"].startswith("/tickets/")
    assert elapsed < 2.0, f"leak alert took {elapsed:.2f}s"
