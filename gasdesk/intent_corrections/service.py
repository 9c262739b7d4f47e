"""Agents' corrections of the bot's understanding, their review, and what retraining reads.

An agent who sees the bot misunderstand a resident (in a conversation they may read) marks the message with the
intent it meant (``do_correct_intent``); a supervisor or admin approves or rejects it
(``do_review_correction``); ``gasdesk bot retrain`` trains a candidate on the shipped data plus the approved
ones (``approved_examples``) and deploys it only if it is not worse on any held-out set, beyond one line in
200 (``gasdesk/bot/nlu/retrain.py``), recorded by ``do_record_deployment``.

Personal data: the text kept is the message with phone, ID, 户号, bank card numbers and e-mail addresses
replaced by placeholders (``mask_text``), and encrypted at rest (names and addresses cannot be found by
patterns). Training sees the placeholders as a neutral long number (``training_text``), which the classifier
reads as "a long number", exactly as it reads a real 户号.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.bot.nlu.intents import INTENTS
from gasdesk.bot.nlu.model_store import Deployment
from gasdesk.bot.nlu_bot import INTENT_LABELS
from gasdesk.clock import utcnow
from gasdesk.conversations.models import ContentType, Conversation, Message, SenderType
from gasdesk.conversations.service import access_conversation_for_user
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import IntentCorrected, IntentCorrectionReviewed
from gasdesk.events import emit
from gasdesk.intent_corrections.models import CorrectionStatus, IntentCorrection
from gasdesk.security.pii import redact_pii

# Every intent with the name agents pick it by: the bot's own labels, plus those that start no flow.
INTENT_NAMES: dict[str, str] = {
    **{intent: INTENT_LABELS.get(intent, intent) for intent in INTENTS},
    "greeting": "问候/打招呼",
    "goodbye": "道别",
    "human_agent": "要求转人工",
    "gas_leak": "燃气泄漏（紧急）",
    "out_of_scope": "与燃气/供暖无关",
}
DECISIONS = {"approve": CorrectionStatus.approved, "reject": CorrectionStatus.rejected}

# After redact_pii: any run of six or more digits left (a meter reading glued to text, an odd 户号 format) is
# masked too — training data never needs the number itself.
_DIGIT_RUN = re.compile(r"[0-9０-９](?:[ \-]?[0-9０-９]){5,}")
NUMBER = "[号码]"
_PLACEHOLDER = re.compile(r"\[(?:手机号|电话|身份证号|户号|银行卡号|邮箱|号码)\]")
# How a masked number reads to the classifier: eleven digits, which classifier.prepare turns into "a long number".
_NEUTRAL_NUMBER = "00000000000"


def mask_text(text: str) -> str:
    """The resident's text with phone, ID, 户号, bank card numbers, e-mail addresses and long digit runs replaced by
    placeholders ("[手机号]", "[户号]", …)."""
    return _DIGIT_RUN.sub(NUMBER, redact_pii(text))


def training_text(masked: str) -> str:
    """A masked text as a training example: each placeholder becomes a neutral long number."""
    return _PLACEHOLDER.sub(_NEUTRAL_NUMBER, masked)


def check_intent(value: str) -> str:
    """One of the bot's intents, else ``InvalidInput``."""
    intent = (value or "").strip()
    if intent not in INTENT_NAMES:
        raise InvalidInput(f"未知的意图 unknown intent: {intent[:40]!r}", code="invalid_intent")
    return intent


def check_decision(value: str) -> CorrectionStatus:
    """``approve`` or ``reject``, else ``InvalidInput``."""
    status = DECISIONS.get((value or "").strip())
    if status is None:
        raise InvalidInput(
            "审核结果只能是 approve 或 reject / decision must be approve or reject", code="invalid_decision"
        )
    return status


async def access_message_to_correct(
    session: AsyncSession, user: User, message_id: int
) -> tuple[Message, Conversation]:
    """A resident's text message in a conversation ``user`` may read (agents: their own; managers: any)."""
    message = await session.get(Message, message_id)
    if message is None:
        raise NotFound("消息不存在 / no such message", code="message_not_found")
    conversation = await access_conversation_for_user(session, user, message.conversation_id)
    if (
        message.sender_type != SenderType.resident.value
        or message.content_type != ContentType.text.value
        or not (message.text or "").strip()
    ):
        raise InvalidInput(
            "只能纠正居民发送的文字消息 / only a resident's text message can be corrected",
            code="not_a_resident_text",
        )
    return message, conversation


async def correction_of_message(session: AsyncSession, message_id: int) -> IntentCorrection | None:
    return await session.scalar(select(IntentCorrection).where(IntentCorrection.message_id == message_id))


async def do_correct_intent(
    session: AsyncSession, user: User, message: Message, conversation: Conversation, intent: str
) -> IntentCorrection:
    """Record the intent the bot should have understood in ``message`` (pending review). The bot's own reading
    (intent, confidence) comes from the turn stored with the message, when the bot had the turn. Correcting the
    same message again before review changes the intent; after review it is refused."""
    intent = check_intent(intent)
    turn: dict[str, Any] = (message.channel_meta or {}).get("bot_turn") or {}
    predicted = turn.get("intent") if isinstance(turn.get("intent"), str) else None
    confidence = turn.get("confidence") if isinstance(turn.get("confidence"), int | float) else None
    if predicted == intent:
        raise InvalidInput(
            "机器人识别的就是这个意图，无需纠正 / the bot already understood this intent",
            code="intent_unchanged",
        )
    row = await correction_of_message(session, message.id)
    before = None
    if row is None:
        row = IntentCorrection(
            message_id=message.id,
            conversation_id=conversation.id,
            text=mask_text(message.text or ""),
            predicted_intent=predicted,
            predicted_confidence=None if confidence is None else float(confidence),
            status=CorrectionStatus.pending.value,
            created_at=utcnow(),
        )
        session.add(row)
    elif row.status != CorrectionStatus.pending.value:
        raise Conflict(
            "该纠正已审核，不能再修改 / this correction was already reviewed", code="correction_reviewed"
        )
    else:
        before = {"intent": row.intent}
    row.intent, row.created_by = intent, user.id
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "bot.correct_intent",
        "intent_correction",
        row.id,
        before=before,
        after={
            "intent": intent,
            "message_id": message.id,
            "conversation_id": conversation.id,
            "predicted_intent": predicted,
        },
    )
    emit(
        session,
        IntentCorrected(
            correction_id=row.id, conversation_id=conversation.id, message_id=message.id, intent=intent
        ),
    )
    return row


async def access_correction(session: AsyncSession, user: User, correction_id: int) -> IntentCorrection:
    """A correction, for a supervisor or admin."""
    if Role(user.role) not in MANAGERS:
        raise PermissionDenied(
            "只有班长和管理员可以审核意图纠正 / supervisors and admins only", code="forbidden"
        )
    row = await session.get(IntentCorrection, correction_id)
    if row is None:
        raise NotFound("意图纠正不存在 / no such correction", code="correction_not_found")
    return row


async def do_review_correction(
    session: AsyncSession, user: User, row: IntentCorrection, decision: str
) -> IntentCorrection:
    """Approve (training data for the next ``gasdesk bot retrain``) or reject a pending correction."""
    if Role(user.role) not in MANAGERS:
        raise PermissionDenied(
            "只有班长和管理员可以审核意图纠正 / supervisors and admins only", code="forbidden"
        )
    status = check_decision(decision)
    if row.status != CorrectionStatus.pending.value:
        raise Conflict("该纠正已审核 / this correction was already reviewed", code="correction_reviewed")
    row.status, row.reviewed_by, row.reviewed_at = status.value, user.id, utcnow()
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "bot.review_correction",
        "intent_correction",
        row.id,
        before={"status": CorrectionStatus.pending.value},
        after={"status": status.value, "intent": row.intent},
    )
    emit(session, IntentCorrectionReviewed(correction_id=row.id, status=status.value))
    return row


async def list_corrections(
    session: AsyncSession,
    *,
    status: str | None = None,
    conversation_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[IntentCorrection], int]:
    """Oldest first (a review queue), filtered; returns (page, total)."""
    query = select(IntentCorrection)
    if status is not None:
        if status not in CorrectionStatus.__members__:
            raise InvalidInput(
                "状态只能是 pending、approved 或 rejected / unknown status", code="invalid_status"
            )
        query = query.where(IntentCorrection.status == status)
    if conversation_id is not None:
        query = query.where(IntentCorrection.conversation_id == conversation_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(IntentCorrection.id).limit(limit).offset(offset))
    return list(rows), int(total or 0)


@dataclass(frozen=True)
class TrainingExample:
    correction_id: int
    text: str  # training_text of the masked text: no personal number in it
    intent: str


async def approved_examples(session: AsyncSession) -> list[TrainingExample]:
    """Every approved correction as a training example, oldest first."""
    rows = await session.scalars(
        select(IntentCorrection)
        .where(IntentCorrection.status == CorrectionStatus.approved.value)
        .order_by(IntentCorrection.id)
    )
    return [TrainingExample(row.id, training_text(row.text), row.intent) for row in rows]


def do_record_deployment(
    session: AsyncSession, actor: Actor, deployment: Deployment, examples: Sequence[TrainingExample]
) -> None:
    """The audit row of a deployed model (in the transaction that deploys it: a failed deployment leaves none)."""
    record_audit(
        session,
        actor,
        "bot.model_deploy",
        "intent_model",
        deployment.model_file,
        after={
            "model_file": deployment.model_file,
            "fingerprint": deployment.fingerprint,
            "corrections": deployment.corrections,
            "training_examples": deployment.training_examples,
            "figures": deployment.figures,
            "correction_ids": [e.correction_id for e in examples],
        },
    )
