"""Operations: JSON log lines with request and conversation ids and no personal data; Prometheus metrics that move
with requests, sockets, queues and jobs; /metrics only for loopback or a bearer token (docs/operations.md)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY

from gasdesk.clock import utcnow
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.jobs.models import Job
from gasdesk.observability import gauges
from gasdesk.web.access_log import log_config
from tests.factories import ChatSocket, desk_agent, new_visitor, queued_conversation, served

PHONE = "13766554433"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The process's logging as ``gasdesk serve`` sets it up with GASDESK_LOG_FORMAT=json, gasdesk's own loggers
    at DEBUG (every line the app writes), into a buffer; restored afterwards."""
    config = log_config("INFO", "json")
    config["handlers"]["stderr"]["stream"] = buffer = io.StringIO()
    touched = [logging.getLogger(name) for name in ("", "gasdesk", *config["loggers"])]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in touched]
    logging.config.dictConfig(config)
    logging.getLogger("gasdesk").setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        for lg, handlers, level, propagate, disabled in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled


def json_lines(buffer: io.StringIO) -> list[dict]:
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def test_request_log_lines_are_json_with_the_request_id(client, json_log, monkeypatch) -> None:
    response = await client.get("/healthz")
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    other = (await client.get("/healthz")).headers["x-request-id"]
    assert other != request_id, "a new id per request"
    entries = json_lines(json_log)
    [access] = [e for e in entries if e["request_id"] == request_id]
    assert access["logger"] == "gasdesk.access" and access["message"].startswith("GET /healthz 200")
    assert access["level"] == "INFO" and isinstance(access["pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access["time"])
    assert {"conversation_id", "message", "logger", "level", "time", "pid", "request_id"} <= access.keys()

    # a proxy's id is kept only when a setting names its header, and only if it looks like an id
    assert (await client.get("/healthz", headers={"X-Request-ID": "from-proxy-1"})).headers[
        "x-request-id"
    ] != "from-proxy-1"
    monkeypatch.setenv("GASDESK_TRUSTED_REQUEST_ID_HEADER", "X-Request-ID")
    reset_settings_cache()
    assert (await client.get("/healthz", headers={"X-Request-ID": "from-proxy-1"})).headers[
        "x-request-id"
    ] == "from-proxy-1"
    forged = (await client.get("/healthz", headers={"X-Request-ID": 'a b"c'})).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)


async def test_a_chat_message_with_a_phone_number_never_reaches_the_log(app, json_log) -> None:
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            request_id = ws.ws.response.headers["x-request-id"]
            await ws.send(type="hello", token=visitor["token"])
            conversation_id = (await ws.until("welcome"))["conversation"]["id"]
            await ws.send(type="message", client_msg_id="m-1", text=f"我的电话是{PHONE}，燃气表不走了")
            await ws.until("ack")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        await c.get(f"/api/v1/customers?phone={PHONE}")
    text = json_log.getvalue()
    assert PHONE not in text and PHONE[:3] + " " not in text
    entries = json_lines(json_log)
    [stored] = [e for e in entries if e["logger"] == "gasdesk.conversations.pipeline"]
    assert stored["message"].startswith("resident message ")
    assert (stored["request_id"], stored["conversation_id"]) == (request_id, conversation_id), (
        "a line inside the socket session carries the socket's request id and the conversation"
    )
    assert any(
        e["logger"] == "gasdesk.access"
        and e["message"].startswith("WS /ws/webchat 101")
        and e["request_id"] == request_id
        for e in entries
    )
    # a message that does quote a number is redacted on its way out, whatever logger wrote it
    logging.getLogger("gasdesk.test").warning("resident wrote %s", f"电话 {PHONE}")
    assert (
        json_lines(json_log)[-1]["message"] == "resident wrote 电话 [手机号]"
        and PHONE not in json_log.getvalue()
    )


async def test_metrics_move_with_requests_sockets_queues_and_jobs(app, client, session, factory) -> None:
    gauges.forget()
    before = sample(
        "gasdesk_http_request_duration_seconds_count",
        method="GET",
        route="/api/v1/tickets/{ticket_id}",
        status="4xx",
    )
    assert (await client.get("/api/v1/tickets/12345")).status_code == 401
    assert (
        sample(
            "gasdesk_http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/tickets/{ticket_id}",
            status="4xx",
        )
        == before + 1
    )
    assert (
        sample(
            "gasdesk_http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/tickets/12345",
            status="4xx",
        )
        == 0
    ), "route templates, never raw paths"

    await desk_agent(factory, groups=(1,), presence="busy")  # staffed, takes nothing: the resident waits
    await queued_conversation(session, group_id=1)
    session.add(
        Job(name="test.lagging", payload={}, status="pending", run_at=utcnow() - timedelta(seconds=90))
    )
    session.add(Job(name="test.broken", payload={}, status="failed", run_at=utcnow()))
    await commit(session)
    body = (await client.get("/metrics")).text
    assert "gasdesk_http_request_duration_seconds_bucket{" in body
    assert sample("gasdesk_queue_conversations", skill_group="gas") == 1
    assert sample("gasdesk_queue_oldest_wait_seconds", skill_group="gas") >= 0
    assert sample("gasdesk_jobs_lag_seconds") >= 89
    assert sample("gasdesk_jobs_failed") == 1
    assert sample("gasdesk_disk_free_bytes", path="var") > 0

    opened = sample("gasdesk_websocket_connections", kind="resident")
    closed = sample("gasdesk_websocket_closed_total", kind="resident", by="client")
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            await ws.until("welcome")
            assert sample("gasdesk_websocket_connections", kind="resident") == opened + 1
    assert sample("gasdesk_websocket_connections", kind="resident") == opened
    assert sample("gasdesk_websocket_closed_total", kind="resident", by="client") == closed + 1


async def test_bot_understanding_is_timed(session, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    reset_settings_cache()
    from gasdesk.conversations.pipeline import receive_resident_message
    from tests.factories import bot_conversation

    before = sample("gasdesk_bot_understand_seconds_count")
    conversation = await bot_conversation(session)
    await receive_resident_message(session, conversation, text="营业厅几点开门")
    await commit(session)
    assert sample("gasdesk_bot_understand_seconds_count") == before + 1


async def test_metrics_only_for_loopback_or_the_token(app, monkeypatch) -> None:
    def client_from(host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(host, 5555)), base_url="http://t"
        )

    async with client_from("127.0.0.1") as local, client_from("10.20.30.40") as remote:
        assert (await local.get("/metrics")).status_code == 200
        assert (await remote.get("/metrics")).status_code == 404
        proxied = await local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 404, "a proxy on the same host does not make its clients local"
        monkeypatch.setenv("GASDESK_METRICS_TOKEN", "s3cret-metrics-token")
        reset_settings_cache()
        assert (await local.get("/metrics")).status_code == 403, "with a token, loopback needs it too"
        assert (await remote.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 403
        ok = await remote.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        assert "gasdesk_build_info" in ok.text
