"""Issue 15, part 4: the cluster survives its parts failing. Two ``gasdesk serve`` processes behind nginx on
PostgreSQL + Redis (tests/cluster/conftest.py); each test breaks one part and checks what residents and agents
see: a process killed with SIGKILL mid-conversation, Redis restarted, PostgreSQL restarted.

The resident below behaves as the chat client does (docs/chat-protocol.md): it keeps its unacknowledged
messages and sends them again, with the same ``client_msg_id``, after reconnecting through nginx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets

from gasdesk.realtime.protocol import RETRY_LATER_CODES
from tests.cluster.conftest import AGENT_PASSWORD, Cluster

pytestmark = pytest.mark.cluster


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://")


@dataclass
class Resident:
    """A web-chat resident through nginx: sends numbered messages, resends unacknowledged ones after reconnecting."""

    base: str  # nginx
    token: str = ""
    conversation_id: int | None = None
    ws: Any = None
    upstream: str = ""  # host:port of the process that holds the socket
    acked: dict[str, int] = field(default_factory=dict)  # client_msg_id -> seq
    unacked: dict[str, str] = field(default_factory=dict)  # client_msg_id -> text
    refused: list[dict] = field(default_factory=list)  # error frames answering a message
    reconnects: int = 0
    _reader: asyncio.Task | None = None

    async def start(self) -> None:
        async with httpx.AsyncClient(base_url=self.base) as http:
            self.token = (await http.post("/api/v1/webchat/visitors")).json()["token"]
        await self.connect()

    async def connect(self, deadline_s: float = 15) -> None:
        """(Re)connect through nginx, as the chat client does after a drop: retry until the hello is welcomed."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                ws = await websockets.connect(
                    ws_url(self.base) + "/ws/webchat", open_timeout=3, close_timeout=1
                )
                hello: dict[str, Any] = {"type": "hello", "token": self.token}
                if self.conversation_id is not None:
                    hello["conversation_id"] = self.conversation_id
                await ws.send(json.dumps(hello))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if frame["type"] == "welcome":
                        break
                self.ws, self.upstream = ws, ws.response.headers["X-Gasdesk-Upstream"]
                self.conversation_id = frame["conversation"]["id"]
                self._reader = asyncio.create_task(self._read(ws))
                for cmid, text in list(self.unacked.items()):  # the outbox: resend with the same id
                    await ws.send(json.dumps({"type": "message", "client_msg_id": cmid, "text": text}))
                return
            except (OSError, websockets.WebSocketException, TimeoutError, KeyError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "ack":
                    self.unacked.pop(frame["client_msg_id"], None)
                    self.acked[frame["client_msg_id"]] = frame["seq"]
                elif frame["type"] == "error" and frame.get("client_msg_id"):
                    self.refused.append(frame)
                    if (
                        frame["code"] in RETRY_LATER_CODES
                    ):  # as the chat client does: the same id, after a wait
                        asyncio.get_running_loop().call_later(
                            float(frame.get("retry_after_s") or 0.5), self._resend, frame["client_msg_id"]
                        )
        except websockets.WebSocketException:
            pass

    def _resend(self, cmid: str) -> None:
        if cmid in self.unacked and self.connected:
            asyncio.get_running_loop().create_task(self._send_quietly(cmid))

    async def _send_quietly(self, cmid: str) -> None:
        with contextlib.suppress(websockets.WebSocketException):  # a drop: the reconnect resends it
            await self.ws.send(
                json.dumps({"type": "message", "client_msg_id": cmid, "text": self.unacked[cmid]})
            )

    @property
    def connected(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def send(self, cmid: str, text: str) -> None:
        self.unacked[cmid] = text
        if not self.connected:
            self.reconnects += 1
            await self.connect()  # resends everything unacknowledged, this one included
            return
        try:
            await self.ws.send(json.dumps({"type": "message", "client_msg_id": cmid, "text": text}))
        except websockets.WebSocketException:
            self.reconnects += 1
            await self.connect()

    async def handoff(self) -> None:
        await self.ws.send(json.dumps({"type": "handoff"}))

    async def settle(self, timeout: float = 20) -> None:
        """Until every message is acknowledged (reconnecting when the socket drops)."""
        deadline = time.monotonic() + timeout
        while self.unacked:
            assert time.monotonic() < deadline, f"never acknowledged: {sorted(self.unacked)} {self.refused}"
            if not self.connected:
                self.reconnects += 1
                await self.connect()
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


@dataclass
class Agent:
    """An agent console on one given process (not through nginx): logged in, online, reading its socket."""

    base: str
    username: str
    cookie: str = ""
    csrf: str = ""
    frames: list[dict] = field(default_factory=list)
    ws: Any = None
    _reader: asyncio.Task | None = None

    async def start(self) -> None:
        from tests.factories import login

        async with httpx.AsyncClient(base_url=self.base) as http:
            assert (await login(http, self.username, AGENT_PASSWORD)).status_code == 303
            self.cookie, self.csrf = http.cookies["gasdesk_session"], http.headers["X-CSRF-Token"]
            assert (await http.put("/api/v1/agent/presence", json={"presence": "online"})).status_code == 200
        self.ws = await websockets.connect(
            ws_url(self.base) + "/ws/agent", additional_headers={"Cookie": f"gasdesk_session={self.cookie}"}
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except websockets.WebSocketException:
            pass

    def resident_texts(self) -> list[str]:
        return [
            f["message"]["text"]
            for f in self.frames
            if f["type"] == "message" and f["message"]["sender"] == "resident"
        ]

    def seqs(self, conversation_id: int) -> list[int]:
        return [
            f["message"]["seq"]
            for f in self.frames
            if f["type"] == "message" and f["message"]["conversation_id"] == conversation_id
        ]

    async def wait_for(self, test: Any, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames:
                if test(frame):
                    return frame
            assert time.monotonic() < deadline, f"no such frame; got {[f['type'] for f in self.frames]}"
            await asyncio.sleep(0.05)

    async def transcript(self, conversation_id: int, base: str | None = None) -> list[dict]:
        async with httpx.AsyncClient(
            base_url=base or self.base, cookies={"gasdesk_session": self.cookie}
        ) as http:
            response = await http.get(f"/api/v1/conversations/{conversation_id}")
            assert response.status_code == 200, response.text
            return response.json()["messages"]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def resident_with_agent(cluster: Cluster, username: str) -> tuple[Resident, Agent]:
    """A resident through nginx, handed to an agent whose console is on the *other* process (so every message
    between them crosses Redis)."""
    cluster.create_agents(username)
    resident = Resident(cluster.url)
    await resident.start()
    other = next(app for app in cluster.local.apps if not resident.upstream.endswith(f":{app.port}"))
    agent = Agent(other.base, username)
    await agent.start()
    await resident.handoff()
    await agent.wait_for(
        lambda f: f["type"] == "assigned" and f["conversation_id"] == resident.conversation_id
    )
    return resident, agent


def resident_rows(transcript: list[dict]) -> list[dict]:
    return [m for m in transcript if m["sender"] == "resident"]


def assert_kept_once(resident: Resident, transcript: list[dict]) -> None:
    """Every acknowledged message is stored exactly once, at the seq its ack named; seqs have no gap."""
    rows = resident_rows(transcript)
    ids = [m["client_msg_id"] for m in rows]
    assert len(ids) == len(set(ids)), "a message was stored twice"
    stored = {m["client_msg_id"]: m["seq"] for m in rows}
    assert {cmid: stored.get(cmid) for cmid in resident.acked} == resident.acked
    seqs = [m["seq"] for m in transcript]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_a_killed_process_loses_no_acknowledged_message(cluster: Cluster) -> None:
    """SIGKILL the process holding the resident's socket while the resident is typing: the socket reconnects
    through nginx to the other process, unacknowledged messages are resent, every acknowledged message is
    kept once, and the agent (on the surviving process) keeps receiving."""
    cluster.make_whole()
    resident, agent = await resident_with_agent(cluster, "agent-kill")
    holder = cluster.app_by_port(int(resident.upstream.rsplit(":", 1)[1]))
    survivor = next(app for app in cluster.local.apps if app is not holder)
    try:
        for i in range(60):
            await resident.send(f"k{i}", f"第{i}条：家里燃气表不走字")
            if i == 25:
                holder.kill()  # mid-stream: some messages are in flight, some in the server's batch
            await asyncio.sleep(0.02)
        await resident.settle()
        assert resident.reconnects >= 1 and resident.upstream.endswith(f":{survivor.port}")
        assert resident.refused == []

        transcript = await agent.transcript(resident.conversation_id)
        assert_kept_once(resident, transcript)
        assert {m["client_msg_id"] for m in resident_rows(transcript)} == {f"k{i}" for i in range(60)}
        # the agent's console (on the survivor) saw the messages after the reconnect live, none twice
        await agent.wait_for(lambda f: f["type"] == "message" and f["message"].get("client_msg_id") == "k59")
        seen = agent.seqs(resident.conversation_id)
        assert len(seen) == len(set(seen))
    finally:
        await resident.close()
        await agent.close()


async def test_events_resume_after_redis_restarts(cluster: Cluster) -> None:
    """Redis goes away and comes back on the same address: nothing acknowledged meanwhile is lost, and live
    events between the two processes resume without restarting gasdesk."""
    cluster.make_whole()
    pids = [app.pid for app in cluster.local.apps]
    resident, agent = await resident_with_agent(cluster, "agent-redis")
    try:
        await resident.send("r-before", "重启前")
        await agent.wait_for(
            lambda f: f["type"] == "message" and f["message"].get("client_msg_id") == "r-before"
        )

        cluster.local.redis.stop()
        for i in range(
            3
        ):  # while Redis is down the chat goes on (flood limits counted per process meanwhile)
            await resident.send(f"r-down{i}", f"Redis 停止期间{i}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        cluster.local.redis.start()

        started = time.monotonic()
        for i in range(100):  # until the agent on the other process sees a new message live
            await resident.send(f"r-after{i}", f"恢复后{i}")
            try:
                await agent.wait_for(
                    lambda f, i=i: (
                        f["type"] == "message" and f["message"].get("client_msg_id") == f"r-after{i}"
                    ),
                    timeout=0.3,
                )
                break
            except AssertionError:
                continue
        resumed_s = time.monotonic() - started
        assert resumed_s < 15, "events did not resume"
        await resident.settle()

        transcript = await agent.transcript(resident.conversation_id)
        assert_kept_once(resident, transcript)
        assert {"r-down0", "r-down1", "r-down2"} <= set(resident.acked) and resident.refused == []
        assert "r-before" in resident.acked and any(c.startswith("r-after") for c in resident.acked)
        assert [app.pid for app in cluster.local.apps] == pids  # no process was restarted
    finally:
        await resident.close()
        await agent.close()


async def test_postgresql_restart_fails_fast_with_503_then_recovers(cluster: Cluster) -> None:
    """While PostgreSQL is down every request that needs it is answered at once with 503 and a Chinese message
    (not a hang, not a 500 traceback); once it is back the same processes serve again."""
    cluster.make_whole()
    cluster.create_agents("agent-pg")
    pids = [app.pid for app in cluster.local.apps]
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
        token = await http.post(
            "/api/v1/auth/token", json={"username": "agent-pg", "password": AGENT_PASSWORD}
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert (await http.get("/api/v1/agent/presence", headers=auth)).status_code == 200

        cluster.local.postgres.stop("fast")
        try:
            for app in cluster.local.apps:  # each process, directly and through nginx
                for base in (app.base, cluster.url):
                    started = time.monotonic()
                    response = await http.get(base + "/api/v1/agent/presence", headers=auth)
                    took = time.monotonic() - started
                    assert response.status_code == 503, response.text
                    error = response.json()["error"]
                    assert error["code"] == "database_unavailable" and "数据库" in error["message"]
                    assert response.headers["Retry-After"] == "5"
                    assert took < 2, f"took {took:.1f} s"
            page = await http.get(cluster.url + "/agent", headers={**auth, "Accept": "text/html"})
            assert page.status_code == 503 and "数据库" in page.text
            assert (await http.get(cluster.url + "/readyz")).status_code == 503
        finally:
            cluster.local.postgres.start()

        deadline = time.monotonic() + 15
        for app in cluster.local.apps:
            while (await http.get(app.base + "/api/v1/agent/presence", headers=auth)).status_code != 200:
                assert time.monotonic() < deadline, "gasdesk did not recover after PostgreSQL came back"
                await asyncio.sleep(0.2)
        assert (await http.get(cluster.url + "/readyz")).status_code == 200
    assert [app.pid for app in cluster.local.apps] == pids
    for app in cluster.local.apps:  # the requests met a handled 503, not the catch-all 500 handler
        assert "unhandled error on GET /api/v1/agent/presence" not in app.tail(2000)


def upstream_port(response: httpx.Response) -> int:
    """The process that answered, as nginx tells (the last it tried when one refused)."""
    return int(response.headers["X-Gasdesk-Upstream"].split(",")[-1].strip().rsplit(":", 1)[1])


async def test_reports_go_to_the_reports_process_and_to_the_others_while_it_is_down(cluster: Cluster) -> None:
    """nginx sends the report routes to the web process of their own (deploy/nginx/gasdesk.conf's
    gasdesk_reports, which runs at the background CPU priority) and everything else to the chat processes; with
    the reports process killed, the chat processes answer the reports instead of a 502."""
    cluster.make_whole()
    cluster.create_staff("supervisor-r", role="supervisor")
    reports = cluster.local.reports
    assert reports is not None
    chat_ports = {app.port for app in cluster.local.apps}
    with open(f"/proc/{reports.pid}/stat") as stat:
        assert int(stat.read().rsplit(")", 1)[1].split()[16]) == 19  # nice: GASDESK_WEB_CPU_PRIORITY=background
    export_query = {"grain": "day", "format": "xlsx"}
    async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as http:
        token = await http.post("/api/v1/auth/token", json={"username": "supervisor-r", "password": AGENT_PASSWORD})
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        export = await http.get("/api/v1/reports/overview/export", params=export_query, headers=auth)
        assert export.status_code == 200 and export.content[:2] == b"PK"  # an xlsx file
        assert upstream_port(export) == reports.port
        figures = await http.get("/api/v1/reports/overview", params={"grain": "day"}, headers=auth)
        assert figures.status_code == 200 and upstream_port(figures) == reports.port
        me = await http.get("/api/v1/auth/me", headers=auth)
        assert me.status_code == 200 and upstream_port(me) in chat_ports

        reports.kill()
        try:
            export = await http.get("/api/v1/reports/overview/export", params=export_query, headers=auth)
            assert export.status_code == 200 and export.content[:2] == b"PK"
            assert upstream_port(export) in chat_ports
        finally:
            cluster.make_whole()
