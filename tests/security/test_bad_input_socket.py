"""Finding 8 on the chat sockets, frame by frame: each used to end in ``internal_error`` (or a dropped socket);
each is now an ``error`` frame with a code, and the socket carries on."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from gasdesk.fields import MAX_DB_INT
from tests.factories import ChatSocket, desk_agent, new_visitor, queued_conversation, served

BAD_RESIDENT_FRAMES = [
    ({"type": "message", "client_msg_id": "m-1", "text": 5}, "text"),
    ({"type": "message", "client_msg_id": "m-2", "text": ["燃气"]}, "text"),
    ({"type": "message", "client_msg_id": "m-3", "text": {"a": 1}}, "text"),
    ({"type": "message", "client_msg_id": "m-4", "text": "燃气", "payload": [1]}, "payload"),
    ({"type": "message", "client_msg_id": 7, "text": "燃气"}, "client_msg_id"),
    ({"type": "resume", "after_seq": 2**64}, "after_seq"),
    ({"type": "hello", "conversation_id": MAX_DB_INT + 1}, "conversation_id"),
    ({"type": "history", "conversation_id": 10**30}, "conversation_id"),
    ({"type": "leave_message", "phone": "13800001234", "content": "x", "skill_group_id": 2**63}, "skill_group_id"),
    ({"type": "followup_answer", "followup_id": -1, "score": 5}, "followup_id"),
    ({"type": "message", "client_msg_id": "m-5", "text": "a\x00b"}, "无法保存"),
    ({"type": "identify", "account_no": {"$ne": ""}, "phone_last4": "1234"}, "account_no"),
]
BAD_RAW_FRAMES = ['{"type": "message", "client_msg_id": "m-6", "text": NaN}', '{"type": "message", "text": 1e999}',
                  '{"type": "message", "client_msg_id": "m-7", "text": "\\ud800"}', "[" * 5000, "[1, 2]"]


async def test_resident_bad_frames_get_error_frames_and_the_socket_carries_on(app) -> None:
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            await ws.until("welcome")
            for frame, named in BAD_RESIDENT_FRAMES:
                await ws.send(**frame)
                error = await ws.until("error")
                assert error["code"] == "invalid_frame" and named in error["message"], (frame, error)
            for raw in BAD_RAW_FRAMES:
                await ws.ws.send(raw)
                assert (await ws.until("error"))["code"] == "invalid_frame", raw
            await ws.ws.send(b'{"type": "ping"}')  # binary frames used to raise KeyError and drop the socket
            assert (await ws.until(lambda f: f["type"] in ("pong", "error")))["type"] == "pong"
            await ws.send(type="message", client_msg_id="m-ok", text="燃气表不走字了")
            assert (await ws.until("ack"))["client_msg_id"] == "m-ok"


@pytest.mark.parametrize("first", [
    json.dumps({"type": "hello", "token": "x\ud800"}), json.dumps({"type": "hello", "token": ["x"]}),
    json.dumps({"type": "hello", "token": {"v": "x"}}), "[" * 5000, '{"type": "hello", "token": NaN}',
])
async def test_a_bad_first_frame_closes_with_a_code(app, first: str) -> None:
    async with served(app) as host, ChatSocket.connect(host) as ws:
        await ws.ws.send(first)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (4400, 4401)


async def test_staff_bad_frames_get_error_frames_and_the_socket_carries_on(app, session, factory) -> None:
    agent = await desk_agent(factory)
    conversation = await queued_conversation(session)
    headers = {"Authorization": f"Bearer {await factory.token(agent)}"}
    async with served(app) as host, ChatSocket.connect(host, "/ws/agent", additional_headers=headers) as ws:
        await ws.until("hello")
        for frame, named in [
            ({"type": "message", "conversation_id": conversation.id, "client_msg_id": "a-1", "text": 5}, "text"),
            ({"type": "message", "conversation_id": 2**63, "text": "您好"}, "conversation_id"),
            ({"type": "read", "conversation_id": conversation.id, "seq": MAX_DB_INT + 1}, "seq"),
            ({"type": "watch", "conversation_id": "x"}, "conversation_id"),
            ({"type": "typing"}, "conversation_id"),
        ]:
            await ws.send(**frame)
            error = await ws.until("error")
            assert error["code"] == "invalid_frame" and named in error["message"], (frame, error)
        await ws.ws.send('{"type": "read", "conversation_id": 1, "seq": Infinity}')
        assert (await ws.until("error"))["code"] == "invalid_frame"
        await ws.send(type="message", conversation_id=conversation.id, client_msg_id="a-ok", text="您好，请讲")
        assert (await ws.until("ack"))["client_msg_id"] == "a-ok"
