"""The Event Socket protocol layer: framing, event decoding, auth, api/bgapi against the fake FreeSWITCH's
inbound face, and peers that send garbage, too much, or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from gasdesk.config import get_settings
from gasdesk.telephony.freeswitch.esl import (
    EslAuthError,
    EslClosed,
    EslCommandError,
    EslConnection,
    EslProtocolError,
    EslTimeout,
    Limits,
    encode_frame,
    parse_event_plain,
    read_frame,
)
from gasdesk.telephony.freeswitch.fake import FakeFreeswitch, event_bytes, frame_bytes

pytestmark = pytest.mark.no_database


def _reader(data: bytes, limit: int = 64 * 1024) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    switch = FakeFreeswitch(password="s3cret-Pw")
    await switch.start_inbound()
    yield switch
    await switch.close()


async def test_frames_replies_and_url_encoded_events_are_parsed() -> None:
    data = (frame_bytes({"Content-Type": "auth/request"})
            + frame_bytes({"Content-Type": "api/response"}, "+OK done\n")
            + event_bytes({"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j-1", "Job-Command": "status"},
                          "UP 1 minute\nready: 100% sure\n")
            + event_bytes({"Event-Name": "DTMF", "Channel-Name": "sofia/external/1000@127.0.0.1",
                           "DTMF-Digit": "#"}))
    reader = _reader(data)
    auth, api, job, dtmf = [await read_frame(reader) for _ in range(4)]
    assert await read_frame(reader) is None
    assert auth is not None and auth.content_type == "auth/request" and auth.body == b""
    assert api is not None and api.body == b"+OK done\n"
    assert job is not None and job.content_type == "text/event-plain"
    event = parse_event_plain(job.body)
    assert (event.name, event.get("Job-UUID"), event.body) == ("BACKGROUND_JOB", "j-1", "UP 1 minute\nready: 100% sure\n")
    assert dtmf is not None
    decoded = parse_event_plain(dtmf.body)
    assert decoded.get("Channel-Name") == "sofia/external/1000@127.0.0.1" and decoded.get("DTMF-Digit") == "#"
    assert b"%40127.0.0.1" in dtmf.body and b"%23" in dtmf.body  # really URL-encoded on the wire


@pytest.mark.parametrize("data", [
    b"Content-Type command/reply\n\n",  # no colon
    b"Content-Type: api/response\nContent-Length: abc\n\n",
    b"Content-Type: api/response\nContent-Length: -5\n\n",
    b"Content-Type: api/response\nContent-Length: 2000000\n\n",  # over the body cap
    b"Content-Type: api/response\nContent-Length: 10\n\nshort",  # closed inside the body
    b"Content-Type: \xff\xfe\n\n",  # not UTF-8
    b"".join(f"X-H{i}: v\n".encode() for i in range(600)) + b"\n",  # too many headers
    b"Content-Type: command/reply\nReply-Text: +OK",  # closed inside the headers
])
async def test_malformed_or_oversized_frames_are_refused(data: bytes) -> None:
    with pytest.raises(EslProtocolError):
        await read_frame(_reader(data))


async def test_a_header_block_without_end_is_refused_at_the_cap() -> None:
    with pytest.raises(EslProtocolError):
        await read_frame(_reader(b"X-Junk: " + b"a" * 10_000 + b"\n" * 1, limit=4096), Limits(header_block=4096))
    with pytest.raises(EslProtocolError):
        parse_event_plain(b"Job-UUID: x\n\n")  # an event without Event-Name


def test_commands_cannot_smuggle_lines() -> None:
    assert encode_frame("api status") == b"api status\n\n"
    with pytest.raises(ValueError):
        encode_frame("api status\n\nexit")
    with pytest.raises(ValueError):
        encode_frame("sendmsg", {"execute-app-arg": "a\nevent-lock: false"})


async def test_auth_api_and_bgapi_with_job_uuid(fake: FakeFreeswitch) -> None:
    conn = await EslConnection.open_inbound("127.0.0.1", fake.port, "s3cret-Pw", timeout_s=2)
    try:
        assert "is ready" in await conn.api("status")
        with pytest.raises(EslCommandError):
            await conn.api("no_such_command")
        await conn.subscribe("BACKGROUND_JOB")
        results = await asyncio.gather(conn.bgapi("status", timeout_s=2), conn.bgapi("status", timeout_s=2))
        assert all("is ready" in r for r in results)
        with pytest.raises(EslCommandError):
            await conn.bgapi("no_such_command", timeout_s=2)
    finally:
        await conn.close()
    sent = fake.inbound_commands
    assert sent[:4] == ["auth ********", "api status", "api no_such_command", "event plain BACKGROUND_JOB"]
    assert sent[4:] == ["bgapi status", "bgapi status", "bgapi no_such_command"]


async def test_the_inbound_connection_from_settings(fake: FakeFreeswitch, caplog: pytest.LogCaptureFixture) -> None:
    settings = get_settings().model_copy(update={"freeswitch_port": fake.port, "freeswitch_password": SecretStr("s3cret-Pw")})
    assert "s3cret-Pw" not in repr(settings)
    conn = await EslConnection.open_from_settings(settings)
    assert "is ready" in await conn.api("status")
    await conn.close()
    with pytest.raises(EslAuthError):
        await EslConnection.open_from_settings(settings.model_copy(update={"freeswitch_password": None}))
    assert "s3cret-Pw" not in caplog.text


async def test_a_wrong_password_is_refused(fake: FakeFreeswitch, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(EslAuthError):
        await EslConnection.open_inbound("127.0.0.1", fake.port, "wrong-password", timeout_s=2)
    assert "wrong-password" not in caplog.text


async def _serve(behaviour) -> tuple[asyncio.Server, int]:  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(behaviour, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_silent_peer_times_out_instead_of_hanging() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(frame_bytes({"Content-Type": "auth/request"}))
            await asyncio.sleep(5)
        finally:
            writer.close()

    server, port = await _serve(silent)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(EslTimeout):
            await EslConnection.open_inbound("127.0.0.1", port, "pw", timeout_s=0.3)
        assert loop.time() - started < 2
    finally:
        server.close()


async def test_garbage_from_the_peer_fails_pending_commands_at_once() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(frame_bytes({"Content-Type": "auth/request"}))
            await reader.readuntil(b"\n\n")
            writer.write(frame_bytes({"Content-Type": "command/reply", "Reply-Text": "+OK accepted"}))
            await reader.readuntil(b"\n\n")
            writer.write(b"Content-Type: api/response\nContent-Length: 99999999\n\n")  # far over the cap
            await reader.read()
        finally:
            writer.close()

    server, port = await _serve(rude)
    try:
        conn = await EslConnection.open_inbound("127.0.0.1", port, "pw", timeout_s=3)
        with pytest.raises(EslProtocolError):
            await asyncio.wait_for(conn.api("status"), 1)
        assert conn.closed
        with pytest.raises(EslClosed):
            await conn.api("status")
        await conn.close()
    finally:
        server.close()
