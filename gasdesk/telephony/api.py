"""The hotline's REST routes: a customer's calls, recordings for staff (audited), the IVR scripts, their
recorded prompts (admins upload, staff listen), the report of where callers drop, and the signalling of the
agents' browser softphone (embedded mode, ``telephony/softphone.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE, STAFF_DESK, Role
from gasdesk.config import get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.attachments import SealedFileResponse
from gasdesk.conversations.schemas import TransferIn
from gasdesk.db import DbSession
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.fields import AwareDatetime, Id
from gasdesk.telephony import service
from gasdesk.telephony.ivr.script import script_problems
from gasdesk.telephony.models import Call, IvrScript
from gasdesk.telephony.schemas import (
    CallOut,
    IvrReportOut,
    IvrScriptCheck,
    IvrScriptDetail,
    IvrScriptIn,
    IvrScriptOut,
    IvrScriptProblems,
    PromptDeleted,
    PromptOut,
    SoftphoneAnswerOut,
    SoftphoneHoldIn,
    SoftphoneOfferIn,
    SoftphoneStateOut,
)
from gasdesk.telephony.tts import do_delete_prompt, do_upload_prompt
from gasdesk.web.body_limit import body_cap
from gasdesk.web.uploads import read_upload_form

if TYPE_CHECKING:
    from gasdesk.telephony.softphone import SoftphoneLeg

router = APIRouter(tags=["telephony"])

# A prompt's key in a path: <node>.<field> (ivr.script.prompt_key), the form tts.PROMPT_KEY accepts.
PromptKey = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


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


# ---------------------------------------------------------------- recorded prompts


def prompt_out(status: service.PromptStatus) -> dict[str, Any]:
    """A prompt with its upload, as the API and the admin page show it."""
    slot, upload = status.slot, status.upload
    return {"key": slot.key, "node": slot.node, "field": slot.field, "label": slot.label, "text": slot.text,
            "uploaded": upload is not None, "duration_s": upload.duration_s if upload else None,
            "bytes": upload.bytes if upload else None, "uploaded_at": upload.uploaded_at if upload else None,
            "audio_url": f"/api/v1/ivr/prompts/{slot.key}/audio" if upload else None}


async def upload_prompt(request: Request, session: DbSession, user: User, key: str) -> service.PromptStatus:
    """Read an authorised admin's multipart upload (field ``file``) for prompt ``key`` and store it (audited):
    the key is checked against the scripts before a byte of the body is read."""
    slot = await service.access_prompt_slot(session, key)
    settings = get_settings()
    cap = min(body_cap(request.method, request.url.path), settings.tts_upload_max_bytes + 64 * 1024)
    form = await read_upload_form(request, session=session, max_bytes=cap)
    upload = form.file("file")
    if upload is None:
        raise InvalidInput("请选择录音文件（WAV 或 MP3）", code="invalid_prompt_audio")
    stored = await do_upload_prompt(session, Actor.of(user, "web" if request.url.path.startswith("/admin") else "api"),
                                    settings, key=slot.key, filename=upload.filename, data=upload.data)
    return service.PromptStatus(slot, stored)


@router.get("/api/v1/ivr/prompts", response_model=list[PromptOut])
async def list_prompts(session: DbSession, _: User = allow(*MANAGERS)) -> list[dict[str, Any]]:
    """The fixed prompts of the active IVR script, each with its recording if one was uploaded."""
    return [prompt_out(s) for s in await service.script_prompts(session, get_settings())]


@router.post("/api/v1/ivr/prompts/{key}", status_code=201, response_model=PromptOut)
async def put_prompt(key: PromptKey, request: Request, session: DbSession,
                     user: User = allow(Role.admin)) -> dict[str, Any]:
    """Upload a recording (multipart field ``file``: WAV or MP3) for a prompt of the script; it replaces the
    synthesised text (and any earlier recording) for new prompts played from now on. Admins only; audited."""
    return prompt_out(await upload_prompt(request, session, user, key))


@router.delete("/api/v1/ivr/prompts/{key}", response_model=PromptDeleted)
async def delete_prompt(key: PromptKey, session: DbSession, user: User = allow(Role.admin)) -> dict[str, Any]:
    """Remove a prompt's recording: calls hear the synthesised text again. Admins only; audited."""
    await do_delete_prompt(session, Actor.of(user, "api"), get_settings(), key=key)
    return {"key": key, "uploaded": False}


@router.get("/api/v1/ivr/prompts/{key}/audio", response_class=Response,
            responses={200: {"content": {"audio/wav": {}}, "description": "the uploaded recording (WAV)"}})
async def prompt_audio(key: PromptKey, _: User = allow(*OFFICE)) -> Response:
    """Listen to a prompt's uploaded recording (8 kHz mono WAV), for staff."""
    found = await service.access_prompt_audio(get_settings(), key)
    return FileResponse(found.path, media_type="audio/wav", filename=f"{key}.wav", content_disposition_type="inline",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"})


# ---------------------------------------------------------------- report


def report_out(report: service.IvrReport) -> dict[str, Any]:
    c = report.calls
    return {"since": report.since, "until": report.until,
            "calls": {"total": c.total, "refused": c.refused, "ivr_only": c.ivr_only, "queued": c.queued,
                      "answered": c.answered, "abandoned": c.abandoned, "avg_queue_wait_s": c.avg_queue_wait_s,
                      "avg_talk_s": c.avg_talk_s, "avg_hold_s": c.avg_hold_s},
            "nodes": [{"node_id": n.node_id, "visits": n.visits, "digit": n.digit, "timeout": n.timeout,
                       "invalid": n.invalid, "hangup": n.hangup, "next": n.next, "open": n.open,
                       "hangup_rate": n.hangup_rate} for n in report.nodes]}


@router.get("/api/v1/ivr/report", response_model=IvrReportOut)
async def report(session: DbSession, since: AwareDatetime | None = None, until: AwareDatetime | None = None,
                 _: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Where callers drop, for calls that started in [since, until) (default: the last 7 days; at most 366):
    per IVR node its visits and how they ended with the hang-up rate, and the calls' totals and averages."""
    return report_out(await service.ivr_report(session, since, until))


# ---------------------------------------------------------------- the agent's browser softphone (embedded mode)


async def _softphone_call(session: DbSession, user: User, call_id: int) -> tuple[SoftphoneLeg, Call]:
    # aiortc and PyAV cost ~0.4 s at every process start: loaded only once a softphone is actually used.
    from gasdesk.telephony import softphone  # noqa: PLC0415 - heavy optional library, see above

    leg = softphone.access_leg(user.id, call_id)
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound("没有找到这通来电", code="call_not_found")
    return leg, call


@router.post("/api/v1/calls/{call_id}/softphone/answer", response_model=SoftphoneAnswerOut)
async def softphone_answer(call_id: Id, body: SoftphoneOfferIn, session: DbSession,
                           user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """接听: the console's SDP offer (ICE gathered, no trickle) for the call offered to this agent; returns
    our SDP answer. Only the agent the call rings for may answer it (others: 404)."""
    leg, call = await _softphone_call(session, user, call_id)
    sdp = await leg.answer(body.sdp)
    await service.do_softphone_action(session, user, call, "answer")
    return {"call_id": call.id, "type": "answer", "sdp": sdp}


@router.post("/api/v1/calls/{call_id}/softphone/reject", response_model=SoftphoneStateOut)
async def softphone_reject(call_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """拒接: the call goes back to the queue and this agent is set away (as when a phone rings out)."""
    leg, call = await _softphone_call(session, user, call_id)
    await leg.reject()
    await service.do_softphone_action(session, user, call, "reject")
    return {"call_id": call.id, "state": "rejected"}


@router.post("/api/v1/calls/{call_id}/softphone/hangup", response_model=SoftphoneStateOut)
async def softphone_hangup(call_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """挂断: ends the call (the records say the agent hung up)."""
    leg, call = await _softphone_call(session, user, call_id)
    await leg.hangup()
    await service.do_softphone_action(session, user, call, "hangup")
    return {"call_id": call.id, "state": "ended"}


@router.post("/api/v1/calls/{call_id}/softphone/hold", response_model=SoftphoneStateOut)
async def softphone_hold(call_id: Id, body: SoftphoneHoldIn, session: DbSession,
                         user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """保持 / 恢复: the caller hears the hold audio; the time on hold counts in the call's hold_s."""
    leg, call = await _softphone_call(session, user, call_id)
    if body.on == leg.held:
        raise Conflict("通话已处于该状态", code="hold_unchanged")
    await leg.hold(body.on)
    await service.do_softphone_action(session, user, call, "hold" if body.on else "resume")
    return {"call_id": call.id, "state": "held" if body.on else "talking"}


@router.post("/api/v1/calls/{call_id}/softphone/transfer", response_model=SoftphoneStateOut)
async def softphone_transfer(call_id: Id, body: TransferIn, session: DbSession,
                             user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """转接 to a colleague or a group: the conversation is transferred (as in the chat console), this agent's
    leg ends and the caller, on hold meanwhile, is bridged to the next agent."""
    leg, call = await _softphone_call(session, user, call_id)
    if not leg.answered or call.conversation_id is None:
        raise Conflict("通话未接通，无法转接", code="call_not_connected")
    conversation = await conversations.access_conversation_for_user(session, user, call.conversation_id)
    await conversations.do_transfer(session, user, conversation, to_agent_id=body.to_agent_id,
                                    to_group_id=body.to_group_id, note=body.note)
    await service.do_softphone_action(session, user, call, "transfer", to_agent_id=body.to_agent_id,
                                      to_group_id=body.to_group_id)
    await leg.detach()
    return {"call_id": call.id, "state": "transferred"}
