"""One socket client, one source of its numbers: every page that runs a socket client carries the constants of
``gasdesk/realtime/protocol.py`` and loads ``socket-client.js`` before the page's own script; no static JS file
keeps its own copy of those numbers or its own connect / reconnect / resume machinery."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gasdesk.conversations.service import MAX_TEXT
from gasdesk.realtime import protocol
from tests.factories import login, staff_user

GASDESK = Path(__file__).resolve().parents[2] / "gasdesk"
CLIENT = "/static/socket-client.js"
# The page scripts that talk over a socket, and the socket each one uses.
SOCKET_PAGES = {"/static/webchat/chat.js": "/ws/webchat", "/static/conversations/agent.js": "/ws/agent",
                "/static/notifications/bell.js": "/ws/staff", "/static/wall/wall.js": "/ws/wall"}
PAGE_SCRIPTS = [GASDESK / "channels/webchat/static/chat.js", GASDESK / "conversations/static/agent.js",
                GASDESK / "notifications/static/bell.js", GASDESK / "wall/static/wall.js"]


def _constants_of(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="gasdesk-protocol">(.*?)</script>', html, re.S)
    assert block, "the page carries no protocol constants"
    return json.loads(block.group(1))


def _scripts_of(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"', html)


def _static_js() -> list[Path]:
    return [p for p in GASDESK.rglob("static/**/*.js") if "vendor" not in p.parts]


def test_the_constants_are_the_servers() -> None:
    sent = protocol.client_protocol()
    assert sent["max_message_chars"] == MAX_TEXT == 2000  # the limit do_post_message enforces
    assert sent["close_codes"]["too_many"] == 4429 and sent["final_close_codes"] == [4401, 4403]
    assert sent["reconnect_first_ms"] < sent["reconnect_max_ms"] and 0 < sent["reconnect_jitter"] < 1
    assert json.loads(json.dumps(sent)) == sent  # plain JSON, nothing the page could not carry


async def test_every_page_running_a_socket_client_carries_the_servers_constants(app, client, session) -> None:
    """The resident chat, the agent console, and a sample of staff pages (the bell is on all of them)."""
    pages = {"/chat": (await client.get("/chat")).text}
    admin = await staff_user(session, "admin")
    assert (await login(client, admin.username)).status_code == 303
    for path in ("/agent", "/", "/notifications", "/tickets", "/admin/kb", "/customers", "/wall"):
        response = await client.get(path)
        assert response.status_code == 200, path
        pages[path] = response.text
    seen = set()
    for path, html in pages.items():
        scripts = _scripts_of(html)
        users = [s for s in scripts if s in SOCKET_PAGES]
        assert users, f"{path} runs no socket client"
        seen.update(users)
        assert _constants_of(html) == protocol.client_protocol(), path
        # The shared client (and the constants) come before every script that uses them.
        assert CLIENT in scripts and all(scripts.index(CLIENT) < scripts.index(s) for s in users), (path, scripts)
        if "/static/chat-text.js" in scripts:  # its counter reads the limit from the same constants
            assert scripts.index(CLIENT) < scripts.index("/static/chat-text.js")
    assert seen == set(SOCKET_PAGES)
    assert (await client.get(CLIENT)).status_code == 200


def test_pages_do_not_open_sockets_or_reconnect_themselves() -> None:
    shared = (GASDESK / "web/static/socket-client.js").read_text()
    assert "new WebSocket(" in shared and "reconnect_max_ms" in shared and "resume_max_tries" in shared
    for script in PAGE_SCRIPTS:
        text = script.read_text()
        assert "gasdeskSocket.connect(" in text, script.name  # its socket is the shared client's
        for own in ("new WebSocket(", ".onclose", ".onmessage", "Math.random", "Math.pow", "backoff",
                    "reconnectTimer", "resumeTries", '"ping"'):
            assert own not in text, f"{script.name} has its own socket machinery: {own}"
    for script in _static_js():
        if script.name != "socket-client.js":
            assert "new WebSocket(" not in script.read_text(), script.name


def test_no_static_js_keeps_its_own_copy_of_the_constants() -> None:
    """No script spells a close code or a protocol timing; the message limit appears at most as some unrelated
    timer's delay (``setTimeout(…, 2000)``), never as a limit, a ``maxlength`` or a fallback. A number inside
    a URL path (the SVG namespace ``http://www.w3.org/2000/svg``) is not a constant."""
    sent = protocol.client_protocol()
    timings = {v for k, v in sent.items() if k.endswith("_ms") and v >= 1000 and v != sent["max_message_chars"]}
    codes = set(sent["close_codes"].values())
    limit = str(sent["max_message_chars"])
    for script in _static_js():
        text = script.read_text()
        for value in sorted(timings | codes):
            assert not re.search(rf"(?<![\w./]){value}(?![\w.])", text), f"{script.name} hard-codes {value}"
        for match in re.finditer(rf"(?<![\w./]){limit}(?![\w.])", text):
            line = text[text.rfind("\n", 0, match.start()) + 1:match.end() + 2]
            assert re.search(rf"\}}\s*,\s*{limit}\)", line), f"{script.name} hard-codes the message limit: {line}"
