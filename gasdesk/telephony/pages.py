"""The admin page of the IVR script: edit the JSON (problems shown in Chinese), versions, activate."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import Id
from gasdesk.telephony import service
from gasdesk.telephony.ivr.script import NODE_KINDS
from gasdesk.telephony.models import IvrScript, ScriptStatus
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {ScriptStatus.draft.value: "草稿", ScriptStatus.active.value: "使用中",
                 ScriptStatus.retired.value: "已停用"}
MAX_SCRIPT_CHARS = 100_000


def _pretty(row: IvrScript) -> str:
    return json.dumps(row.body, ensure_ascii=False, indent=2)


async def _context(session: AsyncSession, version: int | None) -> dict[str, Any]:
    rows = await service.list_ivr_scripts(session)
    shown = next((r for r in rows if r.version == version), None) or next(
        r for r in rows if r.status == ScriptStatus.active.value)
    return {"scripts": rows, "shown": shown, "text": _pretty(shown), "status_labels": STATUS_LABELS,
            "node_kinds": NODE_KINDS, "problems": [], "saved": None}


@router.get("/admin/ivr")
async def ivr_page(request: Request, session: DbSession, version: int | None = None,
                   _: User = allow(*MANAGERS)) -> Response:
    return render(request, "admin_ivr.html", await _context(session, version))


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列", code="invalid_ivr_script",
                           details={"problems": [f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列"]}) from None


@router.post("/admin/ivr")
async def ivr_save(request: Request, session: DbSession, script: Annotated[str, Form(max_length=MAX_SCRIPT_CHARS)],
                   note: Annotated[str, Form(max_length=200)] = "", activate: Annotated[str, Form(max_length=5)] = "",
                   user: User = allow(*MANAGERS)) -> Response:
    """Save the edited script as a new version (and make it the one calls run, if asked)."""
    actor = Actor.of(user, "web")
    try:
        row = await service.do_save_ivr_script(session, actor, _parse(script), note=note)
        if activate:
            await service.do_activate_ivr_script(session, actor, row.version)
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _context(session, None)
        problems = (exc.details or {}).get("problems") if isinstance(exc.details, dict) else None
        context.update(text=script, problems=problems or [exc.message], note=note)
        return render(request, "admin_ivr.html", context, 422)
    return RedirectResponse(f"/admin/ivr?version={row.version}", status_code=303)


@router.post("/admin/ivr/{version}/activate")
async def ivr_activate(version: Id, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    await service.do_activate_ivr_script(session, Actor.of(user, "web"), version)
    return RedirectResponse(f"/admin/ivr?version={version}", status_code=303)
