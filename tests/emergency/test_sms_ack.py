"""Acknowledging by SMS: a staff member alerted by SMS replies “QR” through the provider's uplink push."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.channels.sms.callbacks import PROVIDER_ZONE
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Conversation
from gasdesk.db import commit, transaction
from gasdesk.emergency.models import EmergencyEvent
from gasdesk.emergency.service import do_add_duty, do_open_emergency, do_save_policy, do_save_staff_contact
from gasdesk.emergency.sms_ack import ack_keyword
from tests.factories import staff_user

TOKEN = "cb-token-0123456789"
T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
ADMIN = Actor.system("test-admin", "test")
STAFF_PHONE = "13800138066"


@pytest.fixture(autouse=True)
def callback_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SMS_CALLBACK_TOKEN", TOKEN)
    reset_settings_cache()
    clock.set_now(T0)


async def _reply(client: httpx.AsyncClient, text: str, phone: str, sequence_id: int) -> None:
    body = [{"phone_number": phone, "send_time": T0.astimezone(PROVIDER_ZONE).strftime("%Y-%m-%d %H:%M:%S"),
             "content": text, "sign_name": "燃气客服", "dest_code": "1234", "sequence_id": sequence_id}]
    response = await client.post(f"/channels/sms/aliyun/uplink?token={TOKEN}",
                                 content=json.dumps(body, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 200


@pytest.mark.parametrize(("text", "expected"), [("QR", True), (" qr。", True), ("ＱＲ", True), ("确认", True),
                                                 ("1", False), ("QR码", False), ("", False)])
def test_ack_keyword(text: str, expected: bool) -> None:
    assert ack_keyword(text) is expected


async def test_qr_reply_acknowledges_the_event_that_texted_them(client, session) -> None:
    lead = await staff_user(session, "agent")
    await do_add_duty(session, ADMIN, user_id=lead.id, duty_role="shift_lead", starts_at=T0 - timedelta(hours=1),
                      ends_at=T0 + timedelta(hours=1))
    await do_save_staff_contact(session, ADMIN, user_id=lead.id, mobile=STAFF_PHONE, wechat_openid="")
    await do_save_policy(session, ADMIN, 2, [{"duty_roles": ["shift_lead"], "channels": ["sms"], "timeout_min": 5}])
    event_id = (await do_open_emergency(session, ADMIN, source="manual", level=2, title="调压站泄漏")).id
    await commit(session)

    await _reply(client, "收到", STAFF_PHONE, 1)  # not the keyword: an ordinary message, nothing acknowledged
    await _reply(client, "QR", "13900139000", 2)  # the keyword from a number that is nobody's on staff
    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None and event.status == "escalating"
        conversations = int(await s.scalar(select(func.count()).select_from(Conversation)) or 0)
    assert conversations == 2

    await _reply(client, " qr ", STAFF_PHONE, 3)
    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None and event.status == "acknowledged"
        assert event.acknowledged_by_id == lead.id and event.acknowledged_via == "sms"
        # the keyword never reached a conversation
        assert int(await s.scalar(select(func.count()).select_from(Conversation)) or 0) == conversations
