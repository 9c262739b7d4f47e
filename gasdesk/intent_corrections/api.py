"""Intent corrections over REST: agents mark what a resident meant; supervisors and admins review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, STAFF_DESK, Role
from gasdesk.conversations.service import access_conversation_for_user
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Count, Id
from gasdesk.intent_corrections import service
from gasdesk.intent_corrections.models import STATUS_LABELS, CorrectionStatus, IntentCorrection
from gasdesk.intent_corrections.schemas import (
    CorrectionIn,
    CorrectionOut,
    CorrectionPage,
    IntentOptionOut,
    ReviewIn,
)

router = APIRouter(prefix="/api/v1/bot", tags=["bot"])


def correction_out(row: IntentCorrection) -> CorrectionOut:
    """The JSON form of a correction (the API and the review page's rows)."""
    return CorrectionOut(
        id=row.id,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        text=row.text,
        predicted_intent=row.predicted_intent,
        predicted_label=service.INTENT_NAMES.get(row.predicted_intent) if row.predicted_intent else None,
        predicted_confidence=row.predicted_confidence,
        intent=row.intent,
        intent_label=service.INTENT_NAMES.get(row.intent, row.intent),
        status=row.status,
        status_label=STATUS_LABELS[CorrectionStatus(row.status)],
        created_by=row.created_by,
        created_at=row.created_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
    )


@router.get("/intents", response_model=list[IntentOptionOut])
async def intents(_: User = allow(*STAFF_DESK)) -> list[IntentOptionOut]:
    """Every intent the bot knows, with its Chinese name (the console's correction menu)."""
    return [IntentOptionOut(intent=k, label=v) for k, v in service.INTENT_NAMES.items()]


@router.post("/corrections", response_model=CorrectionOut)
async def correct(body: CorrectionIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> CorrectionOut:
    """Mark the intent the bot should have understood in a resident's message of a conversation you may read
    (pending review; again before review changes it)."""
    message, conversation = await service.access_message_to_correct(session, user, body.message_id)
    return correction_out(await service.do_correct_intent(session, user, message, conversation, body.intent))


@router.get("/corrections", response_model=CorrectionPage)
async def corrections(
    session: DbSession,
    status: str | None = None,
    conversation_id: Annotated[Id | None, Query()] = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Annotated[Count, Query()] = 0,
    user: User = allow(*STAFF_DESK),
) -> CorrectionPage:
    """Corrections, oldest first. Agents list those of one conversation they may read (``conversation_id``);
    supervisors and admins any."""
    if Role(user.role) not in MANAGERS:
        if conversation_id is None:
            raise InvalidInput("请指定会话 / conversation_id is required", code="conversation_required")
        await access_conversation_for_user(session, user, conversation_id)
    rows, total = await service.list_corrections(
        session, status=status, conversation_id=conversation_id, limit=limit, offset=offset
    )
    return CorrectionPage(total=total, items=[correction_out(r) for r in rows])


@router.post("/corrections/{correction_id}/review", response_model=CorrectionOut)
async def review(
    correction_id: Id, body: ReviewIn, session: DbSession, user: User = allow(*MANAGERS)
) -> CorrectionOut:
    """Approve (training data for the next ``gasdesk bot retrain``) or reject a pending correction."""
    row = await service.access_correction(session, user, correction_id)
    return correction_out(await service.do_review_correction(session, user, row, body.decision))
