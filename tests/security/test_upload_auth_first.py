"""Uploads are authenticated and authorised before the body is accepted.

Each attack runs against a real uvicorn server on 127.0.0.1 (inside the test's event loop) with raw
sockets, so the client can announce 800 MB and keep sending. An ASGI wrapper counts the body bytes the
application actually consumed: a refused upload must be answered quickly having consumed none of it,
and nothing may appear in the upload directory or the temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gasdesk.channels.webchat.identity import issue_visitor_token
from gasdesk.config import get_settings
from gasdesk.conversations.attachments import MAX_UPLOAD, Attachment
from gasdesk.db import commit
from tests.factories import (
    WO_PNG,
    bot_conversation,
    desk_agent,
    queued_conversation,
    served,
    staff_user,
    wo_headers,
    wo_ticket,
)

MB = 1024 * 1024
BOUNDARY = "gasdeskboundary"
ANNOUNCED = 800 * MB  # above every cap: refused by the body cap before anything else looks at it
UNDER_CAP = 4 * MB + 512 * 1024  # under every upload cap: only authentication can refuse it unread


class BodyCounter:
    """ASGI wrapper: how many request-body bytes the application read, per path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.consumed: dict[str, int] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.consumed.setdefault(path, 0)

        async def counting_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                self.consumed[path] += len(message.get("body", b""))
            return message

        await self.app(scope, counting_receive, send)


@asynccontextmanager
async def live(app: Any) -> AsyncIterator[tuple[str, BodyCounter]]:
    counter = BodyCounter(app)
    async with served(counter) as host:
        yield host, counter


async def raw_upload(host: str, target: str, headers: dict[str, str], *, declared: int | None = ANNOUNCED,
                     send_mb: int = 4, chunked: bool = False) -> tuple[int, float, bytes]:
    """POST a multipart body that claims ``declared`` bytes (or is chunked) and keep sending up to ``send_mb`` MB
    while watching for the reply. Returns (status, seconds until the status line, response head)."""
    hostname, port = host.split(":")
    reader, writer = await asyncio.open_connection(hostname, int(port))
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}")
    started = time.monotonic()
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    preamble = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode() + WO_PNG
    chunk = b"\0" * (64 * 1024)
    pieces = [preamble] + [chunk] * (send_mb * 16)
    head = b""
    read = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    try:
        for piece in pieces:
            if read.done():
                break
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await asyncio.wait([asyncio.ensure_future(writer.drain()), read], return_when=asyncio.FIRST_COMPLETED)
        head = await asyncio.wait_for(read, 10)
    except (ConnectionError, asyncio.IncompleteReadError):
        if not read.done():
            head = await asyncio.wait_for(read, 10)
    elapsed = time.monotonic() - started
    writer.close()
    status = int(head.split(b" ", 2)[1])
    return status, elapsed, head


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary directory (where a form parser would spool large parts)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


async def test_bogus_visitor_token_gets_401_before_the_body_is_read(app, session, spool) -> None:
    visitor_id, _ = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    async with live(app) as (host, counter):
        status, elapsed, head = await raw_upload(
            host, f"/api/v1/webchat/uploads?conversation_id={conversation.id}", {"X-Visitor-Token": "forged.token"},
            declared=UNDER_CAP)
        status_none, _, _ = await raw_upload(host, f"/api/v1/webchat/uploads?conversation_id={conversation.id}", {},
                                             declared=UNDER_CAP)
        status_huge, elapsed_huge, _ = await raw_upload(
            host, f"/api/v1/webchat/uploads?conversation_id={conversation.id}", {"X-Visitor-Token": "forged.token"})
    assert status == 401 and status_none == 401, head
    assert status_huge == 413 and elapsed_huge < 3, "800 MB announced: refused at once by the body cap"
    assert elapsed < 3, f"the refusal took {elapsed:.1f}s"
    assert counter.consumed["/api/v1/webchat/uploads"] == 0
    assert _files_under(Path(get_settings().upload_dir)) == [] and list(spool.iterdir()) == []
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_valid_token_for_someone_elses_conversation_is_refused_before_the_body(app, session, spool) -> None:
    owner, _ = issue_visitor_token()
    _, intruder_token = issue_visitor_token()  # anyone can mint a visitor token: it proves nothing
    conversation = await bot_conversation(session, visitor_id=owner)
    async with live(app) as (host, counter):
        status, elapsed, _ = await raw_upload(
            host, f"/api/v1/webchat/uploads?conversation_id={conversation.id}", {"X-Visitor-Token": intruder_token},
            declared=UNDER_CAP)
    assert status == 404 and elapsed < 3
    assert counter.consumed["/api/v1/webchat/uploads"] == 0
    assert _files_under(Path(get_settings().upload_dir)) == [] and list(spool.iterdir()) == []


async def test_declared_length_above_the_cap_is_refused_unread(app, session, spool) -> None:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    async with live(app) as (host, counter):
        status, elapsed, _ = await raw_upload(
            host, f"/api/v1/webchat/uploads?conversation_id={conversation.id}", {"X-Visitor-Token": token})
    assert status == 413 and elapsed < 3
    assert counter.consumed["/api/v1/webchat/uploads"] == 0
    assert _files_under(Path(get_settings().upload_dir)) == []


async def test_chunked_body_is_cut_off_at_the_cap(app, session, spool) -> None:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    async with live(app) as (host, counter):
        status, elapsed, _ = await raw_upload(
            host, f"/api/v1/webchat/uploads?conversation_id={conversation.id}", {"X-Visitor-Token": token},
            chunked=True, send_mb=40)
    assert status == 413 and elapsed < 10
    # stopped right after the cap (multipart framing + the largest file), not after 40 MB
    assert MAX_UPLOAD < counter.consumed["/api/v1/webchat/uploads"] <= MAX_UPLOAD + 64 * 1024 + 70 * 1024
    assert _files_under(Path(get_settings().upload_dir)) == [] and list(spool.iterdir()) == []
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_staff_uploads_check_the_caller_and_the_ticket_first(app, session, factory, spool) -> None:
    crew, other_crew = await staff_user(session, "field_crew"), await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=crew.id)
    other_headers = await wo_headers(factory, other_crew)
    own_headers = await wo_headers(factory, crew)
    editor = await factory.headers("admin")
    supervisor = await factory.headers("supervisor")
    async with live(app) as (host, counter):
        cases = [
            (f"/api/v1/tickets/{ticket.id}/photos", {}, 401),
            (f"/api/v1/tickets/{ticket.id}/photos", {"Authorization": "Bearer forged"}, 401),
            (f"/api/v1/tickets/{ticket.id}/photos", other_headers, 403),  # not this crew's ticket
            (f"/api/v1/tickets/{ticket.id}/photos", own_headers, 413),  # allowed, but 800 MB is over the cap
            (f"/crew/tickets/{ticket.id}/writeback", {}, 401),
            (f"/crew/tickets/{ticket.id}/writeback", other_headers, 403),
            ("/api/v1/kb/import", {}, 401),
            ("/admin/kb/import", {}, 401),
            ("/api/v1/kb/import", editor, 413),
            ("/api/v1/ivr/prompts/main.prompt", {}, 401),
            ("/api/v1/ivr/prompts/main.prompt", supervisor, 403),  # recorded prompts: admins only
            ("/api/v1/ivr/prompts/nowhere.prompt", editor, 404),  # a key no script uses, found before the body
            ("/api/v1/ivr/prompts/main.prompt", editor, 413),
            ("/admin/ivr/prompts/main.prompt", {}, 401),
        ]
        for target, headers, expected in cases:
            status, elapsed, head = await raw_upload(host, target, headers,
                                                     declared=ANNOUNCED if expected == 413 else UNDER_CAP)
            assert (status, target) == (expected, target), head
            assert elapsed < 3, (target, elapsed)
    assert all(consumed == 0 for consumed in counter.consumed.values()), counter.consumed
    assert _files_under(Path(get_settings().upload_dir)) == [] and list(spool.iterdir()) == []


async def test_video_assist_uploads_check_the_sessions_agent_and_consent_first(app, session, factory, spool) -> None:
    from gasdesk.video import service as video

    agent = await desk_agent(factory)
    colleague = await desk_agent(factory, presence="offline")
    conversation = await queued_conversation(session)
    conversation = await video.access_conversation_to_invite(session, agent, conversation.id)
    invited = await video.do_invite(session, agent, conversation)
    await commit(session)
    agent_headers = {"Authorization": f"Bearer {await factory.token(agent)}"}
    other_headers = {"Authorization": f"Bearer {await factory.token(colleague)}"}
    async with live(app) as (host, counter):
        cases = [
            (f"/api/v1/video/{invited.id}/snapshots", {}, 401),
            (f"/api/v1/video/{invited.id}/snapshots", other_headers, 404),  # not this agent's session
            (f"/api/v1/video/{invited.id}/snapshots", agent_headers, 409),  # not accepted yet
            (f"/api/v1/video/{invited.id}/recordings", agent_headers, 403),  # no recording consent
        ]
        for target, headers, expected in cases:
            status, elapsed, head = await raw_upload(host, target, headers, declared=UNDER_CAP)
            assert (status, target) == (expected, target), head
            assert elapsed < 3, (target, elapsed)
        await video.do_answer_invite(session, invited, accept=True)
        await commit(session)
        status, _, head = await raw_upload(host, f"/api/v1/video/{invited.id}/snapshots", agent_headers)
        assert status == 413, head  # allowed now, but 800 MB is over the 5 MB cap
    assert all(consumed == 0 for consumed in counter.consumed.values()), counter.consumed
    assert _files_under(Path(get_settings().upload_dir)) == [] and list(spool.iterdir()) == []
