"""The broadcast engine (gasdesk/broadcasts/service.py) behind outage notices: the throttled drain at the
configured per-channel rate, the channel each customer is reached on, no second message for the same content,
superseded versions, and the delivery statistics staff see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from gasdesk import clock, db
from gasdesk.audit.service import Actor
from gasdesk.broadcasts.models import BroadcastDelivery
from gasdesk.broadcasts.service import delivery_rows, delivery_stats
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Message
from gasdesk.customers.contacts import do_bind_contact, do_record_inbound_contact
from gasdesk.customers.models import ContactKind, CustomerPhone
from gasdesk.db import commit
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.outages.service import (
    AreaSpec,
    check_outage,
    do_create_outage,
    do_publish_outage,
    do_update_outage,
)
from tests.factories import bot_conversation, wo_actor
from tests.outbound.recording import recording_senders

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai (outside SMS quiet hours)
AREA = AreaSpec(district="和平区", community="幸福里小区")


@pytest.fixture(autouse=True)
def frozen(monkeypatch) -> None:
    clock.set_now(T0)
    monkeypatch.setenv("GASDESK_BROADCAST_SMS_PER_S", "3")
    monkeypatch.setenv("GASDESK_BROADCAST_WECHAT_PER_S", "2")
    reset_settings_cache()


@pytest.fixture
def sent():
    """Both providers as a recording fake (restored afterwards)."""
    yield from recording_senders()


def content(note: str = ""):
    return check_outage(kind="gas", areas=[AREA], starts_at=T0, ends_at=T0 + timedelta(hours=8),
                        reason="管网检修", progress_note=note)


async def _residents(factory, n: int, community: str = "幸福里小区") -> list:
    return [await factory.customer(phones=[f"1390000{i:04d}"], address={
        "district": "和平区", "community": community, "building": str(i % 5 + 1), "unit": "1", "room": "101"})
        for i in range(n)]


async def _publish(session, note: str = "") -> object:
    notice = await do_create_outage(session, wo_actor(), content(note))
    await do_publish_outage(session, wo_actor(), notice)
    await commit(session)
    return notice


async def _tick(seconds: float = 1.0) -> None:
    clock.set_now(clock.utcnow() + timedelta(seconds=seconds))
    await run_due_jobs()


async def test_drain_sends_at_the_configured_rate_once_per_customer(session, factory, sent) -> None:
    residents = await _residents(factory, 7)
    await _residents(factory, 2, community="阳光花园")  # not affected
    await _publish(session)
    await run_due_jobs()
    assert len(sent) == 3  # 3 SMS a second
    await _tick()
    assert len(sent) == 6
    await _tick()
    assert len(sent) == 7
    await _tick()
    await _tick()
    assert len(sent) == 7  # nothing more: the drain stopped
    assert sorted(m.recipient for m in sent) == sorted(r.phones[0].phone for r in residents)
    assert {(m.channel, m.template_key) for m in sent} == {("sms", "outage_notice")}
    assert sent[0].params["area"] == "和平区幸福里小区" and sent[0].params["reason"] == "管网检修"


async def test_each_customer_on_their_channel(session, factory, sent) -> None:
    follower, texter, chatting, nobody = await _residents(factory, 4)
    contact = await do_record_inbound_contact(session, ContactKind.wechat, "oOutageFollower0001")
    await do_bind_contact(session, Actor.system("test", "test"), contact, follower, how="agent")
    for customer in (chatting, nobody):
        await session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == customer.id))
    chat = await bot_conversation(session, customer_id=chatting.id)
    await commit(session)
    notice = await _publish(session)
    await run_due_jobs()
    assert sorted((m.channel, m.recipient) for m in sent) == [("sms", texter.phones[0].phone),
                                                              ("wechat", "oOutageFollower0001")]
    async with db.sessionmaker()() as s:
        posted = list(await s.scalars(select(Message).where(Message.conversation_id == chat.id,
                                                            Message.sender_name == "消息通知")))
        assert len(posted) == 1 and "管网检修" in (posted[0].text or "")
    [stats] = await delivery_stats(session, f"outage:{notice.id}")
    assert stats.total == 4
    assert stats.by_status == {"sent": 2, "posted": 1, "unreachable": 1}
    assert stats.by_channel == {"sms": 1, "wechat": 1, "webchat": 1}
    rows = {r.customer_id: r for r in await delivery_rows(session, f"outage:{notice.id}")}
    assert rows[texter.id].recipient == f"{texter.phones[0].phone[:3]}****{texter.phones[0].phone[-4:]}"
    assert rows[nobody.id].status_label == "无法送达"


async def test_no_second_message_unless_the_content_changed(session, factory, sent) -> None:
    await _residents(factory, 2)
    notice = await _publish(session)
    await run_due_jobs()
    assert len(sent) == 2
    assert await do_update_outage(session, wo_actor(), notice, content()) == 0
    await commit(session)
    await _tick()
    assert len(sent) == 2
    assert await do_update_outage(session, wo_actor(), notice, content(note="抢修延后两小时")) == 2
    await commit(session)
    await _tick()
    assert len(sent) == 4 and all("抢修延后两小时" in m.params["reason"] for m in sent[2:])
    # going back to content already sent sends nothing again
    assert await do_update_outage(session, wo_actor(), notice, content()) == 0


async def test_a_newer_version_supersedes_unsent_messages(session, factory, sent) -> None:
    await _residents(factory, 5)
    notice = await _publish(session)
    await run_due_jobs()
    assert len(sent) == 3  # two of version 1 still wait
    await do_update_outage(session, wo_actor(), notice, content(note="预计 16:00 恢复"))
    await commit(session)
    await _tick()
    await _tick()
    await _tick()
    assert len(sent) == 8  # 3 of version 1, then all 5 of version 2 (the two waiting ones dropped)
    async with db.sessionmaker()() as s:
        statuses = [d.status for d in await s.scalars(select(BroadcastDelivery).order_by(BroadcastDelivery.id))]
    assert statuses.count("superseded") == 2
    stats = await delivery_stats(session, f"outage:{notice.id}")
    assert [v.by_status for v in stats] == [{"sent": 5}, {"sent": 3, "superseded": 2}]


async def test_batch_notices_choose_the_channel_as_one_notice_does(session, factory, sent) -> None:
    from gasdesk.customers.contacts import do_set_opt_out
    from gasdesk.outbound.models import Purpose
    from gasdesk.outbound.notices import do_notify_resident, do_notify_residents

    follower, opted_wechat, opted_sms, phone_only, unfollowed = await _residents(factory, 5)
    actor = Actor.system("test", "test")
    for customer, openid in ((follower, "oFollow000000000001"), (opted_wechat, "oOptedOut0000000002"),
                             (unfollowed, "oUnfollow0000000003")):
        contact = await do_record_inbound_contact(session, ContactKind.wechat, openid)
        await do_bind_contact(session, actor, contact, customer, how="agent")
        if customer is opted_wechat:
            do_set_opt_out(session, actor, contact, True)
        if customer is unfollowed:
            contact.subscribed = False
    sms = await do_record_inbound_contact(session, ContactKind.sms, opted_sms.phones[0].phone)
    do_set_opt_out(session, actor, sms, True)
    await commit(session)
    params = {"reason": "检修", "area": "和平区幸福里小区", "start": "12月07日10:00", "end": "12月07日18:00",
              "hotline": "96777"}
    ids = [c.id for c in (follower, opted_wechat, opted_sms, phone_only, unfollowed)]
    batch = await do_notify_residents(session, customer_ids=ids, purpose=Purpose.outage_notice, params=params,
                                      dedupe_key_of=lambda cid: f"batch:{cid}")
    one_by_one = {cid: await do_notify_resident(session, customer_id=cid, purpose=Purpose.outage_notice,
                                                params=params, dedupe_key=f"single:{cid}") for cid in ids}
    await commit(session)

    def shape(row):
        return (row.channel, row.recipient, row.status, row.reason, row.template_key, row.params)

    assert {cid: shape(row) for cid, row in batch.items()} == {cid: shape(row) for cid, row in one_by_one.items()}
    assert [batch[cid].channel for cid in ids] == ["wechat", "sms", "sms", "sms", "sms"]
    assert batch[opted_sms.id].status == "skipped"
