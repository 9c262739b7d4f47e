"""The chat page and the embed script are served, self-contained, and agree with the server's upload limits."""

from __future__ import annotations

import re

from gasdesk.conversations.attachments import ALLOWED


async def test_chat_page_is_standalone_mobile_and_local(client) -> None:
    response = await client.get("/chat")
    assert response.status_code == 200
    html = response.text
    assert 'name="viewport"' in html and "viewport-fit=cover" in html
    assert "转人工" in html and "历史记录" in html and 'lang="zh-CN"' in html
    assert "/static/webchat/chat.js" in html and "/static/webchat/chat.css" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # no CDN
    assert "/logout" not in html  # not the staff layout


async def test_assets_are_served(client) -> None:
    widget = await client.get("/widget.js")
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    assert "document.currentScript" in widget.text and "/chat?embed=1" in widget.text
    for path in ("/static/webchat/chat.js", "/static/webchat/chat.css"):
        assert (await client.get(path)).status_code == 200
    css = (await client.get("/static/webchat/chat.css")).text
    assert "safe-area-inset-bottom" in css and "font-size: 16px" in css  # no iOS zoom on focus


async def test_client_upload_limits_match_server(client) -> None:
    js = (await client.get("/static/webchat/chat.js")).text
    block = re.search(r"var LIMITS = \{(.*?)\};", js, re.S)
    assert block
    limits = {ext: (kind, int(mb)) for ext, kind, mb in
              re.findall(r'(\w+): \["(image|file)", (\d+) \* MB\]', block.group(1))}
    assert limits == {ext: (k.kind, k.max_bytes // (1024 * 1024)) for ext, k in ALLOWED.items()}
