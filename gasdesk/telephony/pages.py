"""The admin page of the IVR script: edit the JSON (problems shown in Chinese), versions, activate; the script's
recorded prompts (admins upload and delete, with the TTS as the fallback); and where callers drop."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.clock import format_local, utcnow
from gasdesk.config import get_settings
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import Id
from gasdesk.telephony import service
from gasdesk.telephony.api import PromptKey, upload_prompt
from gasdesk.telephony.ivr.script import NODE_KINDS
from gasdesk.telephony.models import IvrScript, ScriptStatus
from gasdesk.telephony.tts import do_delete_prompt
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {ScriptStatus.draft.value: "草稿", ScriptStatus.active.value: "使用中",
                 ScriptStatus.retired.value: "已停用"}
MAX_SCRIPT_CHARS = 100_000


def _pretty(row: IvrScript) -> str:
    return json.dumps(row.body, ensure_ascii=False, indent=2)


REPORT_DAYS = (1, 7, 30, 90)


def _uploaded_local(stamp: str) -> str:
    """An upload's stored ISO time as Beijing time for the page ("" if unreadable)."""
    try:
        return format_local(datetime.fromisoformat(stamp))
    except ValueError:
        return ""


async def _context(session: AsyncSession, version: int | None, days: str = "7") -> dict[str, Any]:
    rows = await service.list_ivr_scripts(session)
    shown = next((r for r in rows if r.version == version), None) or next(
        r for r in rows if r.status == ScriptStatus.active.value)
    period = next((d for d in REPORT_DAYS if str(d) == days), 7)  # one of the offered periods, else a week
    until = utcnow()
    return {"scripts": rows, "shown": shown, "text": _pretty(shown), "status_labels": STATUS_LABELS,
            "node_kinds": NODE_KINDS, "problems": [], "saved": None,
            "prompts": await service.script_prompts(session, get_settings()), "prompt_error": None,
            "report": await service.ivr_report(session, until - timedelta(days=period), until), "days": period,
            "report_days": REPORT_DAYS, "uploaded_local": _uploaded_local}


@router.get("/admin/ivr")
async def ivr_page(request: Request, session: DbSession, version: int | None = None,
                   days: Annotated[str, Query(max_length=4)] = "7", _: User = allow(*MANAGERS)) -> Response:
    return render(request, "admin_ivr.html", await _context(session, version, days))


@router.post("/admin/ivr/prompts/{key}")
async def ivr_prompt_upload(key: PromptKey, request: Request, session: DbSession,
                            user: User = allow(Role.admin)) -> Response:
    """Upload a recording for one of the script's prompts (multipart, read after the admin is authorised)."""
    try:
        await upload_prompt(request, session, user, key)
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _context(session, None)
        context["prompt_error"] = f"{key}：{exc.message}"
        return render(request, "admin_ivr.html", context, exc.status_code)
    return RedirectResponse("/admin/ivr#prompts", status_code=303)


@router.post("/admin/ivr/prompts/{key}/delete")
async def ivr_prompt_delete(key: PromptKey, session: DbSession, user: User = allow(Role.admin)) -> Response:
    """Remove a prompt's recording: calls hear the synthesised text again."""
    await do_delete_prompt(session, Actor.of(user, "web"), get_settings(), key=key)
    return RedirectResponse("/admin/ivr#prompts", status_code=303)


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
