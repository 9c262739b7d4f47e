"""Issue 8, finding 2: the identity check (户号 + last 4 phone digits) must not fall to brute force.

The attack: many sockets (and visitor identities) guess the 10,000 combinations for one 户号, then read the
victim's history. Now attempts are limited per account, per visitor and per client IP across sockets and
processes; the account locks after 5 failures (even the right answer is refused then) and supervisors are
alerted once.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.config import reset_settings_cache
from gasdesk.notifications.models import Notification
from tests.factories import ChatSocket, new_visitor, served
from tests.realtime.test_scale_out import two_servers  # noqa: F401 - fixture


def _guesses(right: str, n: int, right_at: int) -> list[str]:
    wrong = [f"{k:04d}" for k in range(10_000) if f"{k:04d}" != right]
    return wrong[:right_at] + [right] + wrong[right_at:n - 1]


async def _try(host: str, token: str, account_no: str, last4: str) -> dict:
    async with ChatSocket.connect(host) as ws:
        await ws.send(type="hello", token=token)
        await ws.until("welcome")
        await ws.send(type="identify", account_no=account_no, phone_last4=last4)
        return await ws.until(lambda f: f.get("type") in ("identified", "error"))


async def test_many_visitors_cannot_guess_one_account(app, factory, session) -> None:
    victim = await factory.customer(name="孙丽", phones=["13912345678"])
    account_no = victim.accounts[0].account_no
    async with served(app) as host:
        visitors = [await new_visitor(host) for _ in range(8)]
        answers = []
        # Each guess from a fresh socket, rotating over 8 visitor identities: per-socket limits are useless here.
        for i, last4 in enumerate(_guesses("5678", 12, right_at=8)):
            answers.append(await _try(host, visitors[i % len(visitors)]["token"], account_no, last4))

    assert not any(a["type"] == "identified" for a in answers), "the right 9th guess is refused"
    codes = [a.get("code") for a in answers]
    assert codes[:3] == ["identify_failed"] * 3, "two typos are free, the third failure starts a back-off"
    assert set(codes[3:]) == {"identify_locked"}, codes
    assert "秒后再试" in answers[3]["message"]


async def test_the_lockout_alerts_supervisors_once_and_holds_for_the_right_answer(
        app, factory, session, monkeypatch) -> None:
    # A patient attacker waits out each back-off; the lock-out comes at the limit (3 here, 5 by default).
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"identify.account": "3/1800"}')
    reset_settings_cache()
    supervisor = await factory.user("supervisor")
    victim = await factory.customer(name="孙丽", phones=["13912345678"])
    account_no = victim.accounts[0].account_no
    async with served(app) as host:
        visitors = [await new_visitor(host) for _ in range(5)]
        answers = [await _try(host, visitors[i]["token"], account_no, last4)
                   for i, last4 in enumerate(_guesses("5678", 5, right_at=4))]
    codes = [a.get("code") for a in answers]
    assert codes == ["identify_failed"] * 3 + ["identify_locked"] * 2, codes
    assert "分钟" in answers[4]["message"], "the right answer during the lock-out is refused"
    notes = list(await session.scalars(select(Notification).where(Notification.kind == "security.identify_lockout")))
    assert [n.user_id for n in notes] == [supervisor.id], "supervisors are alerted once per lock-out"
    assert account_no not in notes[0].body and account_no[-2:] in notes[0].body, "only the 户号's last digits"
    entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "security.identify_lockout")))
    assert len(entries) == 1


async def test_one_visitor_backs_off_then_locks_across_accounts(app, factory) -> None:
    """Spraying one guess over many accounts from one visitor: back-off from the third failure, then a lock."""
    customers = [await factory.customer() for _ in range(7)]
    async with served(app) as host:
        visitor = await new_visitor(host)
        answers = []
        for c in customers:
            answers.append(await _try(host, visitor["token"], c.accounts[0].account_no, "0000"))
    codes = [a.get("code") for a in answers]
    assert codes[:3] == ["identify_failed"] * 3
    assert set(codes[3:]) == {"identify_locked"}, "the 4th comes within the back-off, later ones hit the lock-out"


async def test_a_legitimate_resident_with_a_typo_gets_in(app, factory) -> None:
    customer = await factory.customer(name="王强", phones=["13800001111"])
    async with served(app) as host:
        visitor = await new_visitor(host)
        first = await _try(host, visitor["token"], customer.accounts[0].account_no, "1112")
        second = await _try(host, visitor["token"], customer.accounts[0].account_no, "1111")
    assert first["code"] == "identify_failed"
    assert second == {"type": "identified", "name": "王*"}


@pytest.fixture
def two_servers_with_redis(two_servers: tuple[str, str]) -> list[str]:  # noqa: F811 - the fixture below
    """Two app processes sharing the database and a Redis, as ``host:port``."""
    return [base.removeprefix("http://") for base in two_servers]


async def test_the_account_limit_holds_across_processes(two_servers_with_redis, factory) -> None:
    victim = await factory.customer(phones=["13700002222"])
    account_no = victim.accounts[0].account_no
    hosts = two_servers_with_redis
    codes = []
    async with httpx.AsyncClient() as http:
        tokens = [(await http.post(f"http://{hosts[i % 2]}/api/v1/webchat/visitors")).json()["token"]
                  for i in range(8)]
    for i, last4 in enumerate(_guesses("2222", 8, right_at=7)):
        async with websockets.connect(f"ws://{hosts[i % 2]}/ws/webchat") as ws:  # alternate processes
            await ws.send(json.dumps({"type": "hello", "token": tokens[i]}))
            await ws.send(json.dumps({"type": "identify", "account_no": account_no, "phone_last4": last4}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] in ("identified", "error"):
                    codes.append(frame.get("code") or frame["type"])
                    break
    assert codes[:3] == ["identify_failed"] * 3
    assert codes[3:] == ["identify_locked"] * 5, "the 8th guess is right, but the account is backed off everywhere"


async def test_history_after_identification_masks_phone_and_id_numbers(app, factory, session) -> None:
    """Whoever passes the check sees earlier conversations, but not the numbers typed in them in full."""
    from gasdesk.conversations.models import SenderType
    from gasdesk.conversations.service import do_close, do_post_message
    from gasdesk.db import commit
    from tests.factories import bot_conversation

    customer = await factory.customer(name="孙丽", phones=["13912345678"])
    earlier = await bot_conversation(session, customer_id=customer.id)
    await do_post_message(session, earlier, SenderType.resident, client_msg_id="h1",
                          text="我的手机13912345678，身份证110101199003071237，户号" + customer.accounts[0].account_no)
    await do_close(session, earlier, by="resident")
    await commit(session)
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            await ws.until("welcome")
            await ws.send(type="identify", account_no=customer.accounts[0].account_no, phone_last4="5678")
            await ws.until("identified")
            await ws.send(type="history")
            listed = (await ws.until("history"))["conversations"]
            await ws.send(type="history", conversation_id=earlier.id)
            transcript = (await ws.until("history_transcript"))["messages"]
    text = next(m["text"] for m in transcript if m["sender"] == "resident")
    assert "13912345678" not in text and "139****5678" in text
    assert "110101199003071237" not in text and "1101**********1237" in text
    assert customer.accounts[0].account_no not in text
    assert all("13912345678" not in c["preview"] for c in listed)
