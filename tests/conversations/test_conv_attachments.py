"""Attachments: type, size and magic-byte checks; uploads only into one's own conversation; downloads only for
that resident or staff who may read the conversation; file messages only reference the same conversation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gasdesk.channels.webchat.identity import issue_visitor_token
from gasdesk.conversations.attachments import MB, Attachment, check_attachment_payload, check_upload
from gasdesk.errors import InvalidInput, NotFound
from tests.factories import ChatSocket, bot_conversation, desk_agent, queued_conversation, served

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPG = b"\xff\xd8\xff\xe0" + b"\0" * 64
PDF = b"%PDF-1.7\n" + b"\0" * 64


ALLOWED_CASES = [
    ("燃气表.PNG", PNG, "image"), ("a.jpg", JPG, "image"), ("a.jpeg", JPG, "image"), ("a.gif", b"GIF89a...", "image"),
    ("a.webp", b"RIFF....WEBP", "image"), ("账单.pdf", PDF, "file"), ("a.docx", b"PK\x03\x04..", "file"),
    ("a.xlsx", b"PK\x03\x04..", "file"), ("说明.txt", "家里没气".encode(), "file"),
]
REJECTED_CASES = [
    ("virus.exe", b"MZ....", "file_type"), ("noext", PNG, "file_type"), ("a.svg", b"<svg/>", "file_type"),
    ("fake.png", JPG, "file_type"), ("fake.jpg", b"<html>", "file_type"), ("fake.pdf", PNG, "file_type"),
    ("empty.png", b"", "file_empty"), ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * MB), "file_too_large"),
    ("big.txt", b"a" * (MB + 1), "file_too_large"), ("big.pdf", b"%PDF" + b"\0" * (10 * MB), "file_too_large"),
]


def test_allowed_uploads() -> None:
    for name, data, kind in ALLOWED_CASES:
        assert check_upload(name, data).kind == kind, name


def test_rejected_uploads() -> None:
    for name, data, code in REJECTED_CASES:
        with pytest.raises(InvalidInput) as info:
            check_upload(name, data)
        assert info.value.code == code, name
        assert info.value.message and info.value.status_code == 422


def test_size_limits_are_inclusive() -> None:
    assert check_upload("max.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * MB - 8)).kind == "image"


async def _upload(client, token: str | None, conversation_id: int, name: str = "表.png", data: bytes = PNG):
    headers = {"X-Visitor-Token": token} if token else {}
    return await client.post("/api/v1/webchat/uploads", headers=headers, params={"conversation_id": conversation_id},
                             files={"file": (name, data, "application/octet-stream")})


async def test_upload_and_download_with_the_visitor_token(client, session, factory) -> None:
    visitor_id, token = issue_visitor_token()
    other_id, other_token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    response = await _upload(client, token, conversation.id)
    assert response.status_code == 201, response.text
    payload = response.json()
    assert payload["name"] == "表.png" and payload["mime"] == "image/png" and payload["size"] == len(PNG)
    assert payload["url"] == f"/api/v1/files/{payload['file_token']}"

    mine = await client.get(payload["url"], params={"v": token})
    assert mine.status_code == 200 and mine.content == PNG
    assert (await client.get(payload["url"], params={"v": other_token})).status_code in (401, 404)
    assert (await client.get(payload["url"], headers={"X-Visitor-Token": other_token})).status_code in (401, 404)
    # staff: only whoever may read the conversation (nobody is assigned to this bot conversation)
    agent = await desk_agent(factory)
    staff = {"Authorization": f"Bearer {await factory.token(agent)}"}
    assert (await client.get(payload["url"], headers=staff)).status_code == 404
    supervisor = await factory.headers("supervisor")
    assert (await client.get(payload["url"], headers=supervisor)).status_code == 200
    assert (await client.get("/api/v1/files/not-a-token", params={"v": token})).status_code == 404
    assert other_id != visitor_id


async def test_upload_into_someone_elses_conversation_is_not_found(client, session) -> None:
    owner, _ = issue_visitor_token()
    _, thief_token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=owner)
    response = await _upload(client, thief_token, conversation.id)
    assert response.status_code == 404 and response.json()["error"]["code"] == "conversation_not_found"
    assert (await _upload(client, None, conversation.id)).status_code == 401
    assert (await _upload(client, "forged", conversation.id)).status_code == 401
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_upload_checks_type_over_http(client, session) -> None:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    response = await _upload(client, token, conversation.id, name="fake.png", data=b"<script>")
    assert response.status_code == 422 and response.json()["error"]["code"] == "file_type"


async def test_file_message_must_reference_an_upload_of_the_same_conversation(client, session, factory) -> None:
    visitor_id, token = issue_visitor_token()
    mine = await bot_conversation(session, visitor_id=visitor_id)
    other = await bot_conversation(session, visitor_id=visitor_id)
    uploaded = (await _upload(client, token, other.id)).json()
    with pytest.raises(NotFound) as info:
        await check_attachment_payload(session, mine, {"file_token": uploaded["file_token"]})
    assert info.value.code == "attachment_not_found"
    with pytest.raises(NotFound):
        await check_attachment_payload(session, mine, None)
    assert (await check_attachment_payload(session, other, {"file_token": uploaded["file_token"]}))["name"] == "表.png"


async def test_image_message_over_the_socket(app, session, factory) -> None:
    await desk_agent(factory)
    async with served(app) as host:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://{host}") as http:
            visitor = (await http.post("/api/v1/webchat/visitors")).json()
            thief = (await http.post("/api/v1/webchat/visitors")).json()
            async with ChatSocket.connect(host) as ws:
                await ws.send(type="hello", token=visitor["token"])
                cid = (await ws.until("welcome"))["conversation"]["id"]
                up = await http.post("/api/v1/webchat/uploads", headers={"X-Visitor-Token": visitor["token"]},
                                     params={"conversation_id": cid}, files={"file": ("漏点.jpg", JPG, "image/jpeg")})
                token = up.json()["file_token"]
                await ws.send(type="message", client_msg_id="img-1", content_type="image", payload={"file_token": token})
                ack = await ws.until("ack")
                image = next(f["message"] for f in ws.frames if f["type"] == "message" and f["message"]["seq"] == ack["seq"])
                assert image["type"] == "image" and image["payload"]["file_token"] == token
                assert image["payload"]["name"] == "漏点.jpg"
            async with ChatSocket.connect(host) as ws:
                await ws.send(type="hello", token=thief["token"])
                await ws.until("welcome")
                await ws.send(type="message", client_msg_id="img-2", content_type="image", payload={"file_token": token})
                error = await ws.until("error")
                assert error["code"] == "attachment_not_found" and error["client_msg_id"] == "img-2"
    assert queued_conversation is not None
