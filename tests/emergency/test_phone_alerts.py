"""Emergency alerts by phone: queued by the escalation step, placed by the hotline's PhoneAlerts, 1 acknowledges.

End to end over the embedded SIP endpoint with a real phone (baresip on loopback: it answers, hears the spoken
alert, presses 1) and over the fake FreeSWITCH (the exact ESL commands); busy / no answer / no key recorded on
the notification row; with a fake clock, an unanswered call lets escalation move on and an acknowledged one
stops it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.db import commit, transaction
from gasdesk.emergency.models import EmergencyEvent, EmergencyNotification
from gasdesk.emergency.phone import PhoneAlerts, alert_text, queue_phone_alert
from gasdesk.emergency.service import (
    advance_due,
    do_acknowledge,
    do_add_duty,
    do_open_emergency,
    do_save_policy,
    do_save_staff_contact,
    event_views,
    register_phone_alerter,
)
from gasdesk.telephony.freeswitch.fake import CallerScript, FakeFreeswitch
from gasdesk.telephony.freeswitch.originate import FreeswitchDialer
from gasdesk.telephony.originate import OutboundCalls
from gasdesk.telephony.sip.ua import SipDialer, SipEndpoint
from gasdesk.telephony.sip.uac import rms
from gasdesk.telephony.tts import PromptRenderer
from tests.factories import staff_user
from tests.telephony.sip.conftest import Baresip, free_rtp_range
from tests.telephony.telephony_kit import SilentRenderer

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ADMIN = Actor.system("test-admin", "test")
MOBILE_A = "13800138001"
MOBILE_B = "13900139002"


@pytest.fixture(autouse=True)
def outbound_route(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An outbound route is configured (the hook queues phone alerts); each test brings its own back-end."""
    monkeypatch.setenv("GASDESK_SIP_ENABLED", "true")
    monkeypatch.setenv("GASDESK_SIP_OUTBOUND_PROXY", "127.0.0.1:5060")
    reset_settings_cache()
    register_phone_alerter(queue_phone_alert)
    yield
    register_phone_alerter(queue_phone_alert)


@pytest.fixture
async def fake_fs() -> AsyncIterator[FakeFreeswitch]:
    fake = FakeFreeswitch()
    await fake.start_inbound()
    yield fake
    await fake.close()


def _fs_calls(fake: FakeFreeswitch) -> OutboundCalls:
    return OutboundCalls(FreeswitchDialer(host="127.0.0.1", port=fake.port, password=fake.password, gateway="gw1",
                                          command_timeout_s=2.0), max_ring_s=1.0)


async def _world(session: Any, *, b_mobile: str = MOBILE_B) -> dict[str, Any]:
    """A (抢修调度, mobile) is phoned in step 1; B (值班长) by app and phone in step 2; then the path ends."""
    clock.set_now(T0)
    a = await staff_user(session, "agent")
    b = await staff_user(session, "agent")
    for user, role in ((a, "repair_dispatch"), (b, "shift_lead")):
        await do_add_duty(session, ADMIN, user_id=user.id, duty_role=role, starts_at=T0 - timedelta(hours=1),
                          ends_at=T0 + timedelta(hours=12))
    await do_save_staff_contact(session, ADMIN, user_id=a.id, mobile=MOBILE_A, wechat_openid="")
    await do_save_staff_contact(session, ADMIN, user_id=b.id, mobile=b_mobile, wechat_openid="")
    await do_save_policy(session, ADMIN, 2, [
        {"duty_roles": ["repair_dispatch"], "channels": ["phone"], "timeout_min": 5},
        {"duty_roles": ["shift_lead"], "channels": ["in_app", "phone"], "timeout_min": 5, "next_step": None},
    ])
    event = await do_open_emergency(session, ADMIN, source="manual", level=2, title="和平路调压站泄漏")
    await commit(session)
    return {"a": a, "b": b, "event_id": event.id}


async def _phone_rows(event_id: int) -> list[tuple[int, int | None, str, str | None]]:
    async with transaction() as s:
        return [(r.seq, r.user_id, r.status, r.reason) for r in await s.scalars(
            select(EmergencyNotification).where(EmergencyNotification.event_id == event_id,
                                                EmergencyNotification.channel == "phone")
            .order_by(EmergencyNotification.id))]


async def _event(event_id: int) -> EmergencyEvent:
    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None
        return event


async def _place_all(alerts: PhoneAlerts) -> list[str]:
    return list(await asyncio.wait_for(asyncio.gather(*await alerts.run_once()), 15))


async def _acks(event_id: int) -> list[tuple[int | None, str]]:
    async with transaction() as s:
        return [(r.actor_id, r.source) for r in await s.scalars(select(AuditEntry).where(
            AuditEntry.entity_type == "emergency", AuditEntry.entity_id == str(event_id),
            AuditEntry.action == "emergency.acknowledge"))]


async def test_a_real_phone_answers_hears_the_alert_and_presses_1(session, events, tmp_path: Path) -> None:
    world = await _world(session)
    assert await _phone_rows(world["event_id"]) == [(1, world["a"].id, "queued", None)]
    phone = Baresip(tmp_path / "phone", user=MOBILE_A)
    phone.home.mkdir()
    await phone.start()
    low, high = free_rtp_range()
    endpoint = SipEndpoint(lambda s: asyncio.sleep(0), host="127.0.0.1", port=0, rtp_port_min=low,
                           rtp_port_max=high)
    await endpoint.start()
    calls = OutboundCalls(SipDialer(endpoint, f"127.0.0.1:{phone.sip_port}"), max_ring_s=5)
    alerts = PhoneAlerts(calls, PromptRenderer.from_settings(get_settings()))  # the real TTS: audible

    async def answer_and_press_1() -> None:
        await phone.wait_event("CALL_INCOMING", 5)
        assert (await phone.command("accept"))["ok"]
        await phone.wait_event("CALL_ESTABLISHED", 3)
        await asyncio.sleep(0.8)  # hear a good part of the alert first
        assert (await phone.command("sndcode", "1"))["ok"]

    try:
        events.clear()
        person = asyncio.create_task(answer_and_press_1())
        assert await _place_all(alerts) == ["answered"]
        await person
        await phone.wait_event("CALL_CLOSED", 5)
        heard = phone.heard()
    finally:
        await endpoint.stop()
        await phone.stop()

    assert len(heard) > 8000 * 2 * 0.6 and rms(heard) > 300  # the spoken alert reached the phone
    stored = await _event(world["event_id"])
    assert (stored.status, stored.acknowledged_by_id, stored.acknowledged_via) == ("acknowledged", world["a"].id,
                                                                                   "phone")
    assert stored.next_due_at is None
    assert await _phone_rows(world["event_id"]) == [(1, world["a"].id, "answered", "acknowledged")]
    assert await _acks(world["event_id"]) == [(world["a"].id, "phone")]
    assert [e.payload["status"] for e in events if e.type == "emergency.updated"] == ["acknowledged"]
    async with transaction() as s:
        row = await s.scalar(select(EmergencyNotification).where(EmergencyNotification.event_id == world["event_id"]))
        assert row is not None and row.acknowledged_at == T0
        view = (await event_views(s, [await s.get(EmergencyEvent, world["event_id"])]))[0]
    assert [(n["status_label"], n["reason_label"]) for n in view["notifications"]] == [("已接听", "按1确认")]


async def test_the_same_alert_through_freeswitch(session, events, fake_fs: FakeFreeswitch, tmp_path: Path) -> None:
    world = await _world(session)
    fake_fs.callees[MOBILE_A] = CallerScript(press={"play_and_get_digits#1": "1"})
    prompts = SilentRenderer(tmp_path / "prompts")
    events.clear()
    assert await _place_all(PhoneAlerts(_fs_calls(fake_fs), prompts)) == ["answered"]

    call = fake_fs.originated[0]
    await call.wait(2)
    u = call.uuid
    assert fake_fs.inbound_commands[:5] == [
        "auth ********", f"filter Unique-ID {u}", fake_fs.inbound_commands[2],
        "event plain CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE_COMPLETE DTMF "
        "CHANNEL_BRIDGE CHANNEL_UNBRIDGE BACKGROUND_JOB", fake_fs.inbound_commands[4]]
    assert re.fullmatch(r"filter Job-UUID [0-9a-f-]{36}", fake_fs.inbound_commands[2])
    assert fake_fs.inbound_commands[4] == (
        f"bgapi originate {{origination_uuid={u},originate_timeout=1,ignore_early_media=true,"
        f"hangup_after_bridge=true}}sofia/gateway/gw1/{MOBILE_A} &park()")
    alert, confirmed = prompts.texts[0], prompts.texts[1]
    assert alert == alert_text(await _event(world["event_id"])) and "二级" in alert and "按1" in alert
    assert MOBILE_A not in alert
    assert confirmed.startswith("已确认")
    alert_wav, confirmed_wav = (await prompts.render(alert)).path, (await prompts.render(confirmed)).path
    assert call.commands == [
        f"sendmsg execute play_and_get_digits 1 1 1 6000 none {alert_wav} silence_stream://250 gasdesk_digits_1 "
        "^[0-9*#]+$ 6000",
        f"api uuid_getvar {u} gasdesk_digits_1", "sendmsg execute set playback_terminators=none",
        f"sendmsg execute playback {confirmed_wav}", "sendmsg hangup NORMAL_CLEARING"]
    assert (call.hangup_by, call.hangup_cause) == ("system", "NORMAL_CLEARING")
    # the same records as over SIP
    stored = await _event(world["event_id"])
    assert (stored.status, stored.acknowledged_by_id, stored.acknowledged_via) == ("acknowledged", world["a"].id,
                                                                                   "phone")
    assert await _phone_rows(world["event_id"]) == [(1, world["a"].id, "answered", "acknowledged")]
    assert await _acks(world["event_id"]) == [(world["a"].id, "phone")]


@pytest.mark.parametrize(("answer", "reason"), [("busy", "busy"), ("no_answer", "no_answer"), ("reject", "rejected")])
async def test_an_unanswered_alert_lets_escalation_move_on(session, fake_fs: FakeFreeswitch, tmp_path: Path,
                                                           answer: str, reason: str) -> None:
    world = await _world(session)
    a, b, event_id = world["a"], world["b"], world["event_id"]
    fake_fs.callees[MOBILE_A] = CallerScript(answer=answer)
    fake_fs.callees[MOBILE_B] = CallerScript(press={"play_and_get_digits#1": "1"})
    alerts = PhoneAlerts(_fs_calls(fake_fs), SilentRenderer(tmp_path / "prompts"))
    assert await _place_all(alerts) == ["failed"]
    assert await _phone_rows(event_id) == [(1, a.id, "failed", reason)]
    assert (await _event(event_id)).status == "escalating"
    assert fake_fs.originated[0].hangup_cause in ("USER_BUSY", "NO_ANSWER", "CALL_REJECTED")

    clock.set_now(T0 + timedelta(minutes=5))  # step 1's time is up: step 2 (B) is told, by app and phone
    async with transaction() as s:
        assert await advance_due(s) == 1
    assert await _phone_rows(event_id) == [(1, a.id, "failed", reason), (2, b.id, "queued", None)]
    assert await _place_all(alerts) == ["answered"]  # B answers and presses 1
    assert await _phone_rows(event_id) == [(1, a.id, "failed", reason), (2, b.id, "answered", "acknowledged")]
    stored = await _event(event_id)
    assert (stored.status, stored.acknowledged_by_id, stored.seq) == ("acknowledged", b.id, 2)

    clock.set_now(T0 + timedelta(minutes=30))  # acknowledged: escalation has stopped
    async with transaction() as s:
        assert await advance_due(s) == 0
    assert (await _event(event_id)).seq == 2
    assert [c.script.callee for c in fake_fs.originated] == [MOBILE_A, MOBILE_B]


async def test_answered_without_a_key_is_said_twice_then_recorded(session, fake_fs: FakeFreeswitch,
                                                                  tmp_path: Path) -> None:
    world = await _world(session)
    fake_fs.callees[MOBILE_A] = CallerScript()  # answers, presses nothing
    assert await _place_all(PhoneAlerts(_fs_calls(fake_fs), SilentRenderer(tmp_path / "p"),
                                        digit_timeout_s=0.1)) == ["answered"]
    assert await _phone_rows(world["event_id"]) == [(1, world["a"].id, "answered", "no_key")]
    commands = fake_fs.originated[0].commands
    assert sum(c.startswith("sendmsg execute play_and_get_digits") for c in commands) == 2
    assert commands[-1] == "sendmsg hangup NORMAL_CLEARING"
    assert (await _event(world["event_id"])).status == "escalating"  # the timeout moves it on, as for SMS


async def test_nothing_is_dialled_for_an_event_acknowledged_meanwhile(session, fake_fs: FakeFreeswitch,
                                                                      tmp_path: Path) -> None:
    world = await _world(session)
    async with transaction() as s:
        event = await s.get(EmergencyEvent, world["event_id"])
        lead = await staff_user(s, "supervisor")
        assert event is not None
        await do_acknowledge(s, lead, event)
    assert await _place_all(PhoneAlerts(_fs_calls(fake_fs), SilentRenderer(tmp_path / "p"))) == [""]
    assert await _phone_rows(world["event_id"]) == [(1, world["a"].id, "skipped", "event_acknowledged")]
    assert fake_fs.originated == [] and fake_fs.inbound_commands == []


async def test_without_an_outbound_route_or_a_mobile_the_phone_is_unavailable(session, monkeypatch) -> None:
    world = await _world(session, b_mobile="")
    clock.set_now(T0 + timedelta(minutes=5))
    async with transaction() as s:
        assert await advance_due(s) == 1
    assert (await _phone_rows(world["event_id"]))[1] == (2, world["b"].id, "no_contact", "no_mobile")

    monkeypatch.delenv("GASDESK_SIP_OUTBOUND_PROXY")
    reset_settings_cache()
    async with transaction() as s:
        other = await do_open_emergency(s, ADMIN, source="manual", level=2, title="北街泄漏")
    assert await _phone_rows(other.id) == [(1, world["a"].id, "unavailable", "no_outbound_call")]
