"""Hotline records and configuration: the call's rows (start, events, IVR node visits, end, recording), the
versioned IVR scripts, recordings for staff and their retention, the recorded prompts of the script, and the
report of where callers drop.

Every function works inside the caller's transaction; the call controller (``controller.py``) opens one
short transaction per step, so no database connection is held while a caller listens to a prompt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.callbacks.models import CallbackRequest, CallbackStatus
from gasdesk.clock import utcnow
from gasdesk.config import Settings, get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Channel, Conversation, ConversationState
from gasdesk.customers.contacts import do_find_or_create_contact, visitor_id_of
from gasdesk.customers.lookup_keys import phone_key
from gasdesk.customers.models import ContactKind, CustomerPhone
from gasdesk.customers.validation import LANDLINE_RE, MOBILE_RE, mask_phone, normalize_phone
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.event_types import CallEnded, CallOffered, CallOfferWithdrawn, CallRinging
from gasdesk.events import emit
from gasdesk.security.crypto import encrypt_bytes
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT, PromptSlot, Script, check_script, prompt_slots
from gasdesk.telephony.media import CallInfo, RecordingInfo
from gasdesk.telephony.models import (
    Call,
    CallEvent,
    CallEventKind,
    CallRecording,
    CallState,
    HangupBy,
    IvrNodeVisit,
    IvrScript,
    ScriptStatus,
    VisitOutcome,
)
from gasdesk.telephony.tts import PROMPT_KEY, UploadedPrompt, uploaded_prompts

log = logging.getLogger(__name__)

# The hotline acting on its own (the IVR's identity check, hand-offs, closing a call's conversation).
HOTLINE = Actor.system("热线语音导航", "voice")
RETENTION = Actor.system("recording-retention", "job")
RECORDINGS_DIR = "recordings"
RETENTION_EVERY_S = 3600
# Hang-up by whom → how the conversation's closing is recorded (conversations.service do_close ``by``).
CLOSED_BY = {HangupBy.caller.value: "resident", HangupBy.agent.value: "agent", HangupBy.system.value: "system"}
HANGUP_LABELS = {HangupBy.caller.value: "来电人", HangupBy.agent.value: "坐席", HangupBy.system.value: "系统"}


# ---------------------------------------------------------------- who is calling


async def caller_identity(session: AsyncSession, number: str) -> tuple[str, int | None, str | None]:
    """(visitor id, customer id or None, the normalised number or None) of a calling number.

    A mobile number is the resident's SMS contact identity (``customers/contacts.py``: bound at once when the
    number is on file), so the call, the SMS conversation and the 回访 of a hotline ticket share one identity.
    A landline is matched against the phones on file. A withheld number is a stranger of its own."""
    phone = normalize_phone(number or "")
    if MOBILE_RE.match(phone):
        contact = await do_find_or_create_contact(session, ContactKind.sms, phone)
        return visitor_id_of(contact), contact.customer_id, phone
    if LANDLINE_RE.match(phone):
        customer_id = await session.scalar(select(CustomerPhone.customer_id).where(
            CustomerPhone.phone_index == phone_key(phone)).order_by(CustomerPhone.id).limit(1))
        return f"voice:{phone_key(phone)[:40]}", customer_id, phone
    return f"voice:anonymous:{secrets.token_hex(8)}", None, None


# ---------------------------------------------------------------- the call's rows


def add_event(session: AsyncSession, call: Call | int, kind: CallEventKind, **data: Any) -> CallEvent:
    """One event of a call (ids, node names, causes only: never the number or the digits of a 户号)."""
    event = CallEvent(call_id=call if isinstance(call, int) else call.id, kind=kind.value, at=utcnow(),
                      data=data or None)
    session.add(event)
    return event


async def do_start_call(session: AsyncSession, info: CallInfo, *, script_version: int | None) -> Call:
    """A call reached the hotline: its ``voice`` conversation (the caller's customer when the number is on
    file), the call row (ringing) and its first event; consoles get ``call.ringing`` (the screen pop)."""
    visitor_id, customer_id, phone = await caller_identity(session, info.caller)
    conversation = await conversations.do_start_conversation(session, channel=Channel.voice.value,
                                                             visitor_id=visitor_id, customer_id=customer_id)
    call = Call(conversation_id=conversation.id, backend=info.backend[:12], call_ref=info.call_ref[:128],
                caller=phone, caller_index=phone_key(phone) if phone else None, customer_id=customer_id,
                state=CallState.ringing.value, started_at=utcnow(), ivr_script_version=script_version)
    session.add(call)
    await session.flush()
    add_event(session, call, CallEventKind.ringing, backend=call.backend)
    await conversations.post_system(session, conversation, "热线来电" + ("（已识别客户）" if customer_id else ""),
                                    payload={"event": "call_ringing", "call_id": call.id})
    emit(session, CallRinging(call_id=call.id, conversation_id=conversation.id, customer_id=customer_id))
    return call


async def do_start_outbound_call(session: AsyncSession, info: CallInfo, conversation: Conversation,
                                 phone: str) -> Call:
    """A call gasdesk placed for ``conversation`` (a callback) was answered: its call row (the resident's
    number as ``caller``, encrypted), answered now; ``answered`` event with the direction."""
    now = utcnow()
    call = Call(conversation_id=conversation.id, backend=info.backend[:12], call_ref=info.call_ref[:128],
                caller=phone, caller_index=phone_key(phone), customer_id=conversation.customer_id,
                state=CallState.ringing.value, started_at=now, answered_at=now)
    session.add(call)
    await session.flush()
    add_event(session, call, CallEventKind.answered, backend=call.backend, direction="outbound")
    return call


async def do_refuse_call(session: AsyncSession, info: CallInfo, *, cause: str) -> Call:
    """A call turned away before it began (over capacity): a call row without a conversation, for reports."""
    phone = normalize_phone(info.caller or "")
    now = utcnow()
    call = Call(backend=info.backend[:12], call_ref=info.call_ref[:128], caller=phone or None,
                caller_index=phone_key(phone) if phone else None, state=CallState.ended.value, started_at=now,
                answered_at=now, ended_at=now, hangup_by=HangupBy.system.value, hangup_cause=cause[:40])
    session.add(call)
    await session.flush()
    add_event(session, call, CallEventKind.hung_up, by=HangupBy.system.value, cause=cause[:40])
    return call


def mark_bridged(session: AsyncSession, call: Call, agent_id: int) -> None:
    """The call is connected to ``agent_id``: talking from now, with its ``bridged`` event."""
    set_state(call, CallState.talking)
    call.agent_id = agent_id
    add_event(session, call, CallEventKind.bridged, agent_id=agent_id)


def set_state(call: Call, state: CallState) -> None:
    """Move the call on (ringing → ivr → queued → talking → ended), stamping when it happened."""
    now = utcnow()
    call.state = state.value
    if state is CallState.ivr and call.answered_at is None:
        call.answered_at = now
    elif state is CallState.queued and call.queued_at is None:
        call.queued_at = now
    elif state is CallState.talking:
        call.connected_at = call.connected_at or now


def enter_node(session: AsyncSession, call: Call, version: int, node_id: str) -> IvrNodeVisit:
    visit = IvrNodeVisit(call_id=call.id, script_version=version, node_id=node_id[:40], entered_at=utcnow())
    session.add(visit)
    add_event(session, call, CallEventKind.ivr_node, node=node_id[:40])
    return visit


def leave_node(visit: IvrNodeVisit, outcome: VisitOutcome) -> None:
    if visit.left_at is None:
        visit.left_at = utcnow()
        visit.outcome = outcome.value


async def hold_seconds(session: AsyncSession, call_id: int, until: datetime) -> int:
    """Time on hold, from the held/unheld events (an unfinished hold counts until ``until``)."""
    rows = await session.execute(select(CallEvent.kind, CallEvent.at).where(
        CallEvent.call_id == call_id, CallEvent.kind.in_([CallEventKind.held.value, CallEventKind.unheld.value]))
        .order_by(CallEvent.id))
    total, since = 0.0, None
    for kind, at in rows:
        if kind == CallEventKind.held.value and since is None:
            since = at
        elif kind == CallEventKind.unheld.value and since is not None:
            total += (at - since).total_seconds()
            since = None
    if since is not None:
        total += (until - since).total_seconds()
    return int(round(total))


async def do_note_hold(session: AsyncSession, call: Call, on: bool, *, by: User | None = None) -> None:
    """The agent put the caller on hold or took them off (the back-end did it): an event, counted in hold_s."""
    add_event(session, call, CallEventKind.held if on else CallEventKind.unheld, agent_id=by.id if by else None)


async def do_offer_call(session: AsyncSession, call: Call, agent_id: int) -> None:
    """The agent's softphone rings for ``call``: ``call.offered`` to that agent's consoles (the number masked)."""
    record_audit(session, HOTLINE, "call.offer", "call", call.id, after={"agent_id": agent_id})
    emit(session, CallOffered(call_id=call.id, conversation_id=call.conversation_id or 0,
                              customer_id=call.customer_id, agent_id=agent_id,
                              caller_masked=mask_phone(call.caller) if call.caller else "未知号码"))


def do_withdraw_offer(session: AsyncSession, call_id: int, agent_id: int, reason: str) -> None:
    """The agent's softphone stopped ringing unanswered: ``call.offer_withdrawn`` to their consoles."""
    emit(session, CallOfferWithdrawn(call_id=call_id, agent_id=agent_id, reason=reason[:40]))


# The audit action of each softphone action (spelled out, so every code has its label in audit/display.py).
SOFTPHONE_AUDIT = {"answer": "call.softphone_answer", "reject": "call.softphone_reject",
                   "hangup": "call.softphone_hangup", "hold": "call.softphone_hold",
                   "resume": "call.softphone_resume", "transfer": "call.softphone_transfer"}


async def do_softphone_action(session: AsyncSession, user: User, call: Call, action: str, **after: Any) -> None:
    """What an agent did on the softphone (answer, reject, hang up, hold, resume, transfer): its audit row; a
    hold or resume is also a call event, so ``hold_s`` counts it."""
    if action in ("hold", "resume"):
        await do_note_hold(session, call, action == "hold", by=user)
    record_audit(session, Actor.of(user, "api"), SOFTPHONE_AUDIT[action], "call", call.id, after=after or None)


async def do_end_call(session: AsyncSession, call: Call, *, by: str, cause: str) -> Call:
    """Finalise a call whatever node it ended in: times (queue wait, talk, hold), who hung up, open node
    visits closed as hang-ups, the conversation closed with a system message; ``call.ended`` after commit."""
    if call.state == CallState.ended.value:
        return call
    by = by if by in HANGUP_LABELS else HangupBy.system.value
    now = utcnow()
    for visit in await session.scalars(select(IvrNodeVisit).where(IvrNodeVisit.call_id == call.id,
                                                                  IvrNodeVisit.left_at.is_(None))):
        leave_node(visit, VisitOutcome.hangup)
    call.state, call.ended_at, call.hangup_by, call.hangup_cause = CallState.ended.value, now, by, cause[:40]
    if call.queued_at is not None:
        call.queue_wait_s = int(round(((call.connected_at or now) - call.queued_at).total_seconds()))
    if call.connected_at is not None:
        call.talk_s = int(round((now - call.connected_at).total_seconds()))
        call.hold_s = await hold_seconds(session, call.id, now)
    add_event(session, call, CallEventKind.hung_up, by=by, cause=cause[:40])
    record_audit(session, HOTLINE, "call.end", "call", call.id, after={
        "hangup_by": by, "cause": cause[:40], "agent_id": call.agent_id, "talk_s": call.talk_s})
    conversation = await session.get(Conversation, call.conversation_id) if call.conversation_id else None
    if conversation is not None:
        duration = int(round((now - (call.answered_at or call.started_at)).total_seconds()))
        await conversations.post_system(
            session, conversation, f"通话结束：{HANGUP_LABELS[by]}挂机，通话时长 {duration} 秒",
            payload={"event": "call_ended", "call_id": call.id, "by": by, "talk_s": call.talk_s,
                     "queue_wait_s": call.queue_wait_s})
        booked = await session.scalar(select(CallbackRequest.id).where(
            CallbackRequest.conversation_id == conversation.id, CallbackRequest.status == CallbackStatus.waiting.value))
        # A caller who booked a callback hangs up but keeps their place: the conversation stays queued.
        if conversation.state != ConversationState.closed.value and booked is None:
            agent = await session.get(User, conversation.agent_id) \
                if by == HangupBy.agent.value and conversation.agent_id else None
            closed_by = CLOSED_BY[by] if agent is not None or by != HangupBy.agent.value else "system"
            await conversations.do_close(session, conversation, by=closed_by, user=agent)
    emit(session, CallEnded(call_id=call.id, conversation_id=call.conversation_id, agent_id=call.agent_id,
                            hangup_by=by))
    return call


# ---------------------------------------------------------------- recordings


def recordings_root() -> Path:
    return get_settings().var_dir / RECORDINGS_DIR


def recording_path(call: Call) -> Path:
    """Where a call's recording goes: <var_dir>/recordings/YYYY/MM/call-<id>.wav (the folder is made)."""
    at = call.started_at or utcnow()
    folder = recordings_root() / f"{at:%Y}" / f"{at:%m}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"call-{call.id}.wav"


def _seal(plain: Path) -> tuple[Path, int, str] | None:
    """Encrypt a finished recording in place (a voice is personal data): ``call-<id>.wav`` becomes
    ``call-<id>.sealed`` (AES-GCM, the file's stem as associated data). Returns (sealed path, plaintext
    size, plaintext SHA-256), or None when the back-end left no file."""
    if not plain.is_file():
        return None
    data = plain.read_bytes()
    sealed = plain.with_suffix(".sealed")
    partial = plain.with_suffix(".part")
    partial.write_bytes(encrypt_bytes(data, aad=sealed.stem.encode()))
    os.replace(partial, sealed)
    plain.unlink()
    return sealed, len(data), hashlib.sha256(data).hexdigest()


async def do_store_recording(session: AsyncSession, call: Call, info: RecordingInfo) -> CallRecording:
    """The finished recording of a call, sealed at rest: its path under the var dir, size, duration and the
    SHA-256 of the WAV."""
    sealed = await asyncio.to_thread(_seal, info.path)
    path, size, sha = sealed if sealed is not None else (info.path, info.bytes, None)
    try:
        relative = path.resolve().relative_to(get_settings().var_dir.resolve()).as_posix()
    except ValueError:  # a back-end that recorded elsewhere: keep the absolute path
        relative = str(path)
    row = CallRecording(call_id=call.id, path=relative[:200], duration_s=float(info.duration_s), bytes=size,
                        sha256=sha, created_at=utcnow())
    session.add(row)
    await session.flush()
    add_event(session, call, CallEventKind.recording_stopped, recording_id=row.id)
    return row


def recording_file(row: CallRecording) -> Path:
    path = Path(row.path)
    return path if path.is_absolute() else get_settings().var_dir / path


async def access_recording(session: AsyncSession, user: User, recording_id: int) -> tuple[CallRecording, Path]:
    """A recording staff may play (route roles decide who): audited, one row per playback."""
    row = await session.get(CallRecording, recording_id)
    if row is None or row.deleted_at is not None:
        raise NotFound("录音不存在或已过保存期限", code="recording_not_found")
    path = recording_file(row)
    if not path.is_file():
        raise NotFound("录音文件不存在", code="recording_not_found")
    record_audit(session, Actor.of(user), "call.recording_play", "call", row.call_id, after={"recording_id": row.id})
    return row, path


async def purge_recordings(session: AsyncSession) -> int:
    """Periodic: delete recording files older than ``telephony_recording_retention_days`` and mark their rows
    (audited). Returns how many were purged."""
    cutoff = utcnow() - timedelta(days=get_settings().telephony_recording_retention_days)
    rows = list(await session.scalars(select(CallRecording).where(
        CallRecording.deleted_at.is_(None), CallRecording.created_at < cutoff).order_by(CallRecording.id).limit(500)))
    for row in rows:
        path = recording_file(row)
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not delete recording %s", row.id)
            continue
        row.deleted_at = utcnow()
        record_audit(session, RETENTION, "call.recording_delete", "call", row.call_id,
                     after={"recording_id": row.id, "reason": "retention"})
    return len(rows)


# ---------------------------------------------------------------- call history


@dataclass(frozen=True)
class CallSummary:
    """One call as the customer 360 and the conversation timeline show it (no number)."""

    call_id: int
    conversation_id: int | None
    at: datetime
    talk_s: int | None
    queue_wait_s: int | None
    duration_s: int
    ivr_path: list[str]
    agent_name: str | None
    hangup_by: str | None
    hangup_label: str
    recording_id: int | None

    @property
    def recording_url(self) -> str | None:
        return f"/api/v1/calls/recordings/{self.recording_id}" if self.recording_id else None


async def call_summaries(session: AsyncSession, calls: list[Call]) -> list[CallSummary]:
    ids = [c.id for c in calls]
    paths: dict[int, list[str]] = {i: [] for i in ids}
    for call_id, node_id in await session.execute(select(IvrNodeVisit.call_id, IvrNodeVisit.node_id).where(
            IvrNodeVisit.call_id.in_(ids)).order_by(IvrNodeVisit.id)):
        paths[call_id].append(node_id)
    recordings = dict((await session.execute(select(CallRecording.call_id, CallRecording.id).where(
        CallRecording.call_id.in_(ids), CallRecording.deleted_at.is_(None)))).all()) if ids else {}
    agent_ids = {c.agent_id for c in calls if c.agent_id}
    names = dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(agent_ids)))).all()) \
        if agent_ids else {}
    out = []
    for c in calls:
        end = c.ended_at or utcnow()
        out.append(CallSummary(
            call_id=c.id, conversation_id=c.conversation_id, at=c.started_at, talk_s=c.talk_s,
            queue_wait_s=c.queue_wait_s, duration_s=int(round((end - c.started_at).total_seconds())),
            ivr_path=paths.get(c.id, []), agent_name=names.get(c.agent_id) if c.agent_id else None,
            hangup_by=c.hangup_by, hangup_label=HANGUP_LABELS.get(c.hangup_by or "", "通话中"),
            recording_id=recordings.get(c.id)))
    return out


async def calls_of_customer(session: AsyncSession, customer_id: int, limit: int = 30) -> list[CallSummary]:
    """The customer's calls, newest first."""
    calls = list(await session.scalars(select(Call).where(Call.customer_id == customer_id)
                                       .order_by(Call.id.desc()).limit(limit)))
    return await call_summaries(session, calls)


async def calls_of_conversation(session: AsyncSession, conversation_id: int) -> list[CallSummary]:
    calls = list(await session.scalars(select(Call).where(Call.conversation_id == conversation_id)
                                       .order_by(Call.id)))
    return await call_summaries(session, calls)


# ---------------------------------------------------------------- IVR scripts


async def active_ivr_script(session: AsyncSession) -> IvrScript:
    """The active script; on first use, the built-in default becomes version 1 (audited). Two processes racing
    here both end with the one stored row (unique version)."""
    row = await session.scalar(select(IvrScript).where(IvrScript.status == ScriptStatus.active.value))
    if row is not None:
        return row
    check_script(DEFAULT_SCRIPT)
    try:
        async with session.begin_nested():
            row = IvrScript(version=1, status=ScriptStatus.active.value, body=DEFAULT_SCRIPT,
                            note="内置默认脚本", created_at=utcnow())
            session.add(row)
            await session.flush()
    except IntegrityError:
        row = await session.scalar(select(IvrScript).where(IvrScript.status == ScriptStatus.active.value))
        if row is None:
            raise
        return row
    record_audit(session, HOTLINE, "ivr_script.activate", "ivr_script", row.version,
                 after={"version": 1, "note": row.note})
    return row


def script_of(row: IvrScript) -> Script:
    """The stored body as a script (validated when saved, so this cannot fail on a stored row)."""
    return Script.model_validate(row.body)


async def list_ivr_scripts(session: AsyncSession) -> list[IvrScript]:
    await active_ivr_script(session)
    return list(await session.scalars(select(IvrScript).order_by(IvrScript.version.desc())))


async def get_ivr_script(session: AsyncSession, version: int) -> IvrScript:
    row = await session.scalar(select(IvrScript).where(IvrScript.version == version))
    if row is None:
        raise NotFound(f"没有第 {version} 版语音导航脚本", code="ivr_script_not_found")
    return row


async def do_save_ivr_script(session: AsyncSession, actor: Actor, body: Any, *, note: str = "") -> IvrScript:
    """Validate a script and store it as the next version (a draft until activated); audited."""
    script = check_script(body)
    await active_ivr_script(session)  # version 1 is the default: a first save becomes version 2
    latest = await session.scalar(select(func.max(IvrScript.version)))
    row = IvrScript(version=int(latest or 0) + 1, status=ScriptStatus.draft.value,
                    body=script.model_dump(mode="json"), note=note.strip()[:200], created_by=actor.user_id,
                    created_at=utcnow())
    session.add(row)
    await session.flush()
    record_audit(session, actor, "ivr_script.save", "ivr_script", row.version,
                 after={"version": row.version, "nodes": len(script.nodes), "note": row.note})
    return row


async def do_activate_ivr_script(session: AsyncSession, actor: Actor, version: int) -> IvrScript:
    """Make a stored version the one new calls run (the previous active one is retired); audited. Calls in
    progress finish on the version they started with."""
    row = await get_ivr_script(session, version)
    current = await active_ivr_script(session)
    if current.id == row.id:
        return row
    check_script(row.body)
    await session.execute(update(IvrScript).where(IvrScript.id == current.id)
                          .values(status=ScriptStatus.retired.value))
    await session.flush()
    row.status = ScriptStatus.active.value
    await session.flush()
    await session.refresh(current)
    record_audit(session, actor, "ivr_script.activate", "ivr_script", row.version,
                 before={"version": current.version}, after={"version": row.version})
    return row


# ---------------------------------------------------------------- recorded prompts


@dataclass(frozen=True)
class PromptStatus:
    """A fixed prompt of the script with the recording uploaded for its key, if any (else the TTS reads it)."""

    slot: PromptSlot
    upload: UploadedPrompt | None


async def script_prompts(session: AsyncSession, settings: Settings) -> list[PromptStatus]:
    """The fixed prompts of the active script, each with its uploaded recording (or None: synthesised)."""
    slots = prompt_slots(script_of(await active_ivr_script(session)))
    store = uploaded_prompts(settings)
    uploads = await asyncio.to_thread(lambda: {slot.key: store.get(slot.key) for slot in slots})
    return [PromptStatus(slot, uploads[slot.key]) for slot in slots]


async def access_prompt_slot(session: AsyncSession, key: str) -> PromptSlot:
    """The fixed prompt ``key`` names in the active script, else in the newest stored version that has it (so a
    draft's prompts can be recorded before it is activated); NotFound for a key no script uses."""
    active = await active_ivr_script(session)
    for row in [active, *await session.scalars(select(IvrScript).where(IvrScript.id != active.id)
                                               .order_by(IvrScript.version.desc()))]:
        found = next((slot for slot in prompt_slots(script_of(row)) if slot.key == key), None)
        if found is not None:
            return found
    raise NotFound(f"语音导航脚本中没有提示音 {key}", code="prompt_key_not_found")


async def access_prompt_audio(settings: Settings, key: str) -> UploadedPrompt:
    """The recording uploaded for ``key`` (to listen to); NotFound when the key has none."""
    found = await asyncio.to_thread(uploaded_prompts(settings).get, key) if PROMPT_KEY.match(key) else None
    if found is None:
        raise NotFound("该提示音没有上传录音", code="prompt_upload_not_found")
    return found


# ---------------------------------------------------------------- where callers drop

MAX_REPORT_DAYS = 366


@dataclass
class NodeStats:
    """How the visits of one IVR node ended in the period (``open``: the call was still in it)."""

    node_id: str
    visits: int = 0
    digit: int = 0
    timeout: int = 0
    invalid: int = 0
    hangup: int = 0
    next: int = 0
    open: int = 0

    @property
    def hangup_rate(self) -> float:
        """Share of the node's visits that ended with the caller hanging up (0–1)."""
        return round(self.hangup / self.visits, 4) if self.visits else 0.0


@dataclass(frozen=True)
class CallStats:
    """The hotline's calls that started in the period."""

    total: int
    refused: int  # turned away over capacity (overflow prompt)
    ivr_only: int  # ended in the IVR, never queued for a person
    queued: int
    answered: int  # connected to an agent
    abandoned: int  # queued, never connected, the caller hung up
    avg_queue_wait_s: float | None  # over queued calls that ended
    avg_talk_s: float | None  # over answered calls that ended
    avg_hold_s: float | None  # over answered calls that ended


@dataclass(frozen=True)
class IvrReport:
    since: datetime
    until: datetime
    calls: CallStats
    nodes: list[NodeStats]


def check_report_period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The report's period: ``until`` defaults to now, ``since`` to 7 days before ``until``; at most 366 days."""
    until = until or utcnow()
    since = since or until - timedelta(days=7)
    if since >= until:
        raise InvalidInput("开始时间应早于结束时间", code="invalid_period")
    if until - since > timedelta(days=MAX_REPORT_DAYS):
        raise InvalidInput(f"统计区间最长 {MAX_REPORT_DAYS} 天", code="invalid_period")
    return since, until


def _avg(values: list[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 1) if present else None


async def ivr_report(session: AsyncSession, since: datetime | None = None,
                     until: datetime | None = None) -> IvrReport:
    """Where callers drop, for calls that started in [since, until): per IVR node (in order of first use) its
    visits and how they ended (digit / timeout / invalid / hang-up / next) with the hang-up rate; and the calls:
    total, refused, answered by agents, abandoned in the queue, average queue wait, talk and hold time."""
    since, until = check_report_period(since, until)
    in_period = (Call.started_at >= since, Call.started_at < until)
    nodes: dict[str, NodeStats] = {}
    rows = await session.execute(
        select(IvrNodeVisit.node_id, IvrNodeVisit.outcome, func.count(), func.min(IvrNodeVisit.id))
        .join(Call, Call.id == IvrNodeVisit.call_id).where(*in_period)
        .group_by(IvrNodeVisit.node_id, IvrNodeVisit.outcome).order_by(func.min(IvrNodeVisit.id)))
    for node_id, outcome, count, _ in rows:
        node = nodes.setdefault(node_id, NodeStats(node_id))
        node.visits += int(count)
        field = str(outcome) if outcome in VisitOutcome.__members__ else "open"
        setattr(node, field, getattr(node, field) + int(count))
    calls = list((await session.execute(
        select(Call.conversation_id, Call.state, Call.queued_at, Call.connected_at, Call.hangup_by, Call.queue_wait_s,
               Call.talk_s, Call.hold_s).where(*in_period))).all())
    ended = [c for c in calls if c.state == CallState.ended.value]
    answered = [c for c in calls if c.connected_at is not None]
    stats = CallStats(
        total=len(calls),
        refused=sum(1 for c in calls if c.conversation_id is None),
        ivr_only=sum(1 for c in ended if c.conversation_id is not None and c.queued_at is None),
        queued=sum(1 for c in calls if c.queued_at is not None),
        answered=len(answered),
        abandoned=sum(1 for c in ended if c.queued_at is not None and c.connected_at is None
                      and c.hangup_by == HangupBy.caller.value),
        avg_queue_wait_s=_avg([c.queue_wait_s for c in ended if c.queued_at is not None]),
        avg_talk_s=_avg([c.talk_s for c in ended if c.connected_at is not None]),
        avg_hold_s=_avg([c.hold_s for c in ended if c.connected_at is not None]),
    )
    return IvrReport(since=since, until=until, calls=stats, nodes=list(nodes.values()))
