"""回拨 placed by gasdesk: with an outbound route in this process, the console's 回拨 calls the resident (the fake
FreeSWITCH, real ESL protocol) and bridges them to the agent's endpoint; the number stays masked. Without one,
the agent gets the number and dials it themselves, as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from sqlalchemy import select

from gasdesk import db
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.callbacks import originate as placed
from gasdesk.callbacks import service as callbacks
from gasdesk.conversations import service
from gasdesk.conversations.models import Message
from gasdesk.db import commit
from gasdesk.telephony.freeswitch.fake import CallerScript, FakeFreeswitch
from gasdesk.telephony.freeswitch.originate import FreeswitchDialer
from gasdesk.telephony.models import Call, CallEvent
from gasdesk.telephony.originate import OutboundCalls, set_outbound
from gasdesk.telephony.sip.ua import SipDialer, SipEndpoint
from gasdesk.telephony.sip.uac import rms
from gasdesk.telephony.softphone import WebRtcBridgeProvider
from tests.factories import desk_agent, login, queued_conversation
from tests.telephony.sip.conftest import Baresip, dominant_hz, free_rtp_range
from tests.telephony.softphone_kit import FakeBrowser

RESIDENT = Actor.system("resident", "webchat")
NUMBER = "13900002222"


@pytest.fixture
async def fake_fs() -> AsyncIterator[FakeFreeswitch]:
    fake = FakeFreeswitch()
    await fake.start_inbound()
    yield fake
    set_outbound(None)
    await fake.close()


async def _accepted_callback(session: Any, factory: Any) -> tuple[Any, int, int]:
    """An agent who has accepted a booked callback: (agent, callback id, conversation id)."""
    agent = await desk_agent(factory, max_concurrent=1)
    busy = await queued_conversation(session)  # takes the agent's only slot
    conversation = await queued_conversation(session)
    booked = await callbacks.do_request_callback(session, RESIDENT, conversation, NUMBER)
    await commit(session)
    await service.do_close(session, busy, by="agent", user=agent)  # the agent frees up: the callback is offered
    await commit(session)
    await session.refresh(conversation)
    assert conversation.agent_id == agent.id
    await service.do_accept(session, agent, conversation)
    await commit(session)
    return agent, booked.callback.id, conversation.id


async def _dial(client: Any, agent: Any, callback_id: int) -> dict[str, Any]:
    await login(client, agent.username)
    response = await client.post(f"/api/v1/callbacks/{callback_id}/dial")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _wait_tasks() -> None:
    await asyncio.wait_for(asyncio.gather(*placed._running, return_exceptions=True), 5)


async def test_gasdesk_calls_the_resident_and_bridges_the_agent(client, session, factory,
                                                                fake_fs: FakeFreeswitch) -> None:
    agent, callback_id, conversation_id = await _accepted_callback(session, factory)
    fake_fs.callees[NUMBER] = CallerScript(agent_hangup_after_s=0.1)  # answers; the agent ends the talk
    set_outbound(OutboundCalls(FreeswitchDialer(host="127.0.0.1", port=fake_fs.port, password=fake_fs.password,
                                                gateway="trunk", command_timeout_s=2.0), max_ring_s=2))
    body = await _dial(client, agent, callback_id)
    assert body == {"callback_id": callback_id, "phone": "139****2222", "originated": True}
    await _wait_tasks()

    call = fake_fs.originated[0]
    assert call.dialled == f"sofia/gateway/trunk/{NUMBER}"
    assert call.commands == ["sendmsg execute set hangup_after_bridge=true", f"sendmsg execute bridge user/{agent.id}"]
    assert call.hangup_by == "agent"
    async with db.sessionmaker()() as s:
        row = await s.scalar(select(Call).where(Call.conversation_id == conversation_id))
        assert row is not None
        assert (row.backend, row.call_ref, row.caller, row.agent_id, row.hangup_by) == (
            "freeswitch", call.uuid, NUMBER, agent.id, "agent")
        assert row.state == "ended" and row.connected_at is not None and row.talk_s is not None
        kinds = list(await s.scalars(select(CallEvent.kind).where(CallEvent.call_id == row.id).order_by(CallEvent.id)))
        assert kinds == ["answered", "bridged", "hung_up"]
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "callback.dial"))
        assert audit is not None and audit.actor_id == agent.id and audit.changes is not None
        assert audit.changes["after"]["originated"] is True
        # the callback stays open for the agent's outcome, as when they dial themselves
        left = await callbacks.open_callback(s, conversation_id)
        assert left is not None and left.id == callback_id


async def test_a_busy_resident_is_noted_in_the_conversation(client, session, factory, fake_fs: FakeFreeswitch) -> None:
    agent, callback_id, conversation_id = await _accepted_callback(session, factory)
    fake_fs.callees[NUMBER] = CallerScript(answer="busy")
    set_outbound(OutboundCalls(FreeswitchDialer(host="127.0.0.1", port=fake_fs.port, password=fake_fs.password,
                                                gateway="trunk", command_timeout_s=2.0)))
    assert (await _dial(client, agent, callback_id))["originated"] is True
    await _wait_tasks()
    async with db.sessionmaker()() as s:
        texts = [m.text for m in await s.scalars(select(Message).where(Message.conversation_id == conversation_id))]
        assert any("自动回拨未接通（对方占线）" in (t or "") for t in texts)
        assert await s.scalar(select(Call).where(Call.conversation_id == conversation_id)) is None
    assert fake_fs.originated[0].hangup_cause == "USER_BUSY"


async def test_without_an_outbound_route_the_agent_dials_themselves(client, session, factory) -> None:
    set_outbound(None)
    agent, callback_id, _ = await _accepted_callback(session, factory)
    assert await _dial(client, agent, callback_id) == {"callback_id": callback_id, "phone": NUMBER,
                                                       "originated": False}


async def test_embedded_sip_bridges_the_resident_to_the_agents_browser_softphone(session, factory,
                                                                                 tmp_path: Path) -> None:
    """One-process mode: baresip is the resident's phone (a 440 Hz tone as its voice), aiortc the agent's
    browser (a 600 Hz tone): gasdesk calls the resident, rings the softphone, and audio crosses both ways."""
    agent, callback_id, conversation_id = await _accepted_callback(session, factory)
    phone = Baresip(tmp_path / "resident", user=NUMBER)
    phone.home.mkdir()
    await phone.start()
    softphone = WebRtcBridgeProvider()
    softphone.install()
    low, high = free_rtp_range()
    endpoint = SipEndpoint(lambda s: asyncio.sleep(0), host="127.0.0.1", port=0, rtp_port_min=low,
                           rtp_port_max=high, bridge_provider=softphone)
    await endpoint.start()
    calls = OutboundCalls(SipDialer(endpoint, f"127.0.0.1:{phone.sip_port}"), max_ring_s=5)
    browser = FakeBrowser()
    try:
        placing = asyncio.create_task(placed.place_callback(calls, callback_id=callback_id, agent_id=agent.id))
        await phone.wait_event("CALL_INCOMING", 5)
        assert (await phone.command("accept"))["ok"]
        for _ in range(250):  # the softphone rings once the resident answered
            if softphone.legs:
                break
            await asyncio.sleep(0.02)
        (call_id, leg), = softphone.legs.items()
        assert leg.agent_id == agent.id
        answer = await asyncio.wait_for(leg.answer(await browser.offer()), 10)
        await browser.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(leg.wait_answered(), 10)
        await asyncio.sleep(1.2)  # they talk
        assert rms(bytes(browser.heard)) > 1000, "the resident's voice reached the agent's browser"
        assert leg.frames_from_agent > 10, "the agent's voice went towards the resident"
        assert (await phone.command("hangup"))["ok"]  # the resident hangs up
        assert await asyncio.wait_for(placing, 5) == "talked"
        await phone.wait_event("CALL_CLOSED", 3)
        heard = phone.heard()
        assert rms(heard) > 500 and abs(dominant_hz(heard) - 600.0) < 30, "the agent's voice reached the resident"
    finally:
        await browser.close()
        await endpoint.stop()
        await softphone.close()
        await phone.stop()
    async with db.sessionmaker()() as s:
        row = await s.get(Call, call_id)
        assert row is not None and row.conversation_id == conversation_id
        assert (row.backend, row.caller, row.agent_id, row.hangup_by, row.state) == ("sip", NUMBER, agent.id,
                                                                                     "caller", "ended")
