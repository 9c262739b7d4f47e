from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, Role
from gasdesk.branches import service
from gasdesk.branches.models import ServiceBranch
from gasdesk.branches.schemas import BranchIn, BranchOut, HolidayIn, HolidayOut
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.hours.service import opening_state

router = APIRouter(prefix="/api/v1/branches", tags=["branches"])


async def branch_out(session: AsyncSession, branch: ServiceBranch) -> BranchOut:
    status = await opening_state(session, branch)
    return BranchOut(
        id=branch.id, name=branch.name, district=branch.district, address=branch.address, phone=branch.phone,
        weekly_hours=branch.weekly_hours, services=branch.services,
        holidays=[HolidayOut(day=h.day, hours=h.hours, note=h.note) for h in branch.holidays],
        open_now=status.is_open, hours_today=status.hours_today,
    )


@router.get("", response_model=list[BranchOut])
async def list_branches(session: DbSession, district: str | None = None, _: User = allow(*ALL_ROLES)) -> list[BranchOut]:
    return [await branch_out(session, b) for b in await service.list_branches(session, district)]


@router.post("", response_model=BranchOut, status_code=201)
async def create_branch(body: BranchIn, session: DbSession, admin: User = allow(Role.admin)) -> BranchOut:
    branch = await service.do_save_branch(session, Actor.of(admin, "api"), branch=None, **body.model_dump())
    return await branch_out(session, branch)


@router.put("/{branch_id}", response_model=BranchOut)
async def update_branch(branch_id: Id, body: BranchIn, session: DbSession, admin: User = allow(Role.admin)) -> BranchOut:
    branch = await service.access_branch(session, branch_id)
    branch = await service.do_save_branch(session, Actor.of(admin, "api"), branch=branch, **body.model_dump())
    return await branch_out(session, branch)


@router.put("/{branch_id}/holidays", response_model=BranchOut)
async def set_holiday(branch_id: Id, body: HolidayIn, session: DbSession, admin: User = allow(Role.admin)) -> BranchOut:
    branch = await service.access_branch(session, branch_id)
    await service.do_set_holiday(session, Actor.of(admin, "api"), branch, body.day, body.hours, body.note)
    return await branch_out(session, branch)
