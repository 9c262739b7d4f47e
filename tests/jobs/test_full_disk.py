"""A full disk under the upload directory: a ticket photo or a chat attachment is refused with a clear 507 in
Chinese, and neither a row nor a file (whole or half-written) is left behind.

The disk is a real 64 KiB tmpfs when the tests run as root (they do in CI); elsewhere the write is made to fail
half-way with ENOSPC, as a full disk does."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gasdesk.channels.webchat.identity import issue_visitor_token
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.attachments import Attachment
from gasdesk.db import commit
from tests.factories import bot_conversation, staff_user, wo_headers, wo_ticket

SMALL = b"\xff\xd8\xff\xe0" + b"\0" * 1024
BIG = b"\xff\xd8\xff\xe0" + os.urandom(100 * 1024)  # more than the disk holds


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = tmp_path / "small-disk"
    target.mkdir()
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(target)],
            capture_output=True,
            timeout=10,
        ).returncode
        == 0
    )
    if not mounted:
        real = Path.write_bytes

        def half_then_full(self: Path, data: bytes) -> int:
            if len(data) > 64 * 1024:
                real(self, data[: 32 * 1024])
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real(self, data)

        monkeypatch.setattr(Path, "write_bytes", half_then_full)
    monkeypatch.setenv("GASDESK_UPLOAD_DIR", str(target))
    reset_settings_cache()
    try:
        yield target
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=10)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _refused(response) -> None:
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "storage_full" and "存储空间不足" in error["message"]


async def test_a_ticket_photo_on_a_full_disk_is_refused_and_leaves_nothing(
    client, session, factory, small_disk: Path
) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=crew.id)
    headers = await wo_headers(factory, crew)
    url = f"/api/v1/tickets/{ticket.id}/photos"
    ok = await client.post(url, headers=headers, files={"file": ("小图.jpg", SMALL, "image/jpeg")})
    assert ok.status_code == 201, ok.text  # the disk works: only space is missing
    kept = _files(small_disk)
    assert len(kept) == 1 and kept[0].endswith(".enc")

    _refused(await client.post(url, headers=headers, files={"file": ("现场.jpg", BIG, "image/jpeg")}))
    assert _files(small_disk) == kept, "no half-written file"
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 1, "no row for it"


async def test_a_chat_attachment_on_a_full_disk_is_refused_and_leaves_nothing(
    client, session, small_disk: Path
) -> None:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    await commit(session)
    response = await client.post(
        "/api/v1/webchat/uploads",
        headers={"X-Visitor-Token": token},
        params={"conversation_id": conversation.id},
        files={"file": ("燃气表.jpg", BIG, "application/octet-stream")},
    )
    _refused(response)
    assert _files(small_disk) == []
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
