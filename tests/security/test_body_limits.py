"""Issue 8, finding 4: request bodies are capped per route before anything reads them.

The attacks as found: a 400 MB JSON body to the public ``/api/v1/auth/token`` grew the process by 1.2 GB;
an 800 MB upload with a bogus visitor token was streamed to disk before the 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx

from gasdesk.web.body_limit import DEFAULT_MAX_BODY, MB, body_cap
from tests.factories import served


async def _raw_request(host: str, head: str, body: bytes = b"") -> tuple[float, bytes]:
    """Send a request head (and a little body) and read the answer: seconds taken, raw response."""
    ip, port = host.split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(ip, int(port))
    writer.write(head.encode() + body)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return time.perf_counter() - started, response


async def test_a_declared_400_mb_login_body_is_refused_unread(app) -> None:
    async with served(app) as host:
        seconds, response = await _raw_request(
            host, "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {400 * MB}\r\n\r\n", b'{"username": "admin", "password": "')
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert "请求内容过大".encode() in rest and b"body_too_large" in rest
    assert seconds < 2, "answered at once, without waiting for 400 MB"


async def test_a_streamed_body_is_cut_off_at_the_cap(app) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"username": "admin", "password": "'
        for _ in range(200):  # 12.8 MB, no Content-Length (chunked)
            sent += 64 * 1024
            yield b"x" * (64 * 1024)
        yield b'"}'

    async with served(app) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        try:
            response = await http.post("/api/v1/auth/token", content=chunks(),
                                       headers={"Content-Type": "application/json"})
        except httpx.HTTPError:  # the server may close before the client finished writing: also a refusal
            response = None
    if response is not None:
        assert response.status_code == 413
        assert response.json()["error"]["message"].startswith("请求内容过大")
    assert body_cap("POST", "/api/v1/auth/token") == DEFAULT_MAX_BODY


async def test_an_oversized_upload_is_refused_before_authentication(app, tmp_path) -> None:
    async with served(app) as host:
        seconds, response = await _raw_request(
            host, "POST /api/v1/webchat/uploads HTTP/1.1\r\nHost: x\r\nX-Visitor-Token: bogus\r\n"
                  "Content-Type: multipart/form-data; boundary=b\r\n"
                  f"Content-Length: {800 * MB}\r\n\r\n", b"--b\r\n")
    assert response.startswith(b"HTTP/1.1 413") and seconds < 2
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*")), "nothing reached the disk"


async def test_ordinary_requests_and_uploads_within_their_caps_still_work(client) -> None:
    response = await client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x" * 100})
    assert response.status_code == 401
    assert body_cap("POST", "/api/v1/webchat/uploads") > 10 * MB
    assert body_cap("POST", "/api/v1/tickets/12/photos") > 10 * MB
    assert body_cap("GET", "/api/v1/webchat/uploads") == DEFAULT_MAX_BODY
