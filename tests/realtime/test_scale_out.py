"""Scale-out: two app processes share the database and carry events over Redis.
A resident connected to process A and an agent connected to process B talk live."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from gasdesk.db import commit
from gasdesk.routing.service import do_set_skills
from tests.factories import login
from tests.realtime.conftest import free_port


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60  # a loaded CI machine may take a while to import and migrate
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited: " + log.read_text())
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("did not start: " + log.read_text())


@pytest.fixture
def two_servers(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    procs, bases = [], []
    for name in ("a", "b"):
        port = free_port()
        log = tmp_path / f"server-{name}.log"
        env = {**os.environ, "GASDESK_DATABASE_URL": database_url, "GASDESK_REDIS_URL": redis_url,
               "GASDESK_ENV": "test", "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads")}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "gasdesk.web.app:create_app", "--factory",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/readyz", proc, log)
        bases.append(base)
    yield bases[0], bases[1]
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)


async def _next(ws, kind: str, timeout: float = 10.0, **match) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - asyncio.get_running_loop().time()))
        if frame.get("type") == kind and all(
            (frame.get(k) if k in frame else frame.get("message", {}).get(k)) == v for k, v in match.items()
        ):
            return frame


async def test_resident_on_a_and_agent_on_b_talk_through_redis(two_servers, factory, session) -> None:
    base_a, base_b = two_servers
    agent = await factory.user("agent", username="agentredis")
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await commit(session)

    async with httpx.AsyncClient(base_url=base_b) as staff:
        assert (await login(staff, agent.username)).status_code == 303  # also picks up the CSRF token
        cookie = staff.cookies.get("gasdesk_session")
        assert (await staff.put("/api/v1/agent/presence", json={"presence": "online"})).status_code == 200
    async with httpx.AsyncClient(base_url=base_a) as public:
        token = (await public.post("/api/v1/webchat/visitors")).json()["token"]

    ws_b = base_b.replace("http", "ws")
    ws_a = base_a.replace("http", "ws")
    async with websockets.connect(ws_b + "/ws/agent", additional_headers={"Cookie": f"gasdesk_session={cookie}"}) as ag, \
            websockets.connect(ws_a + "/ws/webchat") as resident:
        await _next(ag, "hello")
        await resident.send(json.dumps({"type": "hello", "token": token}))
        welcome = await _next(resident, "welcome")
        conversation_id = welcome["conversation"]["id"]

        await resident.send(json.dumps({"type": "handoff"}))
        assigned = await _next(ag, "assigned")  # made on A, pushed by B
        assert assigned["conversation_id"] == conversation_id

        await ag.send(json.dumps({"type": "message", "conversation_id": conversation_id, "client_msg_id": "b1",
                                  "text": "您好，我是客服"}))
        got = await _next(resident, "message", sender="agent")
        assert got["message"]["text"] == "您好，我是客服"

        await resident.send(json.dumps({"type": "message", "client_msg_id": "a1", "text": "我家暖气不热"}))
        got = await _next(ag, "message", sender="resident", text="我家暖气不热")
        assert got["message"]["conversation_id"] == conversation_id
