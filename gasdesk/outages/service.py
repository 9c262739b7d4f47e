"""Outage and incident notices: their life cycle (draft → published → updated → closed, each change audited),
which notices concern an address or a customer (the bot, the IVR and the agent console ask), and which
customers a notice affects (set-based, for the broadcast).

Content that residents read has a hash (``content_hash``): publishing queues a broadcast of that content to
every affected customer; an update whose content changed raises the version and queues the new content
(the old version's messages not yet sent are superseded); an update that changes nothing residents read
queues nothing. Closing broadcasts the restoration.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gasdesk.audit.service import Actor, record_audit
from gasdesk.broadcasts.service import CustomerSource, do_queue_broadcast, supersede_older
from gasdesk.clock import as_utc, format_local, utcnow
from gasdesk.config import get_settings
from gasdesk.customers.addresses import AddressParts, normalize_community, normalize_district
from gasdesk.customers.lookup_keys import account_no_key
from gasdesk.customers.models import Account, Address
from gasdesk.customers.validation import normalize_account_no
from gasdesk.db import table_of
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import OutageAnnounced, OutageClosed, OutageUpdated
from gasdesk.events import emit
from gasdesk.outages.models import (
    ACTIVE_STATUSES,
    KIND_LABELS,
    Outage,
    OutageArea,
    OutageCustomer,
    OutageNotice,
    OutageStatus,
)
from gasdesk.outbound.models import Purpose

__all__ = ["KIND_LABELS", "Outage"]

MAX_AREAS = 200
# An imported customer list: at most this many 户号 (a district-wide outage is targeted by area instead).
MAX_IMPORTED_CUSTOMERS = 100_000
_LOOKUP_CHUNK = 500
_ACCOUNT_NO_MAX = 20


@dataclass(frozen=True)
class AreaSpec:
    """One targeted area as staff enter it; a blank level covers the whole level above."""

    district: str = ""
    street: str = ""
    community: str = ""
    building: str = ""


@dataclass(frozen=True)
class OutageContent:
    """A notice's content (``check_outage``)."""

    kind: str
    planned: bool
    title: str
    areas: tuple[AreaSpec, ...]
    starts_at: datetime
    ends_at: datetime
    expected_restore_at: datetime | None
    reason: str
    progress_note: str


def normalize_building(building: str | None) -> str:
    """"3号楼", "三栋", "03" → "3" (the same rule as the address index)."""
    return AddressParts(district="", community="", building=building or "").normalized_key().split("|")[2]


def check_outage(*, kind: str, planned: bool = True, title: str = "", areas: Iterable[AreaSpec],
                 starts_at: datetime, ends_at: datetime, expected_restore_at: datetime | None = None,
                 reason: str = "", progress_note: str = "") -> OutageContent:
    """Validate a notice's content: kind, a window that ends after it starts, 1–200 areas each naming at least
    a district or a community (a building needs its community)."""
    if kind not in KIND_LABELS:
        raise InvalidInput("类型应为 gas（停气）或 heating（停暖）", code="invalid_outage_kind")
    if ends_at <= starts_at:
        raise InvalidInput("结束时间必须晚于开始时间", code="invalid_outage_time")
    if expected_restore_at is not None and expected_restore_at < starts_at:
        raise InvalidInput("预计恢复时间不能早于开始时间", code="invalid_outage_time")
    cleaned: list[AreaSpec] = []
    for area in areas:
        spec = AreaSpec(district=area.district.strip()[:40], street=area.street.strip()[:60],
                        community=area.community.strip()[:80], building=normalize_building(area.building)[:20])
        if not (spec.district or spec.street or spec.community or spec.building):
            continue  # an empty row of the form
        if not (spec.district or spec.community):
            raise InvalidInput("每个区域至少要填写区或小区", code="invalid_outage_area")
        if spec.building and not spec.community:
            raise InvalidInput("按楼栋发布时须填写小区", code="invalid_outage_area")
        if spec not in cleaned:
            cleaned.append(spec)
    if len(cleaned) > MAX_AREAS:
        raise InvalidInput(f"区域最多 {MAX_AREAS} 个", code="invalid_outage_area")
    return OutageContent(kind=kind, planned=bool(planned), title=title.strip()[:80], areas=tuple(cleaned),
                         starts_at=starts_at, ends_at=ends_at, expected_restore_at=expected_restore_at,
                         reason=reason.strip()[:200], progress_note=progress_note.strip()[:300])


# ---------------------------------------------------------------- reading


def area_text(notice: OutageNotice) -> str:
    """The areas as residents read them: 和平区幸福里小区3号楼、和平区全区."""
    parts = []
    for area in notice.areas:
        text = area.district + area.street + area.community + (f"{area.building}号楼" if area.building else "")
        if not (area.street or area.community):
            text += "全区"
        parts.append(text)
    if not parts:
        return "部分用户" if notice.district == "" else notice.district + (
            "（" + "、".join(notice.communities) + "）" if notice.communities else "全区")
    shown = "、".join(parts[:5])
    return shown + (f"等 {len(parts)} 个区域" if len(parts) > 5 else "")


def describe(notice: OutageNotice) -> str:
    """The notice as residents read it (bot, IVR, web chat, WeChat preview)."""
    label = KIND_LABELS.get(notice.kind, "停气")
    supply = "供气" if notice.kind == "gas" else "供暖"
    area = area_text(notice)
    if notice.status == OutageStatus.closed.value:
        return f"{area}{label}已结束，已恢复{supply}" + (f"：{notice.progress_note}" if notice.progress_note else "。")
    text = (f"{area}{'计划' if notice.planned else '突发'}{label}：{format_local(notice.starts_at)} 至 "
            f"{format_local(notice.ends_at)}")
    if notice.reason:
        text += f"，原因：{notice.reason}"
    if notice.expected_restore_at is not None:
        text += f"，预计 {format_local(notice.expected_restore_at)} 恢复{supply}"
    if notice.progress_note:
        text += f"。最新进展：{notice.progress_note}"
    return text


def content_hash(notice: OutageNotice) -> str:
    """A digest of everything residents read (not the status word 已发布/已更新, not internal fields)."""
    content = {"kind": notice.kind, "planned": notice.planned, "title": notice.title,
               "closed": notice.status == OutageStatus.closed.value,
               "areas": sorted([a.district, a.street, a.community, a.building] for a in notice.areas),
               "window": [as_utc(notice.starts_at).isoformat(), as_utc(notice.ends_at).isoformat()],
               "restore": as_utc(notice.expected_restore_at).isoformat() if notice.expected_restore_at else None,
               "reason": notice.reason, "note": notice.progress_note}
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _same(wanted: str, given: str | None, normalize: object = None) -> bool | None:
    """True/False when both are known; None when the resident's level is unknown."""
    if not wanted:
        return True
    if not given:
        return None
    norm = normalize if callable(normalize) else (lambda s: s.strip())
    return bool(norm(wanted) == norm(given))


def area_matches(area: OutageArea | AreaSpec, *, district: str | None, street: str | None = None,
                 community: str | None = None, building: str | None = None, exact: bool = False) -> bool:
    """Whether an address lies in the area. A level the caller does not know (None) does not exclude the area
    unless ``exact`` (a broadcast must be sure; an answer to a resident had better mention a possible notice)."""
    checks = [_same(area.district, district, normalize_district),
              _same(area.community, community, normalize_community),
              _same(area.building, normalize_building(building) if building else None)]
    street_check = _same(area.street, street)
    if street_check is False or (street_check is None and not area.community and exact):
        return False
    if any(c is False for c in checks):
        return False
    return not (exact and any(c is None for c in checks))


async def _active(session: AsyncSession, *, kind: str | None, now: datetime, soon: timedelta) -> list[OutageNotice]:
    query = select(OutageNotice).where(OutageNotice.status.in_(ACTIVE_STATUSES), OutageNotice.ends_at > now,
                                       OutageNotice.starts_at <= now + soon)
    if kind:
        query = query.where(OutageNotice.kind == kind)
    return list(await session.scalars(query.order_by(OutageNotice.starts_at, OutageNotice.id)))


async def outages_affecting(session: AsyncSession, *, district: str | None, community: str | None = None,
                            kind: str | None = None, now: datetime | None = None,
                            soon: timedelta = timedelta(hours=24), street: str | None = None,
                            building: str | None = None, customer_id: int | None = None) -> list[OutageNotice]:
    """Published notices in force now or starting within ``soon`` that concern the address (down to the
    building) or the customer (on an imported list); every one of them when neither is given."""
    rows = await _active(session, kind=kind, now=now or utcnow(), soon=soon)
    if district is None and community is None and customer_id is None:
        return rows
    listed: set[int] = set()
    if customer_id is not None and rows:
        listed = set(await session.scalars(select(OutageCustomer.outage_id).where(
            OutageCustomer.customer_id == customer_id, OutageCustomer.outage_id.in_([o.id for o in rows]))))
    found = []
    for notice in rows:
        if notice.id in listed or ((district is not None or community is not None) and any(
                area_matches(a, district=district, street=street, community=community, building=building)
                for a in notice.areas)):
            found.append(notice)
    return found


async def notices_for_customer(session: AsyncSession, customer_id: int, *, kind: str | None = None,
                               now: datetime | None = None) -> list[OutageNotice]:
    """Active notices for any of the customer's addresses (down to the building) or listing the customer."""
    addresses = list(await session.scalars(select(Address).where(Address.customer_id == customer_id)
                                           .order_by(Address.id)))
    found: dict[int, OutageNotice] = {}
    for notice in await outages_affecting(session, district=None, kind=kind, now=now, customer_id=customer_id):
        found[notice.id] = notice
    rows = await _active(session, kind=kind, now=now or utcnow(), soon=timedelta(hours=24))
    for notice in rows:
        if notice.id in found:
            continue
        for address in addresses:
            if any(area_matches(a, district=address.district, street=address.street or None,
                                community=address.community, building=address.building or None, exact=True)
                   for a in notice.areas):
                found[notice.id] = notice
                break
    return sorted(found.values(), key=lambda o: (o.starts_at, o.id))


async def access_outage(session: AsyncSession, outage_id: int) -> OutageNotice:
    """A notice by id (staff only reach this behind their role check)."""
    notice = await session.get(OutageNotice, outage_id)
    if notice is None:
        raise NotFound("公告不存在", code="outage_not_found")
    return notice


async def list_outages(session: AsyncSession, *, status: str | None = None, limit: int = 200) -> list[OutageNotice]:
    """Notices, newest first (optionally of one status)."""
    query = select(OutageNotice)
    if status:
        query = query.where(OutageNotice.status == status)
    return list(await session.scalars(query.order_by(OutageNotice.id.desc()).limit(limit)))


async def imported_count(session: AsyncSession, notice: OutageNotice) -> int:
    """How many customers the notice's imported list holds."""
    rows = await session.scalars(select(OutageCustomer.id).where(OutageCustomer.outage_id == notice.id))
    return len(list(rows))


# ---------------------------------------------------------------- who is affected (set-based)


async def _raw_values(session: AsyncSession, column: InstrumentedAttribute[str], wanted: str,
                      normalize: Callable[[str], str]) -> list[str]:
    """Every stored spelling of a district/community that normalises like ``wanted`` ("和平区", "和平")."""
    stored = await session.scalars(select(column).distinct())
    return [value for value in stored if value is not None and normalize(value) == normalize(wanted)]


async def affected_sources(session: AsyncSession, notice: OutageNotice) -> tuple[list[Select[Any]], set[int]]:
    """Who the notice affects: SELECTs of customer ids (areas without a building, the imported list) that the
    broadcast inserts from directly, plus the ids of building-level areas (the building is encrypted, so those
    addresses are read — one community at a time — and compared here)."""
    selects: list[Select[Any]] = [select(OutageCustomer.customer_id).where(OutageCustomer.outage_id == notice.id)]
    by_building: set[int] = set()
    for area in notice.areas:
        query = select(Address.customer_id)
        if area.district:
            query = query.where(Address.district.in_(await _raw_values(session, Address.district, area.district,
                                                                       normalize_district)))
        if area.community:
            query = query.where(Address.community.in_(await _raw_values(session, Address.community, area.community,
                                                                        normalize_community)))
        if area.street:
            query = query.where(Address.street == area.street)
        if not area.building:
            selects.append(query)
            continue
        rows = await session.execute(select(Address.customer_id, Address.building)
                                     .where(Address.id.in_(query.with_only_columns(Address.id).scalar_subquery())))
        by_building.update(cid for cid, building in rows if normalize_building(building) == area.building)
    return selects, by_building


# ---------------------------------------------------------------- changes


def _apply(notice: OutageNotice, content: OutageContent) -> None:
    notice.kind, notice.planned, notice.title = content.kind, content.planned, content.title
    notice.starts_at, notice.ends_at = content.starts_at, content.ends_at
    notice.expected_restore_at = content.expected_restore_at
    notice.reason, notice.progress_note = content.reason, content.progress_note
    notice.areas = [OutageArea(district=a.district, street=a.street, community=a.community, building=a.building)
                    for a in content.areas]
    notice.district = next((a.district for a in content.areas if a.district), "")
    notice.communities = sorted({a.community for a in content.areas if a.community})[:100]


def _snapshot(notice: OutageNotice) -> dict[str, object]:
    return {"status": notice.status, "version": notice.version, "kind": notice.kind, "planned": notice.planned,
            "text": describe(notice)[:500], "areas": len(notice.areas)}


def _purpose(notice: OutageNotice) -> Purpose:
    if notice.status == OutageStatus.closed.value:
        return Purpose.outage_restored
    return Purpose.outage_notice if notice.kind == "gas" else Purpose.heating_notice


def _params(notice: OutageNotice) -> dict[str, str]:
    """The notice's message parameters (every channel's template takes what it needs)."""
    supply = "供气" if notice.kind == "gas" else "供暖"
    reason = notice.reason or ("计划检修" if notice.planned else "突发故障")
    if notice.progress_note and notice.status != OutageStatus.closed.value:
        reason = f"{reason}（{notice.progress_note}）"
    end = notice.expected_restore_at or notice.ends_at
    return {"title": notice.title or f"{KIND_LABELS.get(notice.kind, '停气')}通知", "reason": reason,
            "area": area_text(notice), "start": format_local(notice.starts_at, "%m月%d日%H:%M"),
            "end": format_local(end, "%m月%d日%H:%M"), "service": supply,
            "time": format_local(notice.closed_at or utcnow(), "%m月%d日%H:%M"),
            "hotline": get_settings().service_hotline, "text": describe(notice)}


async def _broadcast(session: AsyncSession, notice: OutageNotice) -> int:
    subject = f"outage:{notice.id}"
    selects, ids = await affected_sources(session, notice)
    queued = await do_queue_broadcast(session, subject=subject, content_hash=notice.content_hash,
                                      purpose=_purpose(notice), params=_params(notice), text=describe(notice),
                                      sources=CustomerSource(selects=selects, ids=ids))
    await supersede_older(session, subject=subject, keep_hash=notice.content_hash)
    return queued


async def do_create_outage(session: AsyncSession, actor: Actor, content: OutageContent) -> OutageNotice:
    """A new draft notice (residents see nothing until it is published)."""
    notice = OutageNotice(status=OutageStatus.draft.value, published=False, version=0, content_hash="",
                          created_by=actor.user_id)
    _apply(notice, content)
    session.add(notice)
    await session.flush()
    record_audit(session, actor, "outage.create", "outage", notice.id, after=_snapshot(notice))
    return notice


async def do_edit_draft(session: AsyncSession, actor: Actor, notice: OutageNotice,
                        content: OutageContent) -> OutageNotice:
    """Change a draft's content (a published notice changes through ``do_update_outage``)."""
    if notice.status != OutageStatus.draft.value:
        raise Conflict("已发布的公告请使用“更新”", code="outage_not_draft")
    before = _snapshot(notice)
    _apply(notice, content)
    await session.flush()
    record_audit(session, actor, "outage.edit", "outage", notice.id, before=before, after=_snapshot(notice))
    return notice


async def do_publish_outage(session: AsyncSession, actor: Actor, notice: OutageNotice) -> int:
    """Publish a draft: residents asking see it at once, and every affected customer is queued for a message.
    Returns how many deliveries were queued."""
    if notice.status != OutageStatus.draft.value:
        raise Conflict("只有草稿可以发布", code="outage_not_draft")
    if not notice.areas and not await imported_count(session, notice):
        raise InvalidInput("请至少填写一个区域或导入用户名单", code="invalid_outage_area")
    before = _snapshot(notice)
    notice.status, notice.published, notice.version = OutageStatus.published.value, True, 1
    notice.published_at = utcnow()
    notice.content_hash = content_hash(notice)
    await session.flush()
    queued = await _broadcast(session, notice)
    record_audit(session, actor, "outage.publish", "outage", notice.id, before=before,
                 after={**_snapshot(notice), "queued": queued})
    emit(session, OutageAnnounced(outage_id=notice.id, district=notice.district, kind=notice.kind))
    return queued


async def do_update_outage(session: AsyncSession, actor: Actor, notice: OutageNotice,
                           content: OutageContent) -> int:
    """Change a published notice (new window, restoration time, progress note, areas). When what residents
    read changed, the version rises and the new content is queued for every affected customer (nothing for
    those who already got this exact content); otherwise nothing is sent. Returns the deliveries queued."""
    if notice.status not in ACTIVE_STATUSES:
        raise Conflict("只有已发布的公告可以更新", code="outage_not_published")
    before = _snapshot(notice)
    _apply(notice, content)
    await session.flush()
    new_hash = content_hash(notice)
    queued = 0
    if new_hash != notice.content_hash:
        notice.content_hash, notice.version, notice.status = new_hash, notice.version + 1, OutageStatus.updated.value
        await session.flush()
        queued = await _broadcast(session, notice)
        emit(session, OutageUpdated(outage_id=notice.id, kind=notice.kind, version=notice.version))
    record_audit(session, actor, "outage.update", "outage", notice.id, before=before,
                 after={**_snapshot(notice), "queued": queued})
    return queued


async def do_close_outage(session: AsyncSession, actor: Actor, notice: OutageNotice, *, note: str = "") -> int:
    """Supply is back (or the notice is withdrawn): residents asking no longer hear it, queued messages of
    older content are superseded, and the affected customers are told it is over. Returns deliveries queued."""
    if notice.status not in ACTIVE_STATUSES:
        raise Conflict("只有已发布的公告可以结束", code="outage_not_published")
    before = _snapshot(notice)
    notice.status, notice.published, notice.closed_at = OutageStatus.closed.value, False, utcnow()
    notice.progress_note = note.strip()[:300]
    notice.content_hash, notice.version = content_hash(notice), notice.version + 1
    await session.flush()
    queued = await _broadcast(session, notice)
    record_audit(session, actor, "outage.close", "outage", notice.id, before=before,
                 after={**_snapshot(notice), "queued": queued})
    emit(session, OutageClosed(outage_id=notice.id, kind=notice.kind))
    return queued


@dataclass(frozen=True)
class ImportResult:
    matched: int  # customers now on the list
    unknown: int  # 户号 with no account here
    invalid: list[str]  # rejected lines (first few), as "line N: reason"
    queued: int = 0  # deliveries queued for customers new to a published notice


def parse_account_list(text: str) -> tuple[list[str], list[str]]:
    """A CSV (or one 户号 a line): the first column of each row; a header row and blank lines are skipped.
    Returns (户号, the first rejected lines). Raises InvalidInput beyond the cap."""
    numbers: list[str] = []
    invalid: list[str] = []
    seen: set[str] = set()
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip():
            continue
        value = normalize_account_no(row[0])
        if not value.isalnum() or not (6 <= len(value) <= _ACCOUNT_NO_MAX):
            if line_no == 1:
                continue  # a header (户号, account_no…)
            if len(invalid) < 20:
                invalid.append(f"第 {line_no} 行：{row[0][:24]!r} 不是有效户号")
            continue
        if value not in seen:
            seen.add(value)
            numbers.append(value)
        if len(numbers) > MAX_IMPORTED_CUSTOMERS:
            raise InvalidInput(f"名单最多 {MAX_IMPORTED_CUSTOMERS} 个户号，请按区域发布", code="outage_list_too_long")
    return numbers, invalid


async def do_import_outage_customers(session: AsyncSession, actor: Actor, notice: OutageNotice,
                                     text: str) -> ImportResult:
    """Replace the notice's imported customer list with the customers of these 户号 (validated, capped). On a
    published notice, the customers new to it are queued for the current content."""
    if notice.status == OutageStatus.closed.value:
        raise Conflict("已结束的公告不能导入名单", code="outage_closed")
    numbers, invalid = parse_account_list(text)
    customer_ids: set[int] = set()
    matched_accounts = 0
    for start in range(0, len(numbers), _LOOKUP_CHUNK):
        keys = [account_no_key(n) for n in numbers[start:start + _LOOKUP_CHUNK]]
        owners = list(await session.scalars(select(Account.customer_id).where(Account.account_no_index.in_(keys))))
        matched_accounts += len(owners)
        customer_ids.update(owners)
    await session.execute(table_of(OutageCustomer).delete().where(OutageCustomer.outage_id == notice.id))
    if customer_ids:
        await session.execute(table_of(OutageCustomer).insert(),
                              [{"outage_id": notice.id, "customer_id": cid} for cid in sorted(customer_ids)])
    queued = await _broadcast(session, notice) if notice.status in ACTIVE_STATUSES else 0
    result = ImportResult(matched=len(customer_ids), unknown=len(numbers) - matched_accounts, invalid=invalid,
                          queued=queued)
    record_audit(session, actor, "outage.import_customers", "outage", notice.id,
                 after={"numbers": len(numbers), "matched": result.matched, "unknown": result.unknown,
                        "invalid": len(invalid), "queued": queued})
    return result


async def do_announce_outage(session: AsyncSession, actor: Actor, *, kind: str, district: str,
                             communities: list[str], starts_at: datetime, ends_at: datetime, reason: str) -> Outage:
    """Create and publish a notice for a district (optionally some of its communities) in one step (the
    original API)."""
    if not district.strip():
        raise InvalidInput("请填写区", code="invalid_outage_area")
    areas = [AreaSpec(district=district, community=c) for c in communities if c.strip()] or [AreaSpec(district=district)]
    content = check_outage(kind=kind, areas=areas, starts_at=starts_at, ends_at=ends_at, reason=reason)
    notice = await do_create_outage(session, actor, content)
    await do_publish_outage(session, actor, notice)
    record_audit(session, actor, "config.outage", "config", f"outage:{notice.id}", after={"text": describe(notice)})
    return notice
