"""The agent console's REST and socket: who may read and change which conversation, canned replies with
variables, a customer's conversations."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from gasdesk import db
from gasdesk.conversations import service
from gasdesk.conversations.models import Message, SenderType
from gasdesk.db import commit
from tests.factories import (
    TEST_PASSWORD,
    ChatSocket,
    bot_conversation,
    desk_agent,
    queued_conversation,
    reload_conversation,
    served,
    staff_user,
)


async def _bearer(factory, user) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factory.token(user)}"}


async def _message_count(conversation_id: int) -> int:
    async with db.sessionmaker()() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)
                                  .where(Message.conversation_id == conversation_id)))


async def test_agent_cannot_touch_a_conversation_not_assigned_to_them(client, session, factory) -> None:
    owner = await desk_agent(factory)
    intruder = await desk_agent(factory, presence="busy")
    conversation = await queued_conversation(session)
    await service.do_post_message(session, conversation, SenderType.resident, text="我的户号是2100001234")
    await commit(session)
    assert (await reload_conversation(conversation.id)).agent_id == owner.id
    headers = await _bearer(factory, intruder)
    before = await _message_count(conversation.id)
    base = f"/api/v1/conversations/{conversation.id}"
    for method, path, body in [
        ("GET", base, None), ("POST", base + "/messages", {"text": "你好", "client_msg_id": "x1"}),
        ("POST", base + "/transfer", {"to_group_id": 2}), ("POST", base + "/close", None),
        ("POST", base + "/accept", None), ("PUT", base + "/customer", {"customer_id": 1}),
        ("GET", f"/api/v1/canned-replies?conversation_id={conversation.id}", None),
    ]:
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "conversation_not_yours"
        assert "2100001234" not in response.text
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.agent_id) == ("assigned", owner.id)
    assert await _message_count(conversation.id) == before


async def test_owner_and_supervisor_can_read_post_and_close(client, session, factory) -> None:
    owner = await desk_agent(factory)
    supervisor = await staff_user(session, "supervisor")
    conversation = await queued_conversation(session)
    await service.do_post_message(session, conversation, SenderType.resident, text="家里暖气不热")
    await commit(session)
    base = f"/api/v1/conversations/{conversation.id}"
    mine = await client.get(base, headers=await _bearer(factory, owner))
    assert mine.status_code == 200
    assert [m["text"] for m in mine.json()["messages"]] == ["家里暖气不热"]
    assert mine.json()["conversation"]["unread"] == 1

    sup = await _bearer(factory, supervisor)
    assert (await client.get(base, headers=sup)).status_code == 200
    posted = await client.post(base + "/messages", headers=sup, json={"text": "班长介入", "client_msg_id": "s-1"})
    assert posted.status_code == 201 and posted.json()["duplicate"] is False
    again = await client.post(base + "/messages", headers=sup, json={"text": "班长介入", "client_msg_id": "s-1"})
    assert again.json()["duplicate"] is True and again.json()["message"]["seq"] == posted.json()["message"]["seq"]
    closed = await client.post(base + "/close", headers=sup)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    late = await client.post(base + "/messages", headers=await _bearer(factory, owner), json={"text": "还在吗"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "conversation_closed"


async def test_accept_and_presence_endpoints(client, session, factory) -> None:
    agent = await desk_agent(factory, presence="busy", max_concurrent=1)
    headers = await _bearer(factory, agent)
    waiting = [await queued_conversation(session) for _ in range(2)]
    queue = await client.get("/api/v1/agent/queue", headers=headers)
    assert [item["id"] for item in queue.json()] == [c.id for c in waiting]
    assert (await client.post(f"/api/v1/conversations/{waiting[0].id}/accept", headers=headers)).status_code == 200
    full = await client.post(f"/api/v1/conversations/{waiting[1].id}/accept", headers=headers)
    assert full.status_code == 409 and full.json()["error"]["code"] == "agent_at_capacity"
    presence = await client.get("/api/v1/agent/presence", headers=headers)
    assert presence.json() == {"presence": "busy", "label": "忙碌", "max_concurrent": 1, "active": 1}
    bad = await client.put("/api/v1/agent/presence", headers=headers, json={"presence": "sleeping"})
    assert bad.status_code == 422
    mine = await client.get("/api/v1/agent/conversations", headers=headers)
    assert [c["id"] for c in mine.json()] == [waiting[0].id]


async def test_canned_replies_fill_the_variables(client, session, factory) -> None:
    agent = await desk_agent(factory)
    customer = await factory.customer(name="王建国", account_no="2100009876")
    conversation = await queued_conversation(session, customer_id=customer.id)
    headers = await _bearer(factory, agent)
    rows = (await client.get(f"/api/v1/canned-replies?conversation_id={conversation.id}", headers=headers)).json()
    by_title = {r["title"]: r for r in rows}
    assert by_title["核实户号"]["text"].startswith("王先生/女士您好")
    assert by_title["核实户号"]["body"].startswith("{客户称呼}")
    assert f"我是客服{agent.display_name}" in by_title["问候"]["text"]
    assert "{" not in "".join(r["text"] for r in rows)
    anonymous = (await client.get("/api/v1/canned-replies", headers=headers)).json()
    assert {r["title"]: r for r in anonymous}["核实户号"]["text"].startswith("您您好")


async def test_customer_conversations_for_agents(client, session, factory) -> None:
    agent = await desk_agent(factory)
    customer = await factory.customer()
    first = await bot_conversation(session, customer_id=customer.id, visitor_id="v_a")
    await service.do_post_message(session, first, SenderType.resident, text="燃气表不走字")
    await service.do_close(session, first, by="resident")
    second = await bot_conversation(session, customer_id=customer.id, visitor_id="v_b")
    await bot_conversation(session)  # someone else's
    await commit(session)
    response = await client.get(f"/api/v1/customers/{customer.id}/conversations",
                                headers=await _bearer(factory, agent))
    assert response.status_code == 200
    rows = response.json()
    assert [r["id"] for r in rows] == [second.id, first.id]
    assert rows[1]["preview"] == "燃气表不走字" and rows[1]["state_label"] == "已结束"
    field = await client.get(f"/api/v1/customers/{customer.id}/conversations", headers=await factory.headers("field_crew"))
    assert field.status_code == 403


# ---------------------------------------------------------------- the staff socket


async def test_agent_socket_refuses_without_session_4401_and_wrong_role_4403(app, session, factory) -> None:
    await staff_user(session, "dispatcher", username="dispatch1")
    await staff_user(session, "field_crew", username="crew1")
    await staff_user(session, "agent", username="agent1")
    await db.dispose_engine()  # the TestClient runs the app on its own event loop
    with TestClient(app) as tc:
        with pytest.raises(WebSocketDisconnect) as info:
            with tc.websocket_connect("/ws/agent") as ws:
                ws.receive_json()
        assert info.value.code == 4401
        for username in ("dispatch1", "crew1"):
            tc.cookies.clear()
            assert tc.post("/login", data={"username": username, "password": TEST_PASSWORD, "next": "/"},
                           follow_redirects=False).status_code in (302, 303)
            with pytest.raises(WebSocketDisconnect) as info:
                with tc.websocket_connect("/ws/agent") as ws:
                    ws.receive_json()
            assert info.value.code == 4403, username
        tc.cookies.clear()
        tc.post("/login", data={"username": "agent1", "password": TEST_PASSWORD, "next": "/"})
        with tc.websocket_connect("/ws/agent") as ws:
            hello = ws.receive_json()
            assert hello["type"] == "hello" and hello["role"] == "agent"
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}


async def test_agent_socket_close_codes_reach_a_real_client(app) -> None:
    from websockets.exceptions import ConnectionClosed

    async with served(app) as host:
        with pytest.raises(ConnectionClosed) as info:
            async with ChatSocket.connect(host, "/ws/agent") as ws:
                await ws.recv()
        assert info.value.rcvd.code == 4401


async def test_agent_socket_cannot_post_into_someone_elses_conversation(app, session, factory) -> None:
    owner = await desk_agent(factory)
    intruder = await desk_agent(factory, presence="busy")
    conversation = await queued_conversation(session)
    assert (await reload_conversation(conversation.id)).agent_id == owner.id
    before = await _message_count(conversation.id)
    headers = await _bearer(factory, intruder)
    async with served(app) as host, ChatSocket.connect(host, "/ws/agent", additional_headers=headers) as ws:
        assert (await ws.recv())["type"] == "hello"
        for frame in ({"type": "message", "conversation_id": conversation.id, "client_msg_id": "i-1", "text": "hi"},
                      {"type": "watch", "conversation_id": conversation.id}):
            await ws.send(**frame)
            error = await ws.until("error")
            assert error["code"] == "conversation_not_yours"
    assert await _message_count(conversation.id) == before
