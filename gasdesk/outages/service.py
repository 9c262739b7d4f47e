"""Which announced outages affect an area now (or soon), and admin changes to them (audited)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import format_local, utcnow
from gasdesk.customers.addresses import normalize_community, normalize_district
from gasdesk.errors import InvalidInput
from gasdesk.event_types import OutageAnnounced
from gasdesk.events import emit
from gasdesk.outages.models import Outage

KIND_LABELS = {"gas": "停气", "heating": "停暖"}


async def outages_affecting(session: AsyncSession, *, district: str | None, community: str | None = None,
                            kind: str | None = None, now: datetime | None = None,
                            soon: timedelta = timedelta(hours=24)) -> list[Outage]:
    """Published outages in force now or starting within ``soon`` for the area (all areas if no district)."""
    now = now or utcnow()
    query = select(Outage).where(Outage.published.is_(True), Outage.ends_at > now, Outage.starts_at <= now + soon)
    if kind:
        query = query.where(Outage.kind == kind)
    rows = list(await session.scalars(query.order_by(Outage.starts_at)))
    if district:
        wanted = normalize_district(district)
        rows = [o for o in rows if normalize_district(o.district) == wanted]
    if community:
        wanted_c = normalize_community(community)
        rows = [o for o in rows if not o.communities or any(normalize_community(c) == wanted_c for c in o.communities)]
    return rows


def describe(outage: Outage) -> str:
    area = outage.district + ("（" + "、".join(outage.communities) + "）" if outage.communities else "全区")
    return (f"{area}计划{KIND_LABELS.get(outage.kind, '停气')}：{format_local(outage.starts_at)} 至 "
            f"{format_local(outage.ends_at)}" + (f"，原因：{outage.reason}" if outage.reason else ""))


async def do_announce_outage(session: AsyncSession, actor: Actor, *, kind: str, district: str,
                             communities: list[str], starts_at: datetime, ends_at: datetime, reason: str) -> Outage:
    if kind not in KIND_LABELS:
        raise InvalidInput("类型应为 gas（停气）或 heating（停暖）", code="invalid_outage_kind")
    if ends_at <= starts_at:
        raise InvalidInput("结束时间必须晚于开始时间", code="invalid_outage_time")
    if not district.strip():
        raise InvalidInput("请填写区", code="invalid_outage_area")
    outage = Outage(kind=kind, district=district.strip(), communities=[c.strip() for c in communities if c.strip()],
                    starts_at=starts_at, ends_at=ends_at, reason=reason.strip()[:200], published=True)
    session.add(outage)
    await session.flush()
    record_audit(session, actor, "config.outage", "config", f"outage:{outage.id}", after={"text": describe(outage)})
    emit(session, OutageAnnounced(outage_id=outage.id, district=outage.district, kind=kind))
    return outage
