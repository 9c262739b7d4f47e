"""Uploaded files are encrypted on disk, readable only through the download, bound to their token, and
removed again when the request that wrote them fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select

from gasdesk.channels.webchat.identity import issue_visitor_token
from gasdesk.config import get_settings
from gasdesk.conversations.attachments import Attachment, read_sealed_file
from gasdesk.security.crypto import decrypt_bytes, encrypt_bytes
from tests.factories import WO_PNG, bot_conversation, login, staff_user, wo_headers, wo_ticket

PHONE = "13912345678"
# A photo of a bill or a text file: the resident's number inside the bytes.
PHOTO = WO_PNG + f"tEXt户主电话{PHONE}".encode()
NOTE = f"我的电话是{PHONE}，住3号楼2单元501".encode()


def stored_files() -> list[Path]:
    root = Path(get_settings().upload_dir)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_chat_uploads_are_encrypted_on_disk_and_decrypted_on_download(client, session) -> None:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    for name, data in (("账单.png", PHOTO), ("说明.txt", NOTE)):
        up = await client.post("/api/v1/webchat/uploads", params={"conversation_id": conversation.id},
                               headers={"X-Visitor-Token": token}, files={"file": (name, data, "application/octet-stream")})
        assert up.status_code == 201, up.text
        down = await client.get(up.json()["url"], headers={"X-Visitor-Token": token})
        assert down.status_code == 200 and down.content == data
        assert down.headers["content-length"] == str(len(data))
    files = stored_files()
    assert len(files) == 2 and all(f.suffix == ".enc" for f in files)
    for f in files:
        raw = f.read_bytes()
        assert PHONE.encode() not in raw and b"\x89PNG" not in raw and "我的电话".encode() not in raw
        assert "账单" not in f.name and "说明" not in f.name  # the original name is only in the (encrypted) row


async def test_ticket_photos_are_encrypted_too(client, session, factory) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=crew.id)
    headers = await wo_headers(factory, crew)
    up = await client.post(f"/api/v1/tickets/{ticket.id}/photos", headers=headers,
                           files={"file": ("现场.png", PHOTO, "image/png")})
    assert up.status_code == 201, up.text
    [f] = stored_files()
    assert PHONE.encode() not in f.read_bytes()
    down = await client.get(up.json()["url"], headers=headers)
    assert down.status_code == 200 and down.content == PHOTO


async def test_a_sealed_file_only_opens_under_its_own_token(client, session) -> None:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    tokens = []
    for data in (PHOTO, WO_PNG):
        up = await client.post("/api/v1/webchat/uploads", params={"conversation_id": conversation.id},
                               headers={"X-Visitor-Token": token}, files={"file": ("a.png", data, "image/png")})
        tokens.append(up.json()["file_token"])
    rows = {a.token: a for a in await session.scalars(select(Attachment))}
    first, second = Path(rows[tokens[0]].path), Path(rows[tokens[1]].path)
    # swapping files on disk does not serve one resident's photo under another attachment
    shutil.copyfile(first, second)
    with pytest.raises(InvalidTag):
        read_sealed_file(second)
    with pytest.raises(InvalidTag):
        decrypt_bytes(encrypt_bytes(b"x", aad=b"one"), aad=b"two")
    sealed = encrypt_bytes(PHOTO, aad=b"t")
    assert encrypt_bytes(PHOTO, aad=b"t") != sealed, "a fresh nonce every time"


async def test_photos_of_a_failed_writeback_are_not_left_on_disk(client, session) -> None:
    crew = await staff_user(session, "field_crew", username="crew_rollback")
    ticket = await wo_ticket(session, "repair", status="in_progress", crew_id=crew.id)
    assert (await login(client, "crew_rollback")).status_code == 303
    # the photo is stored first, then the material quantity fails validation and the request rolls back
    response = await client.post(
        f"/crew/tickets/{ticket.id}/writeback",
        data={"result": "已更换阀门", "material_name": ["阀门"], "material_qty": ["两个"]},
        files={"photos": ("现场.png", PHOTO, "image/png")})
    assert response.status_code == 422 and "数量须为" in response.text
    assert stored_files() == []
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
    # and a good write-back keeps its photo
    response = await client.post(
        f"/crew/tickets/{ticket.id}/writeback", data={"result": "已更换阀门", "material_name": ["阀门"],
                                                     "material_qty": ["2"]},
        files={"photos": ("现场.png", PHOTO, "image/png")})
    assert response.status_code == 303, response.text
    [f] = stored_files()
    assert read_sealed_file(f) == PHOTO
