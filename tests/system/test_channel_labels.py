"""Channel names show in Chinese everywhere people read them (网页聊天, not webchat): the ticket page and its
history, the agent console, the knowledge base and past conversations, all from one table."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from gasdesk.conversations.models import CHANNEL_LABELS, Channel, channel_label
from gasdesk.kb.models import CHANNEL_LABELS as KB_CHANNEL_LABELS
from gasdesk.kb.service import check_channels
from tests.factories import bot_conversation, login, wo_ticket

GASDESK = Path(__file__).resolve().parents[2] / "gasdesk"


def test_one_table_of_channel_names() -> None:
    assert channel_label("webchat") == "网页聊天" and channel_label("voice") == "热线"
    assert channel_label(None) == "" and channel_label("pigeon") == "pigeon"
    assert {code: KB_CHANNEL_LABELS[code] for code in Channel} == {c.value: label for c, label in CHANNEL_LABELS.items()}
    # Knowledge-base imports written with the old names still read.
    assert check_channels("网页/H5、电话、网页聊天") == ["webchat", "voice"]


def test_no_template_prints_a_raw_channel_code() -> None:
    offenders = []
    for template in GASDESK.rglob("templates/*.html"):
        for match in re.finditer(r"\{\{[^}]*\bchannel\b[^}]*\}\}", template.read_text()):
            if "channel_label(" not in match.group(0) and "CHANNEL_LABELS" not in match.group(0):
                offenders.append(f"{template.name}: {match.group(0)}")
    assert offenders == []


async def test_ticket_page_and_console_show_chinese_channel_names(client, factory, session) -> None:
    agent = await factory.user("agent")
    customer = await factory.customer()
    conversation = await bot_conversation(session, customer_id=customer.id)
    ticket = await wo_ticket(session, "repair", channel="webchat", conversation_id=conversation.id,
                             customer_id=customer.id)
    await login(client, agent.username)
    page = await client.get(f"/tickets/{ticket.id}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert re.search(r"来源渠道</dt><dd>网页聊天</dd>", page.text)
    assert "来源：网页聊天" in page.text and "webchat" not in page.text

    console = await client.get("/agent", headers={"Accept": "text/html"})
    labels = re.search(r'data-channel-labels="([^"]*)"', console.text).group(1)
    assert json.loads(html.unescape(labels))["webchat"] == "网页聊天"
    assert "网页/H5" not in (GASDESK / "conversations" / "static" / "agent.js").read_text()

    history = await client.get(f"/api/v1/customers/{customer.id}/conversations")
    assert history.status_code == 200, history.text
    assert {c["channel_label"] for c in history.json()} == {"网页聊天"}
