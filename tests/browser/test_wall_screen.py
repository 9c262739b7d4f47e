"""The wall screen (/wall) in a real browser at 1920×1080, logged in as the kiosk: a resident who asks for
people over the web chat socket shows on the waiting tile within 2 s; a screenshot is kept as an artefact."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.browser.conftest import login_as, screenshot
from tests.factories import desk_agent, staff_user

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _resident_asks_for_people(base: str) -> None:
    """A resident on the widget's socket says 转人工 (the real path: pipeline, hand-off rule, queue)."""
    async with httpx.AsyncClient(timeout=5) as client:
        token = (await client.post(base + "/api/v1/webchat/visitors")).json()["token"]
    async with connect(base.replace("http://", "ws://") + "/ws/webchat", open_timeout=5) as ws:

        async def until(match) -> dict:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if match(frame):
                    return frame

        await ws.send(json.dumps({"type": "hello", "token": token}))
        await until(lambda f: f["type"] == "welcome")
        await ws.send(json.dumps({"type": "message", "client_msg_id": "r1", "text": "转人工"}))
        await until(lambda f: f["type"] == "queue" or (f["type"] == "state" and f.get("state") == "queued"))


async def test_wall_shows_a_new_waiting_resident_within_2s(live_server, browser, factory, session) -> None:
    kiosk = await staff_user(session, "wall", display_name="值班大屏")
    await desk_agent(factory, groups=(1, 2, 3, 4), presence="busy")  # staffed, takes nothing: residents wait
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await login_as(page, live_server, kiosk.username, wait="load")
    assert page.url.endswith("/wall")
    await page.wait_for_function("() => window.gasdeskWall && window.gasdeskWall.open")
    assert await page.inner_text("#waiting-total") == "0"
    assert "排队等待" in await page.inner_text("#tile-waiting")
    assert "在线" in await page.inner_text("#agents") and "通话中" in await page.inner_text("#agents")

    started = time.monotonic()
    await _resident_asks_for_people(live_server)
    await page.wait_for_function("() => document.getElementById('waiting-total').textContent === '1'",
                                 timeout=5_000)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the wall took {elapsed:.2f}s to show the new resident"
    assert "1" in await page.inner_text("#by-channel li[data-key='channel-webchat']")
    assert await page.locator("#trend svg path.line").count() == 1
    assert await page.inner_text("#today-contacts") == "1"  # the tile and the trend line agree
    # one 1080p screen holds the whole wall: nothing to scroll
    assert await page.evaluate("() => document.documentElement.scrollHeight") <= 1080
    await screenshot(page, "wall")
    assert errors == []
