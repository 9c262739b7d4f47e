"""The hotline end to end, as `gasdesk hotline` runs it: a real SIP client (Debian's baresip) calls the embedded
endpoint on loopback; the real controller, IVR script, TTS prompts (espeak-ng + sox) and domains answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gasdesk import db
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.conversations.models import Conversation, ConversationState
from gasdesk.conversations.service import EMERGENCY_PRIORITY
from gasdesk.telephony.freeswitch.fake import CallerScript, FakeFreeswitch
from gasdesk.telephony.models import Call, CallEvent, CallState, IvrNodeVisit
from gasdesk.telephony.runtime import start_hotline
from gasdesk.telephony.sip.uac import rms
from gasdesk.tickets.models import Ticket
from tests.telephony.sip.conftest import BARESIP_MODULES, Baresip, free_rtp_range


async def _until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _records(call_id: int) -> dict[str, Any]:
    """What a call leaves behind, independent of the back-end that carried it."""
    async with db.transaction() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        conversation = await s.get(Conversation, call.conversation_id)
        assert conversation is not None
        tickets = list(await s.scalars(select(Ticket).where(Ticket.conversation_id == conversation.id)))
        path = [(v.node_id, v.outcome) for v in await s.scalars(
            select(IvrNodeVisit).where(IvrNodeVisit.call_id == call.id).order_by(IvrNodeVisit.id))]
        kinds = [e.kind for e in await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                                 .order_by(CallEvent.id))]
    return {"path": path, "events": kinds, "tickets": [(t.type, t.priority) for t in tickets],
            "hangup_by": call.hangup_by, "state": call.state, "customer": call.customer_id,
            "conversation": (conversation.channel, conversation.state, conversation.priority >= EMERGENCY_PRIORITY)}


async def _leak_call_over_sip(number: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, bytes]:
    """baresip calls from ``number``, presses 1 during the welcome menu, hangs up during the instructions.
    Returns the call's id and what baresip heard."""
    low, high = free_rtp_range()
    for key, value in {"SIP_ENABLED": "true", "SIP_PORT": "0", "RTP_PORT_MIN": str(low),
                       "RTP_PORT_MAX": str(high)}.items():
        monkeypatch.setenv(f"GASDESK_{key}", value)
    reset_settings_cache()
    hotline = await start_hotline(get_settings())
    assert hotline.sip is not None
    caller = Baresip(tmp_path / "baresip", user=number)
    caller.home.mkdir()
    await caller.start()
    try:
        assert (await caller.command("dial", f"sip:96777@127.0.0.1:{hotline.sip.port}"))["ok"]
        await caller.wait_event("CALL_ESTABLISHED", 5)
        await asyncio.sleep(1.5)  # the welcome menu is playing
        assert (await caller.command("sndcode", "1"))["ok"]

        async def queued_call() -> Call | None:  # the leak is reported and the call queued at once
            async with db.transaction() as s:
                return await s.scalar(select(Call).where(Call.state == CallState.queued.value))

        call = await _until(queued_call, 8, "the call in the queue")
        await asyncio.sleep(0.5)  # a little of the safety instructions
        assert (await caller.command("hangup"))["ok"]
        await _until(lambda: _ended(call.id), 5, "the call's end")
    finally:
        await caller.stop()
        await hotline.close()
    return call.id, caller.heard()


async def _ended(call_id: int) -> bool:
    async with db.transaction() as s:
        row = await s.get(Call, call_id)
        return row is not None and row.ended_at is not None


async def test_a_caller_presses_1_and_a_leak_ticket_and_emergency_hand_off_exist(
        factory, session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not BARESIP_MODULES.exists():
        pytest.fail("baresip is not installed (scripts/install-test-deps.sh installs it)")
    customer = await factory.customer(phones=["13800001111"])
    await db.commit(session)
    call_id, heard = await _leak_call_over_sip("13800001111", tmp_path, monkeypatch)

    records = await _records(call_id)
    assert records["tickets"] == [("gas_leak", "urgent")]
    assert records["customer"] == customer.id  # the caller's number is on file
    # Handed off to people at emergency priority (queued while the instructions played), closed at the hang-up.
    assert records["conversation"] == ("voice", ConversationState.closed.value, True)
    assert "queued" in records["events"]
    assert [node for node, _ in records["path"][:2]] == ["main", "leak"]
    assert records["path"][0] == ("main", "digit")
    assert records["hangup_by"] == "caller" and records["state"] == CallState.ended.value
    async with db.transaction() as s:
        ticket = await s.scalar(select(Ticket).where(Ticket.type == "gas_leak"))
        assert ticket is not None and ticket.customer_id == customer.id
    # What baresip decoded from our RTP: the spoken menu, then the instructions.
    assert len(heard) >= 8000 * 2 * 1.5
    assert rms(heard) > 300, "the caller heard a spoken prompt, not silence"


async def test_the_same_call_through_freeswitch_gives_the_same_esl_commands_and_records(
        factory, session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not BARESIP_MODULES.exists():
        pytest.fail("baresip is not installed (scripts/install-test-deps.sh installs it)")
    await factory.customer(phones=["13800002222"])
    await factory.customer(phones=["13800003333"], address={"district": "和平区", "community": "幸福里",
                                                            "building": "5", "unit": "1", "room": "202"})
    await db.commit(session)
    sip_call, _ = await _leak_call_over_sip("13800002222", tmp_path, monkeypatch)

    monkeypatch.setenv("GASDESK_SIP_ENABLED", "false")
    monkeypatch.setenv("GASDESK_FREESWITCH_ENABLED", "true")
    monkeypatch.setenv("GASDESK_FREESWITCH_LISTEN_PORT", "0")
    reset_settings_cache()
    hotline = await start_hotline(get_settings())
    assert hotline.freeswitch is not None
    fake = FakeFreeswitch()
    try:
        # The same caller: presses 1 during the menu, hangs up during the safety instructions.
        fs_call = await fake.call("127.0.0.1", hotline.freeswitch.port, CallerScript(
            caller="13800003333", press={"play_and_get_digits#1": "1"}, hangup_at="playback#1"), wait_s=10)
        async with db.transaction() as s:
            row = await s.scalar(select(Call).where(Call.backend == "freeswitch"))
            assert row is not None
        await _until(lambda: _ended(row.id), 5, "the FreeSWITCH call's end")
    finally:
        await fake.close()
        await hotline.close()

    # The exact ESL conversation: answer, the menu with its digit, the instructions until the caller hangs up.
    commands = [re.sub(r"/\S+/prompts/cache/\S+\.wav", "<prompt>", line).replace(fs_call.uuid, "<uuid>")
                for line in fs_call.commands]
    assert commands == [
        "connect", "myevents", "linger 10", "sendmsg execute answer",
        "sendmsg execute play_and_get_digits 1 1 1 6000 none <prompt> silence_stream://250 gasdesk_digits_1 "
        "^[0-9*#]+$ 6000",
        "api uuid_getvar <uuid> gasdesk_digits_1",
        "sendmsg execute set playback_terminators=none",
        "sendmsg execute playback <prompt>",
    ], "\n".join(fs_call.commands)
    sip, fs = await _records(sip_call), await _records(row.id)
    assert sip["customer"] is not None and fs["customer"] is not None
    for record in (sip, fs):
        record.pop("customer")
    assert fs == sip
