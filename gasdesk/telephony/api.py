"""The hotline's REST routes: a customer's calls, recordings for staff (audited), and the IVR scripts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE
from gasdesk.conversations.attachments import SealedFileResponse
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.telephony import service
from gasdesk.telephony.ivr.script import script_problems
from gasdesk.telephony.models import IvrScript
from gasdesk.telephony.schemas import (
    CallOut,
    IvrScriptCheck,
    IvrScriptDetail,
    IvrScriptIn,
    IvrScriptOut,
    IvrScriptProblems,
)

router = APIRouter(tags=["telephony"])


def _script_out(row: IvrScript, *, body: bool = False) -> dict[str, Any]:
    out = {"version": row.version, "status": row.status, "note": row.note, "created_by": row.created_by,
           "created_at": row.created_at}
    return {**out, "body": row.body} if body else out


@router.get("/api/v1/customers/{customer_id}/calls", response_model=list[CallOut])
async def customer_calls(customer_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    """The customer's hotline calls, newest first (times, IVR path, agent, recording link; no number)."""
    return [{"call_id": c.call_id, "conversation_id": c.conversation_id, "at": c.at, "duration_s": c.duration_s,
             "talk_s": c.talk_s, "queue_wait_s": c.queue_wait_s, "ivr_path": c.ivr_path, "agent_name": c.agent_name,
             "hangup_by": c.hangup_by, "recording_url": c.recording_url}
            for c in await service.calls_of_customer(session, customer_id)]


@router.get("/api/v1/calls/recordings/{recording_id}", response_class=Response,
            responses={200: {"content": {"audio/wav": {}}, "description": "the call's recording (WAV)"}})
async def recording(recording_id: Id, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    """A call's recording, for staff only; every playback is audited."""
    row, path = await service.access_recording(session, user, recording_id)
    return SealedFileResponse(path, media_type="audio/wav", filename=f"call-{row.call_id}.wav",
                              content_disposition_type="inline",
                              headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


@router.get("/api/v1/ivr/scripts", response_model=list[IvrScriptOut])
async def list_scripts(session: DbSession, _: User = allow(*MANAGERS)) -> list[dict[str, Any]]:
    """Every version of the IVR script, newest first."""
    return [_script_out(row) for row in await service.list_ivr_scripts(session)]


@router.get("/api/v1/ivr/scripts/{version}", response_model=IvrScriptDetail)
async def get_script(version: Id, session: DbSession, _: User = allow(*MANAGERS)) -> dict[str, Any]:
    return _script_out(await service.get_ivr_script(session, version), body=True)


@router.post("/api/v1/ivr/scripts/validate", response_model=IvrScriptProblems)
async def validate_script(body: IvrScriptCheck, _: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Check a script without storing it: every problem, in Chinese."""
    problems = script_problems(body.body)
    return {"ok": not problems, "problems": problems}


@router.post("/api/v1/ivr/scripts", status_code=201, response_model=IvrScriptDetail)
async def save_script(body: IvrScriptIn, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Store a validated script as the next version (a draft until activated)."""
    row = await service.do_save_ivr_script(session, Actor.of(user, "api"), body.body, note=body.note)
    return _script_out(row, body=True)


@router.post("/api/v1/ivr/scripts/{version}/activate", response_model=IvrScriptOut)
async def activate_script(version: Id, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    """New calls run this version from now on."""
    return _script_out(await service.do_activate_ivr_script(session, Actor.of(user, "api"), version))
