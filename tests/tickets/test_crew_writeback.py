"""Crew write-back (arrival, result, materials, photos, signature) and what field crews may see."""

from __future__ import annotations

from datetime import UTC, datetime

from gasdesk import clock
from gasdesk.tickets.models import Ticket
from tests.factories import (
    WO_PNG,
    staff_user,
    wo_audit_rows,
    wo_headers,
    wo_reload,
    wo_ticket,
    wo_ticket_events,
)

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


async def test_crew_writes_back_and_resolves(client, factory, session, events) -> None:
    clock.set_now(T0)
    crew = await staff_user(session, "field_crew", display_name="维修一班李师傅")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=crew.id, description="燃气表漏气")
    headers = await wo_headers(factory, crew)
    r = await client.post(f"/api/v1/tickets/{ticket.id}/photos", headers=headers,
                          files={"file": ("现场.png", WO_PNG, "image/png")})
    assert r.status_code == 201, r.text
    token = r.json()["file_token"]
    r = await client.post(f"/api/v1/tickets/{ticket.id}/photos", headers=headers,
                          files={"file": ("假图.png", b"not a png at all", "image/png")})
    assert r.status_code == 422
    events.clear()
    body = {"arrived_at": "2026-12-07T01:40:00+00:00", "result": "更换表前阀密封圈，试压无泄漏",
            "materials": [{"name": "密封圈", "qty": 2}], "photo_tokens": [token], "signature_name": "张伟"}
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    stored = await wo_reload(Ticket, ticket.id)
    assert stored.status == "resolved" and stored.resolved_at == T0
    result = stored.result
    assert result["result"] == body["result"] and result["materials"] == body["materials"]
    assert result["signature_name"] == "张伟" and result["by"] == "维修一班李师傅"
    assert result["arrived_at"].startswith("2026-12-07T01:40") and len(result["photos"]) == 1
    actions = [(e.action, e.from_status, e.to_status, e.actor_id) for e in await wo_ticket_events(ticket.id)]
    assert actions[-3:] == [("start", "assigned", "in_progress", crew.id), ("writeback", "in_progress", "in_progress", crew.id),
                            ("resolve", "in_progress", "resolved", crew.id)]
    assert await wo_audit_rows(session, "ticket", ticket.id, "ticket.resolve")
    assert [e.payload["status"] for e in events if e.type == "ticket.updated"] == ["in_progress", "resolved"]


async def test_writeback_without_resolving_and_bad_photo(client, factory, session) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="in_progress", crew_id=crew.id)
    other = await wo_ticket(session, "repair", status="in_progress", crew_id=crew.id)
    headers = await wo_headers(factory, crew)
    r = await client.post(f"/api/v1/tickets/{other.id}/photos", headers=headers,
                          files={"file": ("a.png", WO_PNG, "image/png")})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers,
                          json={"result": "已到场", "photo_tokens": [r.json()["file_token"]], "resolved": False})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_photo"
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers, json={"result": ""})
    assert r.status_code == 422
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers,
                          json={"result": "需要备件，明天再来", "resolved": False})
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    assert (await wo_reload(Ticket, ticket.id)).result["result"] == "需要备件，明天再来"


async def test_crew_cannot_touch_someone_elses_ticket(client, factory, session) -> None:
    mine, theirs = await staff_user(session, "field_crew"), await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=theirs.id)
    headers = await wo_headers(factory, mine)
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers, json={"result": "修好了"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ticket_not_yours"
    r = await client.post(f"/api/v1/tickets/{ticket.id}/photos", headers=headers,
                          files={"file": ("a.png", WO_PNG, "image/png")})
    assert r.status_code == 403
    r = await client.get(f"/api/v1/tickets/{ticket.id}", headers=headers)
    assert r.status_code == 403
    agent_headers = await wo_headers(factory, await staff_user(session, "agent"))
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=agent_headers, json={"result": "x"})
    assert r.status_code == 403
    stored = await wo_reload(Ticket, ticket.id)
    assert stored.status == "assigned" and stored.result is None


async def test_writeback_needs_an_open_ticket(client, factory, session) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="resolved", crew_id=crew.id)
    r = await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=await wo_headers(factory, crew),
                          json={"result": "再补一条"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_transition"


async def test_field_crew_lists_only_own_tickets(client, factory, session) -> None:
    mine, theirs = await staff_user(session, "field_crew"), await staff_user(session, "field_crew")
    own = [await wo_ticket(session, "repair", status="assigned", crew_id=mine.id) for _ in range(2)]
    await wo_ticket(session, "repair", status="assigned", crew_id=theirs.id)
    await wo_ticket(session, "gas_leak")
    r = await client.get("/api/v1/tickets", headers=await wo_headers(factory, mine))
    assert r.status_code == 200
    assert r.json()["total"] == 2 and {t["id"] for t in r.json()["items"]} == {t.id for t in own}
    r = await client.get("/api/v1/tickets", params={"crew_id": theirs.id}, headers=await wo_headers(factory, mine))
    assert r.json()["total"] == 0
    r = await client.get("/api/v1/tickets", headers=await wo_headers(factory, await staff_user(session, "dispatcher")))
    assert r.json()["total"] == 4
