"""The hotline's REST routes: a customer's calls, recordings for staff (audited), the IVR scripts, and the
signalling of the agents' browser softphone (embedded mode, ``telephony/softphone.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE, STAFF_DESK
from gasdesk.conversations import service as conversations
from gasdesk.conversations.attachments import SealedFileResponse
from gasdesk.conversations.schemas import TransferIn
from gasdesk.db import DbSession
from gasdesk.errors import Conflict, NotFound
from gasdesk.fields import Id
from gasdesk.telephony import service, softphone
from gasdesk.telephony.ivr.script import script_problems
from gasdesk.telephony.models import Call, IvrScript
from gasdesk.telephony.schemas import (
    CallOut,
    IvrScriptCheck,
    IvrScriptDetail,
    IvrScriptIn,
    IvrScriptOut,
    IvrScriptProblems,
    SoftphoneAnswerOut,
    SoftphoneHoldIn,
    SoftphoneOfferIn,
    SoftphoneStateOut,
)
from gasdesk.telephony.softphone import SoftphoneLeg

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


# ---------------------------------------------------------------- the agent's browser softphone (embedded mode)


async def _softphone_call(session: DbSession, user: User, call_id: int) -> tuple[SoftphoneLeg, Call]:
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
