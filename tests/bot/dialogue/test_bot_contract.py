"""The bot's contract (gasdesk/bot/base.py, docs/architecture.md): what a resident asks the bot to do, it does
through the domains' do_* functions as the one bot actor, audited; a BotReply carries no side channel of
"actions", and no bot module writes rows itself."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from dialogue_kit import make_slots, tickets, verify

import gasdesk.bot
from gasdesk.bot.base import BOT_ACTOR, BotReply
from tests.factories import desk_agent, wo_audit_rows

BOT_DIR = Path(gasdesk.bot.__file__).parent
DOCS = Path(gasdesk.bot.__file__).parents[2] / "docs" / "architecture.md"


def test_the_reply_has_no_actions_channel_and_the_docs_say_how_the_bot_acts() -> None:
    assert "actions" not in {f.name for f in dataclasses.fields(BotReply)}
    assert (BOT_ACTOR.name, BOT_ACTOR.source) == ("智能客服", "bot")
    base = (BOT_DIR / "base.py").read_text(encoding="utf-8")
    assert "never changes state itself" not in base and "BOT_ACTOR" in base
    docs = DOCS.read_text(encoding="utf-8")
    assert "BOT_ACTOR" in docs and "do_*" in docs


def test_one_bot_actor_and_no_direct_writes_in_bot_code() -> None:
    sources = {p.relative_to(BOT_DIR).as_posix(): p.read_text(encoding="utf-8") for p in BOT_DIR.rglob("*.py")
               if "nlu/data" not in p.as_posix()}
    actors = [name for name, text in sources.items() if "Actor.system(" in text or "Actor.of(" in text]
    assert actors == ["base.py"]
    # Reads are fine (select); rows are added, changed and removed by the domains only.
    writes = {name: re.findall(r"session\.(?:add|add_all|delete|merge)\(|\b(?:insert|update|delete)\(\s*[A-Z]", text)
              for name, text in sources.items()}
    assert {name: found for name, found in writes.items() if found} == {}


async def test_every_change_the_bot_makes_is_audited_as_the_bot(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    customer = await factory.customer()
    await make_slots(session)
    chat = await new_chat()
    await chat.say("我想预约安检")
    await verify(chat, customer)
    await chat.press("09:00")
    await chat.press("确认预约")
    [booking] = await tickets("service_appointment")
    chat = await new_chat(customer.id)
    await chat.say("暖气不热")
    await chat.press("已检查，还是不热")
    [repair] = await tickets("repair")
    chat = await new_chat()
    await chat.say("厨房里好大一股煤气味")
    [leak] = await tickets("gas_leak")
    for ticket in (booking, repair, leak):
        [row] = await wo_audit_rows(session, "ticket", ticket.id, "ticket.create")
        assert (row.actor_name, row.source, row.actor_id) == ("智能客服", "bot", None)
    appointments = await wo_audit_rows(session, "appointment", 1, "appointment.book")
    assert [(r.actor_name, r.source) for r in appointments] == [("智能客服", "bot")]
