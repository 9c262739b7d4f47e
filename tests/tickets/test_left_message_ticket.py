"""A left message (overflow) becomes a ticket once."""

from __future__ import annotations

from gasdesk.conversations.models import LeftMessage
from gasdesk.conversations.service import do_leave_message
from gasdesk.db import commit
from gasdesk.tickets.models import Ticket
from tests.factories import bot_conversation, staff_user, wo_headers, wo_reload


async def test_left_message_to_ticket(client, factory, session, events) -> None:
    conversation = await bot_conversation(session)
    left = await do_leave_message(session, conversation, phone="138-1234-5678", name="孙大爷",
                                  content="家里暖气一直不热，白天没人，晚上六点后打电话", reason="after_hours")
    await commit(session)
    headers = await wo_headers(factory, await staff_user(session, "agent"))
    events.clear()
    r = await client.post("/api/v1/tickets", headers=headers, json={"type": "repair", "left_message_id": left.id})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["contact_phone"] == "13812345678" and body["contact_name"] == "孙大爷"
    assert "暖气一直不热" in body["description"] and body["conversation_id"] == conversation.id
    assert body["team"] == "热力维修调度"
    stored = await wo_reload(LeftMessage, left.id)
    assert stored.status == "ticketed" and stored.ticket_id == body["id"] and stored.handled_at is not None
    ticket = await wo_reload(Ticket, body["id"])
    assert ticket.left_message_id == left.id
    assert [e.payload["ticket_id"] for e in events if e.type == "ticket.created"] == [body["id"]]

    r = await client.post("/api/v1/tickets", headers=headers, json={"type": "repair", "left_message_id": left.id})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_ticketed"
    r = await client.post("/api/v1/tickets", headers=headers, json={"type": "repair", "left_message_id": 999999})
    assert r.status_code == 404


async def test_create_ticket_api_validation(client, factory, session) -> None:
    headers = await wo_headers(factory, await staff_user(session, "agent"))
    for body, code in [({"type": "leak"}, "invalid_ticket_type"), ({"type": "repair", "priority": "asap"},
                                                                   "invalid_priority"),
                       ({"type": "repair", "service_type": "换灯泡"}, "invalid_service_type"),
                       ({"type": "repair", "contact_phone": "12345"}, "invalid_phone"),
                       ({"type": "repair", "customer_id": 999999}, "customer_not_found")]:
        r = await client.post("/api/v1/tickets", headers=headers, json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    r = await client.post("/api/v1/tickets", headers=await wo_headers(factory, await staff_user(session, "field_crew")),
                          json={"type": "repair"})
    assert r.status_code == 403
