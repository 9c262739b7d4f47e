"""Measure how fast an outage notice queues its affected customers, and how fast the drain hands them on.

Usage: python bench/broadcast.py [--customers 100000] [--others 20000] [--drain 2000] [--database-url URL]

Builds a fresh database with ``--customers`` residents in 和平区 (50 communities, each with an encrypted phone
and building, written in bulk) and ``--others`` elsewhere, then publishes one district-wide gas notice through
``do_create_outage`` + ``do_publish_outage`` (the same calls as the staff page) and prints the time until the
transaction holding every delivery row committed. Then it runs the drain job over ``--drain`` deliveries with
the SMS rate raised to that many per second (the log SMS provider; nothing leaves the machine) and prints the
hand-off rate the engine itself sustains, and how fast one worker then runs the ``outbound.deliver`` jobs with
the log provider (claim, send, record; no network): together, the highest provider rate one worker keeps up with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

BATCH = 5000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=20_000)
    parser.add_argument("--drain", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gasdesk-bench-"))
    os.environ["GASDESK_DATABASE_URL"] = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    os.environ.setdefault("GASDESK_SMS_PROVIDER", "log")
    os.environ["GASDESK_BROADCAST_SMS_PER_S"] = str(max(args.drain, 1))
    os.environ["GASDESK_SMS_QUIET_HOURS"] = ""
    from gasdesk.migrations.runner import upgrade

    upgrade()
    result = asyncio.run(run(args.customers, args.others, args.drain))
    print(result)
    return 0


async def run(affected: int, others: int, drain_n: int) -> str:
    from sqlalchemy import func, select

    from gasdesk.audit.service import Actor
    from gasdesk.broadcasts.models import BroadcastDelivery
    from gasdesk.broadcasts.service import drain
    from gasdesk.clock import utcnow
    from gasdesk.customers.addresses import AddressParts
    from gasdesk.customers.lookup_keys import address_key, name_key, phone_key
    from gasdesk.customers.models import Address, Customer, CustomerPhone
    from gasdesk.db import dispose_engine, table_of, transaction
    from gasdesk.outages.service import AreaSpec, check_outage, do_create_outage, do_publish_outage
    from gasdesk.worker import register_handlers

    register_handlers()
    started = time.perf_counter()
    now = utcnow()
    total = affected + others
    for first in range(0, total, BATCH):
        ids = range(first + 1, min(first + BATCH, total) + 1)
        customers, addresses, phones = [], [], []
        for n in ids:
            district = "和平区" if n <= affected else "朝阳区"
            parts = AddressParts(district=district, community=f"第{n % 50}小区", building=str(n % 30 + 1), unit="1",
                                 room=str(100 + n % 900))
            customers.append({"id": n, "name": f"居民{n}", "name_index": name_key(f"居民{n}"), "tags": [],
                              "created_at": now, "updated_at": now})
            addresses.append({"customer_id": n, "district": district, "street": "", "community": parts.community,
                              "building": parts.building, "unit": parts.unit, "room": parts.room,
                              "normalized_index": address_key(parts)})
            phone = f"139{n:08d}"
            phones.append({"customer_id": n, "phone": phone, "phone_index": phone_key(phone), "is_primary": True})
        async with transaction() as session:
            await session.execute(table_of(Customer).insert(), customers)
            await session.execute(table_of(Address).insert(), addresses)
            await session.execute(table_of(CustomerPhone).insert(), phones)
    setup_s = time.perf_counter() - started

    actor = Actor.system("bench", "bench")
    started = time.perf_counter()
    async with transaction() as session:
        notice = await do_create_outage(session, actor, check_outage(
            kind="gas", areas=[AreaSpec(district="和平区")], starts_at=now, ends_at=now + timedelta(hours=8),
            reason="主干管线抢修"))
        queued = await do_publish_outage(session, actor, notice)
    queue_s = time.perf_counter() - started
    async with transaction() as session:
        stored = int(await session.scalar(select(func.count()).select_from(BroadcastDelivery)) or 0)

    from sqlalchemy import delete

    from gasdesk.broadcasts.service import JOB
    from gasdesk.jobs.models import Job

    async with transaction() as session:  # the drain job queued by the publish: run once, by hand, below
        await session.execute(delete(Job).where(Job.name == JOB))
    started = time.perf_counter()
    async with transaction() as session:
        await drain(session, {})
    drain_s = time.perf_counter() - started
    async with transaction() as session:
        handed = int(await session.scalar(select(func.count()).select_from(BroadcastDelivery)
                                          .where(BroadcastDelivery.status == "handed")) or 0)
    from gasdesk import clock
    from gasdesk.jobs.queue import run_due_jobs
    from gasdesk.outbound.models import OutboundMessage

    clock.set_now(utcnow())  # time stands still: the drain's next tick (a second on) never comes due here
    async with transaction() as session:
        await session.execute(delete(Job).where(Job.name == JOB))
    started = time.perf_counter()
    await run_due_jobs(limit=200)  # the outbound.deliver jobs just queued (log SMS provider: no network)
    send_s = time.perf_counter() - started
    async with transaction() as session:
        sent = int(await session.scalar(select(func.count()).select_from(OutboundMessage)
                                        .where(OutboundMessage.status == "sent")) or 0)
    await dispose_engine()
    return (f"setup: {total:,} customers ({affected:,} affected) written in {setup_s:.1f}s\n"
            f"queued {queued:,} affected customers ({stored:,} delivery rows) in {queue_s:.2f}s "
            f"(publish transaction, committed)\n"
            f"drain: handed {handed:,} deliveries to SMS (outbound rows + jobs) in {drain_s:.2f}s = "
            f"{handed / drain_s:,.0f}/s sustainable hand-off rate\n"
            f"send: one worker ran {sent:,} outbound.deliver jobs (log provider) in {send_s:.2f}s = "
            f"{sent / send_s:,.0f}/s")


if __name__ == "__main__":
    sys.exit(main())
