"""The agent's side of a callback: reveal the number to dial, record the outcome."""

from __future__ import annotations

from fastapi import APIRouter

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import STAFF_DESK
from gasdesk.callbacks import service
from gasdesk.callbacks.models import CallbackRequest
from gasdesk.callbacks.originate import start_callback_call
from gasdesk.callbacks.schemas import CallbackOut, DialOut, OutcomeIn
from gasdesk.customers.validation import mask_phone
from gasdesk.db import DbSession, commit
from gasdesk.fields import Id
from gasdesk.telephony.originate import outbound

router = APIRouter(prefix="/api/v1/callbacks", tags=["callbacks"])


def callback_out(row: CallbackRequest) -> CallbackOut:
    return CallbackOut(id=row.id, conversation_id=row.conversation_id, status=row.status, attempts=row.attempts,
                       outcome=row.outcome)


@router.post("/{callback_id}/dial", response_model=DialOut)
async def dial(callback_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> DialOut:
    """回拨 (audited): gasdesk calls the resident and bridges them to the agent's phone when this process can
    place calls (``originated``: the number stays masked); otherwise the full number, for the agent to dial."""
    row, conversation = await service.access_callback(session, user, callback_id)
    calls = outbound()
    phone = await service.do_dial_callback(session, user, row, conversation, originated=calls is not None)
    if calls is None:
        return DialOut(callback_id=row.id, phone=phone, originated=False)
    await commit(session)  # the call's own transactions read the audited state
    start_callback_call(calls, callback_id=row.id, agent_id=user.id)
    return DialOut(callback_id=row.id, phone=mask_phone(phone), originated=True)


@router.post("/{callback_id}/outcome", response_model=CallbackOut)
async def outcome(callback_id: Id, body: OutcomeIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> CallbackOut:
    """Reached / no answer (tried again later) / cancelled."""
    row, conversation = await service.access_callback(session, user, callback_id)
    return callback_out(await service.do_record_outcome(session, user, row, conversation, body.outcome))
