"""Branches, their own special days, and admin changes to branches (audited). Whether a branch is open
(weekly hours, statutory holidays, the counters' overrides, its own days): ``hours.service.opening_state``."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gasdesk.audit.service import Actor, record_audit
from gasdesk.branches.models import BranchHoliday, ServiceBranch
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import BranchSaved
from gasdesk.events import emit
from gasdesk.opening_hours import check_hours, check_weekly_hours


async def list_branches(session: AsyncSession, district: str | None = None) -> list[ServiceBranch]:
    query = select(ServiceBranch).options(selectinload(ServiceBranch.holidays)).where(ServiceBranch.is_active)
    if district:
        query = query.where(ServiceBranch.district == district)
    return list(await session.scalars(query.order_by(ServiceBranch.district, ServiceBranch.name)))


async def access_branch(session: AsyncSession, branch_id: int) -> ServiceBranch:
    branch = await session.scalar(
        select(ServiceBranch).options(selectinload(ServiceBranch.holidays)).where(ServiceBranch.id == branch_id)
    )
    if branch is None:
        raise NotFound("营业网点不存在", code="branch_not_found")
    return branch


async def do_save_branch(
    session: AsyncSession,
    actor: Actor,
    *,
    branch: ServiceBranch | None,
    name: str,
    district: str,
    address: str,
    phone: str,
    weekly_hours: dict[str, str],
    services: list[str] | None = None,
    is_active: bool = True,
) -> ServiceBranch:
    """Create (branch=None) or update a branch; audited as configuration."""
    name = name.strip()
    if not name or not district.strip() or not address.strip() or not phone.strip():
        raise InvalidInput("网点名称、区、地址和电话都不能为空", code="invalid_branch")
    hours = check_weekly_hours(weekly_hours)
    clash = await session.scalar(select(ServiceBranch).where(ServiceBranch.name == name))
    if clash is not None and clash is not branch:
        raise Conflict(f"网点名称 {name} 已存在", code="branch_name_taken")
    before = branch.snapshot() if branch else None
    if branch is None:
        branch = ServiceBranch(holidays=[])
        session.add(branch)
    branch.name, branch.district, branch.address, branch.phone = name, district.strip(), address.strip(), phone.strip()
    branch.weekly_hours = hours
    branch.services = list(services or [])
    branch.is_active = is_active
    await session.flush()
    record_audit(session, actor, "branch.update" if before else "branch.create", "branch", branch.id,
                 before=before, after=branch.snapshot())
    emit(session, BranchSaved(branch_id=branch.id))
    return branch


async def do_set_holiday(
    session: AsyncSession, actor: Actor, branch: ServiceBranch, day: date, hours: str, note: str
) -> BranchHoliday:
    """Set special hours for one day ("" = closed), replacing any earlier entry for that day."""
    hours = check_hours(hours)
    existing = next((h for h in branch.holidays if h.day == day), None)
    before = {"day": day.isoformat(), "hours": existing.hours, "note": existing.note} if existing else None
    if existing is None:
        existing = BranchHoliday(day=day, hours=hours, note=note.strip()[:60])
        branch.holidays.append(existing)
    else:
        existing.hours, existing.note = hours, note.strip()[:60]
    await session.flush()
    record_audit(session, actor, "branch.holiday", "branch", branch.id, before=before,
                 after={"day": day.isoformat(), "hours": hours, "note": existing.note})
    emit(session, BranchSaved(branch_id=branch.id))
    return existing
