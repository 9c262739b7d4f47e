"""The resident socket over a real server: hello/welcome, acks and resends, hand-off, overflow card and left
message, close and rating, visitor isolation, identify and history."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from gasdesk import clock, db
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import LeftMessage, Message
from tests.factories import ChatSocket, desk_agent, new_visitor, reload_conversation, served


async def _count(model, **where) -> int:
    async with db.sessionmaker()() as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(await s.scalar(query))


async def _hello(ws: ChatSocket, token: str, **extra) -> dict:
    await ws.send(type="hello", token=token, **extra)
    return await ws.until("welcome")


async def test_bad_token_closes_with_4401(app) -> None:
    async with served(app) as host:
        for first in ({"type": "hello", "token": "forged"}, {"type": "message", "token": "x"}):
            async with ChatSocket.connect(host) as ws:
                await ws.send(**first)
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 4401


async def test_hello_starts_a_conversation_and_the_bot_greets(app, events) -> None:
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            welcome = await _hello(ws, visitor["token"])
            assert welcome["visitor_id"] == visitor["visitor_id"]
            assert welcome["conversation"]["state"] == "bot"
            greeting = await ws.until("message")
            assert greeting["message"]["seq"] == 1 and greeting["message"]["sender"] == "bot"
            labels = [q["label"] for q in greeting["message"]["payload"]["quick_replies"]]
            assert "转人工" in labels
        # a second hello (new tab) attaches to the same open conversation
        async with ChatSocket.connect(host) as ws:
            again = await _hello(ws, visitor["token"], after_seq=1)
            assert again["conversation"]["id"] == welcome["conversation"]["id"]
            assert await ws.quiet(0.2) == [], "nothing to replay after seq 1"
    assert [e.type for e in events].count("conversation.started") == 1


async def test_message_ack_and_idempotent_resend(app, events) -> None:
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            welcome = await _hello(ws, visitor["token"])
            cid = welcome["conversation"]["id"]
            await ws.send(type="message", client_msg_id="m-1", text="缴费账单")
            ack = await ws.until("ack")
            assert ack["duplicate"] is False and ack["seq"] == 2
            echoed = [f["message"] for f in ws.frames if f["type"] == "message"]
            assert (2, "resident", "m-1") in [(m["seq"], m["sender"], m["client_msg_id"]) for m in echoed], \
                "the stored message is pushed before the ack"
            await ws.send(type="message", client_msg_id="m-1", text="缴费账单")
            dup = await ws.until("ack")
            assert dup == {"type": "ack", "client_msg_id": "m-1", "seq": 2, "message_id": ack["message_id"],
                           "duplicate": True}
            await ws.send(type="message", client_msg_id="m-2", text="   ")
            error = await ws.until("error")
            assert error["code"] == "empty_message" and error["client_msg_id"] == "m-2"
            await ws.send(type="message", client_msg_id="m-3", text="x" * 2001)
            assert (await ws.until("error"))["code"] == "message_too_long"
            await ws.send(type="nonsense")
            assert (await ws.until("error"))["code"] == "unknown_frame"
            await ws.send(type="message", client_msg_id="m-4", text="你好")
            assert (await ws.until("ack"))["duplicate"] is False, "the socket survives bad frames"
    assert await _count(Message, conversation_id=cid, client_msg_id="m-1") == 1
    assert await _count(Message, conversation_id=cid, sender_type="resident") == 2


async def test_resident_frames_are_rate_limited(app, monkeypatch) -> None:
    # A small limit, so that even slow bot turns (PostgreSQL) cannot spread the burst over many windows.
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"message.visitor": "5/10"}')
    reset_settings_cache()
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await _hello(ws, visitor["token"])
            for i in range(15):
                await ws.send(type="message", client_msg_id=f"r-{i}", text="你好")
            replies = []
            while len(replies) < 15:
                frame = await ws.recv()
                if frame["type"] in ("ack", "error"):
                    replies.append(frame)
            limited = [f for f in replies if f["type"] == "error"]
            assert limited and all(f["code"] == "rate_limited" and f["retry_after_s"] >= 1 for f in limited)
            assert 5 <= len(replies) - len(limited) <= 10  # one window's worth, two across a boundary


async def test_handoff_frame_queues_and_agent_reply_reaches_the_resident(app, session, factory) -> None:
    agent = await desk_agent(factory, presence="busy")
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            cid = (await _hello(ws, visitor["token"]))["conversation"]["id"]
            await ws.send(type="handoff")
            queue = await ws.until("queue")
            assert (queue["position"], queue["waiting"], queue["estimated_wait_s"]) == (1, 1, 48)
            queued = await ws.until(lambda f: f["type"] == "message" and (f["message"]["payload"] or {}).get(
                "event") == "queued")
            assert queued["message"]["payload"]["position"] == 1
            # the agent takes it over REST; the resident sees the state change and the greeting
            import httpx

            headers = {"Authorization": f"Bearer {await factory.token(agent)}"}
            async with httpx.AsyncClient(base_url=f"http://{host}", headers=headers) as staff:
                assert (await staff.post(f"/api/v1/conversations/{cid}/accept")).status_code == 200
                state = await ws.until(lambda f: f["type"] == "state" and f["state"] == "assigned")
                assert state["agent_id"] == agent.id
                await staff.post(f"/api/v1/conversations/{cid}/messages", json={"text": "您好，请讲", "client_msg_id": "a1"})
                reply = await ws.until(lambda f: f["type"] == "message" and f["message"]["sender"] == "agent")
                assert reply["message"]["text"] == "您好，请讲"
                await ws.send(type="close")
                await ws.until(lambda f: f["type"] == "message" and f["message"]["type"] == "card")
                await ws.send(type="rate", score=6)
                assert (await ws.until("error"))["code"] == "invalid_rating"
                await ws.send(type="rate", score="5")
                assert (await ws.until("error"))["code"] == "invalid_rating"
                await ws.send(type="rate", score=5, comment="很好")
                rated = await ws.until(lambda f: f["type"] == "message" and (f["message"]["payload"] or {}).get(
                    "event") == "rated")
                assert rated["message"]["payload"]["score"] == 5
                await ws.send(type="rate", score=1)
                assert (await ws.until("error"))["code"] == "already_rated"
                await ws.send(type="message", client_msg_id="late", text="还在吗")
                assert (await ws.until("error"))["code"] == "conversation_closed"
    stored = await reload_conversation(cid)
    assert (stored.state, stored.closed_by, stored.rating) == ("closed", "resident", 5)


async def test_after_hours_card_and_leave_message_frame(app, session, factory) -> None:
    clock.set_now(datetime(2026, 11, 25, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    await desk_agent(factory, groups=(1, 4))
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            cid = (await _hello(ws, visitor["token"]))["conversation"]["id"]
            await ws.send(type="message", client_msg_id="c1", text="我要投诉抄表员")  # complaint group: closed at 23:00
            card = await ws.until(lambda f: f["type"] == "message" and f["message"]["type"] == "card")
            assert card["message"]["payload"]["card"] == {"kind": "leave_message", "reason": "after_hours",
                                                          "skill_group_id": 4}
            await ws.send(type="leave_message", phone="123", content="抄表员态度差", reason="after_hours",
                          skill_group_id=4)
            assert (await ws.until("error"))["code"] == "invalid_phone"
            await ws.send(type="leave_message", name="赵敏", phone="13812345678", content="抄表员态度差",
                          reason="after_hours", skill_group_id=4)
            left = await ws.until(lambda f: f["type"] == "message" and (f["message"]["payload"] or {}).get(
                "event") == "message_left")
            assert left["message"]["sender"] == "system"
    assert (await reload_conversation(cid)).state == "bot"
    async with db.sessionmaker()() as s:
        (stored,) = list(await s.scalars(select(LeftMessage)))
    assert (stored.phone, stored.content, stored.reason, stored.skill_group_id, stored.conversation_id) == (
        "13812345678", "抄表员态度差", "after_hours", 4, cid)


async def test_visitor_cannot_attach_to_someone_elses_conversation(app) -> None:
    async with served(app) as host:
        owner = await new_visitor(host)
        thief = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            cid = (await _hello(ws, owner["token"]))["conversation"]["id"]
            await ws.send(type="message", client_msg_id="p1", text="我家住幸福里17号楼1502")
            await ws.until("ack")
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=thief["token"], conversation_id=cid, after_seq=0)
            error = await ws.until("error")
            assert error["code"] == "conversation_not_found"
            for frame in ({"type": "resume", "after_seq": 0}, {"type": "history", "conversation_id": cid},
                          {"type": "message", "client_msg_id": "t1", "text": "hi"}):
                await ws.send(**frame)
                assert (await ws.until("error"))["code"] in ("no_conversation", "conversation_not_found")
            # with its own conversation, asking for the other's transcript is still refused
            await ws.send(type="new_conversation")
            mine = await ws.until("welcome")
            assert mine["conversation"]["id"] != cid
            await ws.send(type="history", conversation_id=cid)
            assert (await ws.until("error"))["code"] == "conversation_not_found"
            await ws.send(type="history")
            assert (await ws.until("history"))["conversations"] == []
            leaked = [f for f in ws.frames if "幸福里" in str(f)]
            assert leaked == []
    assert await _count(Message, conversation_id=cid, sender_type="resident") == 1


async def test_identify_links_the_customer_and_history_spans_visitors(app, session, factory) -> None:
    customer = await factory.customer(name="孙立红", phones=["13700001111"], account_no="2188001122")
    async with served(app) as host:
        first_device = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            earlier = (await _hello(ws, first_device["token"]))["conversation"]["id"]
            await ws.send(type="identify", account_no="2188001122", phone_last4="1111")
            assert (await ws.until("identified"))["name"] == "孙**"
            await ws.send(type="message", client_msg_id="h1", text="燃气表不走字")
            await ws.until("ack")
            await ws.send(type="close")
            await ws.until(lambda f: f["type"] == "state" and f["state"] == "closed")
        assert (await reload_conversation(earlier)).customer_id == customer.id

        second_device = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            current = (await _hello(ws, second_device["token"]))["conversation"]["id"]
            await ws.send(type="history")
            assert (await ws.until("history"))["conversations"] == [], "unknown until identified"
            await ws.send(type="identify", account_no="2188001122", phone_last4="9999")
            failed = await ws.until("error")
            assert failed["code"] == "identify_failed" and "不匹配" in failed["message"]
            assert (await reload_conversation(current)).customer_id is None
            await ws.send(type="identify", account_no="2100000000", phone_last4="1111")
            assert (await ws.until("error"))["code"] == "identify_failed", "same answer for an unknown 户号"
            await ws.send(type="identify", account_no="21 8800-1122", phone_last4="1111")
            await ws.until("identified")
            await ws.send(type="history")
            items = (await ws.until("history"))["conversations"]
            assert [i["id"] for i in items] == [earlier]
            assert items[0]["preview"] == "燃气表不走字" and items[0]["state"] == "closed"
            await ws.send(type="history", conversation_id=earlier)
            transcript = await ws.until("history_transcript")
            assert "燃气表不走字" in [m["text"] for m in transcript["messages"]]
    assert (await reload_conversation(current)).customer_id == customer.id
