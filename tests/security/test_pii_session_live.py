"""Acceptance: a realistic session against ``gasdesk serve`` leaves no resident identifier readable in the
database file, the upload directory or the server log.

The server is the real command (uvicorn, INFO logging, the background worker, the NLU bot) in a
subprocess on 127.0.0.1, over this test's database, with its upload and temporary directories in
tmp. A resident chats with their phone, 户号, ID number and address in the text, asks what the
knowledge base cannot answer, reports a gas leak, leaves a message and uploads files containing their
phone number; staff look them up (also the old way, with the phone in a URL), open a ticket with the
phone in its title and check progress. Then the raw bytes are searched.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gasdesk.conversations.attachments import Attachment
from gasdesk.kb.models import KbMiss
from gasdesk.notifications.models import Notification
from gasdesk.tickets.models import Ticket
from tests.conftest import PG_URL
from tests.factories import WO_PNG, ChatSocket, make_id_card, raw_table_dump, staff_user, wo_headers
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
NAME = "欧阳秀英"
PHONE = "13987654321"
ACCOUNT = "2188776655"
ID_CARD = make_id_card(654, birth="19680921")
BUILDING, UNIT, ROOM = "17号楼", "4单元", "1502室"
HOME = f"{BUILDING}{UNIT}{ROOM}"


def secret_forms() -> list[str]:
    spaced = f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}"
    forms = [PHONE, spaced, spaced.replace(" ", "-"), f"+86{PHONE}", ACCOUNT, ID_CARD, ID_CARD.lower(),
             f"{ID_CARD[:6]} {ID_CARD[6:14]} {ID_CARD[14:]}", NAME, HOME, ROOM, f"{BUILDING}{UNIT}"]
    # JSON columns and logs may escape non-ASCII text
    return forms + [json.dumps(f)[1:-1] for f in forms if not f.isascii()]


class Server:
    def __init__(self, tmp: Path, database_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = tmp / "server.log"
        self.uploads = tmp / "uploads"
        self.spool = tmp / "spool"
        self.spool.mkdir()
        env = {**os.environ, "GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test",
               "GASDESK_UPLOAD_DIR": str(self.uploads), "GASDESK_SQLITE_POOL_SIZE": "1", "GASDESK_BOT_ENGINE": "nlu",
               "TMPDIR": str(self.spool)}
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from gasdesk.cli import app; app()", "serve", "--host", "127.0.0.1",
             "--port", str(self.port)], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start: " + self.log_path.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # graceful: lifespan shutdown, engine disposed
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    live = Server(tmp_path, database_url)
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


async def _until(ws: ChatSocket, predicate, timeout: float = 30) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        frame = await ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if predicate(frame):
            return frame


async def _say(ws: ChatSocket, words: str) -> None:
    """Send a text and wait for the bot's reply to it (a message after our own; it may beat the ack)."""
    cid = str(uuid.uuid4())
    seen = len(ws.frames)
    await ws.send(type="message", client_msg_id=cid, text=words)

    def replied() -> bool:
        acks = [f for f in ws.frames[seen:] if f.get("type") == "ack" and f.get("client_msg_id") == cid]
        return bool(acks) and any(f.get("type") == "message" and f["message"]["seq"] > acks[0]["seq"]
                                  and f["message"]["sender"] != "resident" for f in ws.frames[seen:])

    deadline = time.monotonic() + 30
    while not replied():
        await ws.recv(timeout=max(0.1, deadline - time.monotonic()))



async def test_a_realistic_session_leaves_no_readable_personal_data(server: Server, session, factory,
                                                                    database_url: str) -> None:
    admin = await staff_user(session, "admin")
    agent = await staff_user(session, "agent")
    dispatcher = await staff_user(session, "dispatcher")
    admin_h, agent_h, dispatcher_h = [await wo_headers(factory, u) for u in (admin, agent, dispatcher)]
    said = (f"你好，我叫{NAME}，电话 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}，户号{ACCOUNT}，"
            f"身份证号{ID_CARD}，住和平区幸福里小区{HOME}")

    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        # the utility's records
        created = await http.post("/api/v1/customers", headers=admin_h, json={
            "name": NAME, "phones": [PHONE], "id_card": ID_CARD, "address": {
                "district": "和平区", "community": "幸福里小区", "building": BUILDING, "unit": UNIT, "room": ROOM}})
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        account = await http.post(f"/api/v1/customers/{customer_id}/accounts", headers=admin_h,
                                  json={"account_no": ACCOUNT, "meter_serial": "M7"})
        assert account.status_code == 201, account.text

        # the resident chats, asks the unanswerable, reports a leak, leaves a message, uploads files
        visitor = (await http.post("/api/v1/webchat/visitors")).json()
        async with ChatSocket.connect(server.host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            conversation_id = (await _until(ws, lambda f: f.get("type") == "welcome"))["conversation"]["id"]
            # a question the knowledge base cannot answer (→ a KB miss), then the introduction
            await _say(ws, f"户号{ACCOUNT}的身份证{ID_CARD}能不能绑定到手机{PHONE}上，开发票抬头写{NAME}？")
            await _say(ws, said)
            await _say(ws, f"家里燃气泄漏了，好大的煤气味！我是{NAME}，电话{PHONE}，地址幸福里小区{HOME}")
            files = [("户主信息.txt", f"户主{NAME} 电话{PHONE} 身份证{ID_CARD}".encode()),
                     ("燃气表.png", WO_PNG + f"tEXt{PHONE}".encode())]
            for name, data in files:
                up = await http.post("/api/v1/webchat/uploads", params={"conversation_id": conversation_id},
                                     headers={"X-Visitor-Token": visitor["token"]}, files={"file": (name, data)})
                assert up.status_code == 201, up.text
                payload = up.json()
                await ws.send(type="message", client_msg_id=str(uuid.uuid4()), payload={"file_token": payload["file_token"]},
                              content_type="image" if name.endswith(".png") else "file", text=name)
                await _until(ws, lambda f: f.get("type") == "ack")
                # the widget downloads with the visitor token in the query string
                down = await http.get(payload["url"], params={"v": visitor["token"]})
                assert down.status_code == 200 and down.content == data
            await ws.send(type="leave_message", name=NAME, phone=PHONE, content=said)
            left = await _until(ws, lambda f: f.get("type") == "error" or (
                f.get("type") == "message" and (f["message"].get("payload") or {}).get("event") == "message_left"))
            assert left["type"] == "message", left

        # staff look the resident up: by POST, and the old way with the phone in a URL
        found = await http.post("/api/v1/customers/search", headers=agent_h, json={"phone": PHONE})
        assert [c["id"] for c in found.json()] == [customer_id]
        assert (await http.get(f"/api/v1/customers?phone={PHONE}", headers=agent_h)).status_code == 405
        assert (await http.get(f"/api/v1/kb/search?q={PHONE}+{ACCOUNT}", headers=agent_h)).status_code == 200
        # a phone number in a path: refused at the edge as an id out of range (422); the access log keeps
        # the route template only, and the error reply is not logged with the value
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as once:
            assert (await once.get(f"/api/v1/customers/{PHONE}", headers=agent_h)).status_code == 422
        assert (await http.get(f"/lookup/{PHONE}/{ACCOUNT}", headers=agent_h)).status_code == 404
        assert (await http.post("/api/v1/progress", headers=agent_h, json={"account_no": ACCOUNT})).status_code == 200
        ticket = await http.post("/api/v1/tickets", headers=dispatcher_h, json={
            "type": "repair", "title": f"{NAME} {PHONE} 燃气表不走字", "description": said, "customer_id": customer_id,
            "contact_name": NAME, "contact_phone": PHONE, "address_text": f"幸福里小区{HOME}"})
        assert ticket.status_code == 201, ticket.text
        await asyncio.sleep(1.0)  # let the worker run what the session queued

    server.stop()
    # the session really produced what the finding is about
    assert await session.scalar(select(func.count()).select_from(KbMiss)) >= 1
    assert await session.scalar(select(func.count()).select_from(Notification)
                                .where(Notification.kind == "emergency.gas_leak")) >= 1
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 2
    assert await session.scalar(select(func.count()).select_from(Ticket)) >= 2

    secrets = secret_forms()
    leaks: dict[str, list[str]] = {}

    def scan(where: str, blob: bytes) -> None:
        found = [s for s in secrets if s.encode() in blob]
        if found:
            leaks[where] = found

    if not PG_URL:
        db_file = Path(database_url.split("///", 1)[1])
        for path in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
            if path.exists():
                scan(path.name, path.read_bytes())
    dump = await raw_table_dump()
    assert "和平区" in dump and "幸福里小区" in dump, "sanity: the scan sees plain columns"
    scan("database rows", dump.encode())
    uploaded = [p for p in server.uploads.rglob("*") if p.is_file()]
    assert len(uploaded) == 2
    for path in uploaded:
        scan(str(path.relative_to(server.uploads)), path.read_bytes())
    # nothing spooled to the temporary directory (jieba keeps its dictionary cache there)
    assert [p.name for p in server.spool.iterdir() if p.name != "jieba.cache"] == []
    log = server.log_path.read_text()
    assert "POST /api/v1/customers/search 200" in log and "GET /api/v1/files/{token} 200" in log, log[-3000:]
    assert "GET /api/v1/customers 405" in log and "/lookup/[手机号]/[户号] 404" in log
    scan("server log", log.encode())
    assert "?" not in "".join(line for line in log.splitlines() if "gasdesk.access" in line)
    assert visitor["token"] not in log
    assert leaks == {}
