"""Emergency escalation by risk level (Ⅰ–Ⅳ).

An emergency event (a gas-leak report, a major outage, a manual declaration: ``do_open_emergency``) runs its
level's escalation path: step 1's people are notified at once; when nobody acknowledges within the step's
timeout, the periodic ``emergency.escalate`` (``advance_due``) runs the next step. Everything that decides
the next step is in the database — the event's copy of the steps, ``seq`` (steps run so far), ``current_step``
and ``next_due_at`` — and a step runs only for the transaction whose ``UPDATE … WHERE id = ? AND seq = ?``
matched: two workers, or a worker restarted mid-escalation, never notify a step twice nor skip one. The
notifications of a step (站内通知 through ``notifications.do_notify``; SMS and WeChat through
``outbound.do_queue_outbound``, an outbox written in the same transaction) commit with the advance or not
at all. A phone call is queued in the same way (the notification row is the job; the hotline process places
it and records how it went, ``emergency/phone.py``), or recorded ``unavailable`` without an outbound route.

Configuration: ``do_save_policy`` (a new version per save, audited), ``do_add_duty`` / ``do_remove_duty``
(the duty list), ``do_save_staff_contact`` (mobile / WeChat openid of staff, encrypted).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import DISPATCH
from gasdesk.channels.sms.templates import MAX_VARIABLE_CHARS, sms_chat_text
from gasdesk.clock import as_utc, utcnow
from gasdesk.customers.validation import MOBILE_RE, normalize_phone
from gasdesk.db import commit, execute_counted, transaction
from gasdesk.emergency.lifecycle import allowed_actions, next_status, sources_of
from gasdesk.emergency.models import (
    CHANNEL_LABELS,
    CHANNELS,
    DUTY_ROLES,
    LEVEL_LABELS,
    LEVEL_NUMERALS,
    LEVELS,
    SOURCES,
    DutyAssignment,
    EmergencyEvent,
    EmergencyNotification,
    EmergencyPolicy,
    EmergencyStatus,
    StaffContact,
)
from gasdesk.emergency.models import STATUS_LABELS as EVENT_STATUS_LABELS
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import EmergencyUpdated
from gasdesk.events import emit
from gasdesk.notifications.service import do_notify
from gasdesk.outbound.models import STATUS_LABELS, OutboundMessage, OutboundStatus, Purpose
from gasdesk.outbound.service import do_queue_outbound
from gasdesk.rostering.service import roster_on_duty
from gasdesk.security.crypto import blind_index
from gasdesk.security.pii import redact_pii
from gasdesk.telephony.originate import OUTCOME_LABELS

log = logging.getLogger(__name__)
SYSTEM = Actor.system("emergency", "job")
NOTIFY_KIND = "emergency.escalation"
MAX_STEPS = 6
MAX_TIMEOUT_MIN = 240
# A path may loop back (repeat from step 1 until someone answers); this bounds how often steps run.
MAX_RUNS = 20
SUMMARY_MIN_CHARS = 4
SCAN_EVERY_S = 30

# Used for a level until an admin saves its first version (version 0).
DEFAULT_STEPS: dict[int, list[dict[str, Any]]] = {
    1: [{"users": [], "duty_roles": ["shift_lead", "repair_dispatch"], "channels": ["in_app", "sms", "phone"],
         "timeout_min": 5, "next_step": 2},
        {"users": [], "duty_roles": ["safety_lead"], "channels": ["in_app", "sms", "phone"], "timeout_min": 5,
         "next_step": 3},
        {"users": [], "duty_roles": ["shift_lead", "repair_dispatch", "safety_lead"], "channels": ["in_app", "sms"],
         "timeout_min": 10, "next_step": None}],
    2: [{"users": [], "duty_roles": ["repair_dispatch"], "channels": ["in_app", "sms"], "timeout_min": 10,
         "next_step": 2},
        {"users": [], "duty_roles": ["shift_lead"], "channels": ["in_app", "sms"], "timeout_min": 10, "next_step": 3},
        {"users": [], "duty_roles": ["safety_lead"], "channels": ["in_app", "sms"], "timeout_min": 15,
         "next_step": None}],
    3: [{"users": [], "duty_roles": ["repair_dispatch"], "channels": ["in_app"], "timeout_min": 15, "next_step": 2},
        {"users": [], "duty_roles": ["shift_lead"], "channels": ["in_app", "sms"], "timeout_min": 30,
         "next_step": None}],
    4: [{"users": [], "duty_roles": ["repair_dispatch"], "channels": ["in_app"], "timeout_min": 30, "next_step": 2},
        {"users": [], "duty_roles": ["shift_lead"], "channels": ["in_app"], "timeout_min": 60, "next_step": None}],
}

# A phone alert: (session, event, user id, seq) → the notification's (status, reason): "queued" for the hotline
# to call (``emergency/phone.py``: plays the alert, "按 1 确认" acknowledges). None registered: "unavailable".
PhoneAlerter = Callable[[AsyncSession, EmergencyEvent, int, int], Awaitable[tuple[str, str | None]]]
_phone_alerters: list[PhoneAlerter] = []


def register_phone_alerter(alerter: PhoneAlerter | None) -> None:
    """The phone channel's hook (``emergency/phone.py queue_phone_alert``, wired in ``gasdesk/worker.py`` and
    the hotline's runtime); None removes it."""
    _phone_alerters.clear()
    if alerter is not None:
        _phone_alerters.append(alerter)


def event_number(event_id: int) -> str:
    return f"EM{event_id:05d}"


def level_label(level: int) -> str:
    return f"{LEVEL_NUMERALS.get(level, '?')}级"


def _emit(session: AsyncSession, event: EmergencyEvent) -> None:
    emit(session, EmergencyUpdated(event_id=event.id, level=event.level, status=event.status, seq=event.seq))


# ------------------------------------------------------------------ the level of a gas-leak report

_SEVERE = re.compile(r"爆炸|爆燃|着火|起火|火苗|明火|冒烟|晕倒|昏迷|头晕|中毒|呼吸困难")
_INDOORS = re.compile(r"家里|家中|屋里|屋内|室内|厨房|卫生间|客厅|卧室|楼道|楼梯间|地下室|车库|房间")
_SMELL = re.compile(r"味|闻到|刺鼻|嘶嘶")


def leak_level(text: str) -> int:
    """The risk level of a leak report: fire, an explosion or someone unwell → Ⅰ; indoors with a smell (or
    hissing) → Ⅰ; anything else → Ⅱ (a leak is never below Ⅱ)."""
    if _SEVERE.search(text or ""):
        return 1
    if _INDOORS.search(text or "") and _SMELL.search(text or ""):
        return 1
    return 2


# ------------------------------------------------------------------ policies


def check_policy_steps(raw: Any, *, user_ids: set[int]) -> list[dict[str, Any]]:
    """A level's steps, checked and normalised; ``InvalidInput`` naming the step otherwise. ``user_ids``:
    the active staff who may be named. ``next_step`` is 1-based (None: stop after this step); when absent
    it is the following step."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("至少需要一个升级步骤", code="invalid_emergency_policy")
    if len(raw) > MAX_STEPS:
        raise InvalidInput(f"升级步骤最多 {MAX_STEPS} 个", code="invalid_emergency_policy")
    steps = []
    for index, step in enumerate(raw, start=1):
        where = f"第 {index} 步"
        if not isinstance(step, dict):
            raise InvalidInput(f"{where}格式错误", code="invalid_emergency_policy")
        users = step.get("users") or []
        duty_roles = step.get("duty_roles") or []
        channels = step.get("channels") or []
        if not isinstance(users, list) or not all(isinstance(u, int) and not isinstance(u, bool) for u in users):
            raise InvalidInput(f"{where}：人员格式错误", code="invalid_emergency_policy")
        unknown_users = [u for u in users if u not in user_ids]
        if unknown_users:
            raise InvalidInput(f"{where}：人员不存在或已停用", code="invalid_emergency_policy")
        if not isinstance(duty_roles, list) or any(r not in DUTY_ROLES for r in duty_roles):
            raise InvalidInput(f"{where}：未知的值班岗位", code="invalid_emergency_policy")
        if not users and not duty_roles:
            raise InvalidInput(f"{where}：请至少选择一名人员或一个值班岗位", code="invalid_emergency_policy")
        if not isinstance(channels, list) or not channels or any(c not in CHANNELS for c in channels):
            raise InvalidInput(f"{where}：请选择通知渠道（站内通知、短信、微信、电话）", code="invalid_emergency_policy")
        timeout = step.get("timeout_min")
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= MAX_TIMEOUT_MIN:
            raise InvalidInput(f"{where}：确认时限应为 1–{MAX_TIMEOUT_MIN} 分钟", code="invalid_emergency_policy")
        following = index + 1 if index < len(raw) else None
        next_step = step.get("next_step", following)
        if next_step is not None and (not isinstance(next_step, int) or isinstance(next_step, bool)
                                      or not 1 <= next_step <= len(raw) or next_step == index):
            raise InvalidInput(f"{where}：下一步应为其他步骤的序号或“结束”", code="invalid_emergency_policy")
        steps.append({"users": sorted(set(users)), "duty_roles": [r for r in DUTY_ROLES if r in duty_roles],
                      "channels": [c for c in CHANNELS if c in channels], "timeout_min": timeout,
                      "next_step": next_step})
    return steps


def check_level(level: Any) -> int:
    if level not in LEVELS:
        raise InvalidInput("风险等级应为 1–4（Ⅰ–Ⅳ级）", code="invalid_emergency_level")
    return int(level)


async def active_staff_ids(session: AsyncSession) -> set[int]:
    return set(await session.scalars(select(User.id).where(User.is_active.is_(True), User.role != "wall")))


@dataclass(frozen=True)
class PolicyView:
    level: int
    version: int  # 0: the built-in default, never saved
    steps: list[dict[str, Any]]
    saved_at: datetime | None
    saved_by_id: int | None


async def policy_for(session: AsyncSession, level: int) -> PolicyView:
    """The level's policy in force: its newest saved version, else the built-in default."""
    row = await session.scalar(select(EmergencyPolicy).where(EmergencyPolicy.level == level)
                               .order_by(EmergencyPolicy.version.desc()).limit(1))
    if row is None:
        return PolicyView(level, 0, [dict(s) for s in DEFAULT_STEPS[level]], None, None)
    return PolicyView(level, row.version, list(row.steps), row.created_at, row.created_by_id)


async def policies(session: AsyncSession) -> list[PolicyView]:
    return [await policy_for(session, level) for level in LEVELS]


async def do_save_policy(session: AsyncSession, actor: Actor, level: int, raw_steps: Any) -> EmergencyPolicy:
    """Save a new version of ``level``'s escalation path (checked; audited with before/after). Events already
    open keep the steps they started with."""
    level = check_level(level)
    steps = check_policy_steps(raw_steps, user_ids=await active_staff_ids(session))
    current = await policy_for(session, level)
    row = EmergencyPolicy(level=level, version=current.version + 1, steps=steps, created_at=utcnow(),
                          created_by_id=actor.user_id)
    session.add(row)
    await session.flush()
    record_audit(session, actor, "config.emergency_policy", "config", f"emergency_policy:{level}",
                 before={"version": current.version, "steps": current.steps},
                 after={"version": row.version, "steps": steps})
    return row


# ------------------------------------------------------------------ the duty list and staff contacts


async def on_duty(session: AsyncSession, duty_role: str, at: datetime | None = None) -> list[int]:
    """The active users holding ``duty_role`` at ``at`` (now by default). When a published roster (智能排班)
    schedules the role then, its people come first (``rostering.service.roster_on_duty``) and the duty list's
    entries for that time follow (a swap entered on /admin/duty still reaches its person); otherwise the duty
    list alone, earliest assignment first."""
    at = at or utcnow()
    rostered = await roster_on_duty(session, duty_role, at) or []
    rows = await session.scalars(
        select(DutyAssignment.user_id).join(User, User.id == DutyAssignment.user_id)
        .where(DutyAssignment.duty_role == duty_role, DutyAssignment.starts_at <= at, DutyAssignment.ends_at > at,
               User.is_active.is_(True))
        .order_by(DutyAssignment.starts_at, DutyAssignment.id))
    return list(dict.fromkeys([*rostered, *rows]))


async def duty_list(session: AsyncSession, *, since: datetime | None = None) -> list[DutyAssignment]:
    """Assignments not yet over (or ending after ``since``), by start."""
    since = since or utcnow()
    return list(await session.scalars(select(DutyAssignment).where(DutyAssignment.ends_at > since)
                                      .order_by(DutyAssignment.starts_at, DutyAssignment.duty_role)
                                      .limit(500)))


async def do_add_duty(session: AsyncSession, actor: Actor, *, user_id: int, duty_role: str, starts_at: datetime,
                      ends_at: datetime) -> DutyAssignment:
    """Put ``user_id`` on duty as ``duty_role`` from ``starts_at`` to ``ends_at`` (aware; stored UTC). Audited."""
    if duty_role not in DUTY_ROLES:
        raise InvalidInput("未知的值班岗位", code="invalid_duty_role")
    if user_id not in await active_staff_ids(session):
        raise InvalidInput("人员不存在或已停用", code="invalid_duty_user")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidInput("值班时间需要带时区", code="invalid_duty_time")
    starts_at, ends_at = as_utc(starts_at), as_utc(ends_at)
    if ends_at <= starts_at:
        raise InvalidInput("值班结束时间必须晚于开始时间", code="invalid_duty_time")
    if ends_at - starts_at > timedelta(days=31):
        raise InvalidInput("一次值班最长 31 天", code="invalid_duty_time")
    row = DutyAssignment(user_id=user_id, duty_role=duty_role, starts_at=starts_at, ends_at=ends_at,
                         created_at=utcnow())
    session.add(row)
    await session.flush()
    record_audit(session, actor, "config.duty_add", "config", f"duty:{row.id}",
                 after={"user_id": user_id, "duty_role": duty_role, "starts_at": starts_at.isoformat(),
                        "ends_at": ends_at.isoformat()})
    return row


async def do_remove_duty(session: AsyncSession, actor: Actor, duty_id: int) -> None:
    """Take an assignment off the duty list. Audited."""
    row = await session.get(DutyAssignment, duty_id)
    if row is None:
        raise NotFound("值班记录不存在", code="duty_not_found")
    record_audit(session, actor, "config.duty_remove", "config", f"duty:{row.id}",
                 before={"user_id": row.user_id, "duty_role": row.duty_role, "starts_at": row.starts_at.isoformat(),
                         "ends_at": row.ends_at.isoformat()})
    await session.delete(row)
    await session.flush()


def mask_mobile(mobile: str | None) -> str:
    if not mobile:
        return ""
    return f"{mobile[:3]}****{mobile[-4:]}" if len(mobile) >= 7 else "****"


async def staff_contacts(session: AsyncSession) -> dict[int, StaffContact]:
    return {row.user_id: row for row in await session.scalars(select(StaffContact))}


async def do_save_staff_contact(session: AsyncSession, actor: Actor, *, user_id: int, mobile: str,
                                wechat_openid: str) -> StaffContact:
    """Set how a staff member is reached in an emergency (empty clears a channel). Audited without the number
    itself (masked) or the openid."""
    if user_id not in await active_staff_ids(session):
        raise InvalidInput("人员不存在或已停用", code="invalid_duty_user")
    phone = normalize_phone(mobile) if mobile.strip() else ""
    if phone and not MOBILE_RE.match(phone):
        raise InvalidInput("请填写 11 位手机号码", code="invalid_staff_mobile")
    openid = wechat_openid.strip()
    if openid and not re.fullmatch(r"[A-Za-z0-9_-]{6,64}", openid):
        raise InvalidInput("微信 openid 格式错误", code="invalid_staff_openid")
    row = await session.get(StaffContact, user_id)
    before = None
    if row is None:
        row = StaffContact(user_id=user_id)
        session.add(row)
    else:
        before = {"mobile": mask_mobile(row.mobile), "wechat": bool(row.wechat_openid)}
    row.mobile = phone or None
    row.mobile_index = blind_index(phone, kind="phone") if phone else None
    row.wechat_openid = openid or None
    row.updated_at = utcnow()
    await session.flush()
    record_audit(session, actor, "config.staff_contact", "user", user_id, before=before,
                 after={"mobile": mask_mobile(row.mobile), "wechat": bool(row.wechat_openid)})
    return row


# ------------------------------------------------------------------ running a step


async def _recipients(session: AsyncSession, step: dict[str, Any], at: datetime) -> list[tuple[int, str | None]]:
    """(user id, duty role they were chosen by) for a step, each person once; duty resolved at ``at``."""
    chosen: dict[int, str | None] = {}
    active = await active_staff_ids(session)
    for user_id in step.get("users") or []:
        if user_id in active:
            chosen.setdefault(user_id, None)
    for role in step.get("duty_roles") or []:
        for user_id in await on_duty(session, role, at):
            chosen.setdefault(user_id, role)
    return list(chosen.items())


def _sms_value(text: str) -> str:
    line = sms_chat_text(text) or "-"
    return line if len(line) <= MAX_VARIABLE_CHARS else line[: MAX_VARIABLE_CHARS - 1] + "…"


async def _notify_one(session: AsyncSession, event: EmergencyEvent, seq: int, step: int, user_id: int,
                      duty_role: str | None, channel: str, contact: StaffContact | None,
                      now: datetime) -> EmergencyNotification:
    row = EmergencyNotification(event_id=event.id, seq=seq, step=step, user_id=user_id, duty_role=duty_role,
                                channel=channel, status="sent", sent_at=now)
    number = event_number(event.id)
    if channel == "in_app":
        note = do_notify(session, user_id, NOTIFY_KIND, f"{level_label(event.level)}紧急事件 {number}：{event.title}",
                         (event.description or "")[:300], link=f"/emergency/{event.id}")
        await session.flush()
        row.notification_id = note.id
    elif channel in ("sms", "wechat"):
        recipient = (contact.mobile if channel == "sms" else contact.wechat_openid) if contact else None
        if not recipient:
            row.status, row.reason = "no_contact", f"no_{channel}"
        else:
            params = {"level": level_label(event.level), "event": number, "title": _sms_value(event.title)}
            out = await do_queue_outbound(
                session, channel=channel, purpose=Purpose.emergency_alert,
                method="sms" if channel == "sms" else "template", recipient=recipient,
                template_key="emergency_alert", params=params, emergency=True,
                dedupe_key=f"emergency:{event.id}:{seq}:{user_id}:{channel}", actor=SYSTEM)
            row.status, row.outbound_id = "queued", out.id
    else:  # phone
        if _phone_alerters:
            row.status, row.reason = await _phone_alerters[0](session, event, user_id, seq)
        else:
            row.status, row.reason = "unavailable", "no_outbound_call"
    session.add(row)
    return row


async def _run_step(session: AsyncSession, event: EmergencyEvent, step_index: int, seq: int,
                    now: datetime) -> list[EmergencyNotification]:
    """Notify step ``step_index`` (run number ``seq``): every recipient on every channel of the step. Returns
    the rows; the caller has already won the compare-and-set for ``seq``."""
    step = event.steps[step_index]
    people = await _recipients(session, step, now)
    rows: list[EmergencyNotification] = []
    if not people:
        row = EmergencyNotification(event_id=event.id, seq=seq, step=step_index, user_id=None, channel="none",
                                    status="no_one_on_duty", reason="no_recipient", sent_at=now)
        session.add(row)
        rows.append(row)
    contacts = await staff_contacts(session) if people else {}
    for user_id, duty_role in people:
        for channel in step["channels"]:
            rows.append(await _notify_one(session, event, seq, step_index, user_id, duty_role, channel,
                                          contacts.get(user_id), now))
    await session.flush()
    return rows


def _reached(rows: list[EmergencyNotification]) -> bool:
    return any(row.status in ("sent", "queued") for row in rows)


def _due_after(step: dict[str, Any], rows: list[EmergencyNotification], now: datetime) -> datetime:
    # Nobody could be reached: waiting out the timeout would only lose minutes; the next scan moves on.
    return now + timedelta(minutes=int(step["timeout_min"])) if _reached(rows) else now


def _next_index(event: EmergencyEvent) -> int | None:
    """The 0-based step after the current one, or None when the path ends (or has run ``MAX_RUNS`` steps)."""
    if event.seq >= MAX_RUNS or not event.steps:
        return None
    if event.current_step < 0:
        return 0
    following = event.steps[event.current_step].get("next_step")
    if following is None or not 1 <= int(following) <= len(event.steps):
        return None
    return int(following) - 1


# ------------------------------------------------------------------ events


async def do_open_emergency(session: AsyncSession, actor: Actor, *, source: str, level: int, title: str,
                            description: str = "", ticket_id: int | None = None,
                            outage_id: int | None = None) -> EmergencyEvent:
    """Open an emergency event and notify its level's first step at once (in this transaction: the
    notifications leave only if the event commits). Audited; ``emergency.updated`` after commit. Callers:
    ``tickets/emergency.py do_report_gas_leak``, the board's manual declaration, a major outage."""
    if source not in SOURCES:
        raise InvalidInput("未知的事件来源", code="invalid_emergency_source")
    level = check_level(level)
    title = redact_pii(title.strip())[:120]
    if not title:
        raise InvalidInput("请填写事件标题", code="invalid_emergency_title")
    policy = await policy_for(session, level)
    now = utcnow()
    event = EmergencyEvent(level=level, source=source, title=title, description=redact_pii(description.strip())[:2000],
                           ticket_id=ticket_id, outage_id=outage_id, status=EmergencyStatus.open.value,
                           policy_version=policy.version, steps=policy.steps, seq=0, current_step=-1,
                           opened_at=now, opened_by_id=actor.user_id)
    session.add(event)
    await session.flush()
    record_audit(session, actor, "emergency.open", "emergency", event.id,
                 after={"level": level, "source": source, "ticket_id": ticket_id, "outage_id": outage_id,
                        "policy_version": policy.version})
    first = _next_index(event)
    if first is not None:
        event.status = next_status(event.status, "escalate").value
        event.seq, event.current_step = 1, first
        rows = await _run_step(session, event, first, 1, now)
        event.next_due_at = _due_after(event.steps[first], rows, now)
        record_audit(session, actor, "emergency.escalate", "emergency", event.id,
                     after={"seq": 1, "step": first + 1, "notified": _notified_summary(rows)})
    _emit(session, event)
    return event


def _notified_summary(rows: list[EmergencyNotification]) -> list[str]:
    return [f"{row.user_id or '-'}:{row.channel}:{row.status}" for row in rows]


async def advance_event(session: AsyncSession, event_id: int, seq: int, *, now: datetime | None = None) -> bool:
    """Run the step after run ``seq`` of an escalating event whose step timed out — only if this transaction
    wins the compare-and-set on (id, seq); False when someone else did (or it was acknowledged meanwhile)."""
    now = now or utcnow()
    event = await session.get(EmergencyEvent, event_id, populate_existing=True)
    if event is None or event.seq != seq or event.status != EmergencyStatus.escalating.value:
        return False
    following = _next_index(event)
    guard = (EmergencyEvent.id == event_id, EmergencyEvent.seq == seq,
             EmergencyEvent.status == EmergencyStatus.escalating.value, EmergencyEvent.next_due_at <= now)
    if following is None:
        # The path ended without an acknowledgement: stop scanning it, keep it on the board in red.
        won = await execute_counted(session, update(EmergencyEvent).where(*guard).values(
            next_due_at=None, exhausted_at=now).execution_options(synchronize_session=False))
        if won != 1:
            return False
        await session.refresh(event)
        record_audit(session, SYSTEM, "emergency.exhausted", "emergency", event.id, after={"seq": seq})
        _emit(session, event)
        return True
    step = event.steps[following]
    provisional_due = now + timedelta(minutes=int(step["timeout_min"]))
    won = await execute_counted(session, update(EmergencyEvent).where(*guard).values(
        seq=seq + 1, current_step=following, next_due_at=provisional_due)
        .execution_options(synchronize_session=False))
    if won != 1:
        return False
    await session.refresh(event)
    rows = await _run_step(session, event, following, seq + 1, now)
    event.next_due_at = _due_after(step, rows, now)
    record_audit(session, SYSTEM, "emergency.escalate", "emergency", event.id,
                 after={"seq": seq + 1, "step": following + 1, "notified": _notified_summary(rows)})
    _emit(session, event)
    return True


async def advance_due(session: AsyncSession) -> int:
    """The periodic ``emergency.escalate``: run the next step of every escalating event whose acknowledgement
    time is up. Returns how many events moved."""
    now = utcnow()
    due = list(await session.execute(select(EmergencyEvent.id, EmergencyEvent.seq).where(
        EmergencyEvent.status == EmergencyStatus.escalating.value, EmergencyEvent.next_due_at <= now)
        .order_by(EmergencyEvent.next_due_at, EmergencyEvent.id).limit(200)))
    # Each event advances in a transaction of its own: one that fails (a channel's error) is retried at the
    # next scan, and never holds back the others. Committing here returns the connection first (SQLite: one).
    await commit(session)
    moved = 0
    for event_id, seq in due:
        try:
            async with transaction() as own:
                if await advance_event(own, event_id, seq, now=now):
                    moved += 1
        except Exception:
            log.exception("emergency event %s: step after run %s failed; retried at the next scan", event_id, seq)
    return moved


async def access_event(session: AsyncSession, event_id: int) -> EmergencyEvent:
    event = await session.get(EmergencyEvent, event_id)
    if event is None:
        raise NotFound("紧急事件不存在", code="emergency_not_found")
    return event


async def was_notified(session: AsyncSession, event: EmergencyEvent, user: User) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(EmergencyNotification).where(
        EmergencyNotification.event_id == event.id, EmergencyNotification.user_id == user.id)))


async def check_can_acknowledge(session: AsyncSession, user: User, event: EmergencyEvent) -> None:
    """Supervisors, dispatchers and admins may acknowledge any event; anyone else only one they were told of."""
    if user.role in DISPATCH or await was_notified(session, event, user):
        return
    raise PermissionDenied("您不在此事件的通知名单中", code="emergency_not_notified")


async def do_acknowledge(session: AsyncSession, user: User, event: EmergencyEvent, *, via: str = "board",
                         source: str = "web") -> EmergencyEvent:
    """``user`` takes the event: escalation stops (a compare-and-set, so a step racing with this either ran
    before it or not at all). Their notification rows get the time. Audited; ``emergency.updated``."""
    await check_can_acknowledge(session, user, event)
    target = next_status(event.status, "acknowledge")
    now = utcnow()
    won = await execute_counted(session, update(EmergencyEvent).where(
        EmergencyEvent.id == event.id, EmergencyEvent.status.in_(sources_of("acknowledge")))
        .values(status=target.value, acknowledged_at=now, acknowledged_by_id=user.id, acknowledged_via=via[:20],
                next_due_at=None).execution_options(synchronize_session=False))
    if won != 1:
        raise Conflict("事件已被他人确认或已结束", code="emergency_already_acknowledged")
    await execute_counted(session, update(EmergencyNotification).where(
        EmergencyNotification.event_id == event.id, EmergencyNotification.user_id == user.id,
        EmergencyNotification.acknowledged_at.is_(None)).values(acknowledged_at=now)
        .execution_options(synchronize_session=False))
    await session.refresh(event)
    record_audit(session, Actor.of(user, source), "emergency.acknowledge", "emergency", event.id,
                 before={"status": "escalating"}, after={"status": event.status, "via": via, "seq": event.seq})
    _emit(session, event)
    return event


async def do_close_emergency(session: AsyncSession, user: User, event: EmergencyEvent, summary: str, *,
                             source: str = "web") -> EmergencyEvent:
    """Close an acknowledged event with a summary of what was done (required). Audited."""
    text = redact_pii(summary.strip())[:2000]
    if len(text) < SUMMARY_MIN_CHARS:
        raise InvalidInput(f"请填写处置总结（至少 {SUMMARY_MIN_CHARS} 个字）", code="emergency_summary_required")
    before = event.status
    event.status = next_status(event.status, "close").value
    event.closed_at, event.closed_by_id, event.summary = utcnow(), user.id, text
    event.next_due_at = None
    record_audit(session, Actor.of(user, source), "emergency.close", "emergency", event.id,
                 before={"status": before}, after={"status": event.status, "summary": text})
    _emit(session, event)
    return event


async def do_cancel_emergency(session: AsyncSession, user: User, event: EmergencyEvent, reason: str, *,
                              source: str = "web") -> EmergencyEvent:
    """Cancel an event (false alarm, declared by mistake) with a reason (required); escalation stops. Audited."""
    text = redact_pii(reason.strip())[:500]
    if len(text) < 2:
        raise InvalidInput("请填写取消原因", code="emergency_reason_required")
    before = event.status
    target = next_status(event.status, "cancel")
    won = await execute_counted(session, update(EmergencyEvent).where(
        EmergencyEvent.id == event.id, EmergencyEvent.status.in_(sources_of("cancel")))
        .values(status=target.value, cancel_reason=text, closed_at=utcnow(), closed_by_id=user.id, next_due_at=None)
        .execution_options(synchronize_session=False))
    if won != 1:
        raise Conflict("事件已结束", code="emergency_already_ended")
    await session.refresh(event)
    record_audit(session, Actor.of(user, source), "emergency.cancel", "emergency", event.id,
                 before={"status": before}, after={"status": event.status, "reason": text})
    _emit(session, event)
    return event


# ------------------------------------------------------------------ reading: the board


async def board_events(session: AsyncSession, *, include_recent: bool = True) -> list[EmergencyEvent]:
    """Open events (most severe, then oldest first), then the last few closed or cancelled ones."""
    open_rows = list(await session.scalars(select(EmergencyEvent).where(
        EmergencyEvent.status.in_([EmergencyStatus.open.value, EmergencyStatus.escalating.value,
                                   EmergencyStatus.acknowledged.value]))
        .order_by(EmergencyEvent.level, EmergencyEvent.opened_at).limit(100)))
    if not include_recent:
        return open_rows
    ended = list(await session.scalars(select(EmergencyEvent).where(
        EmergencyEvent.status.in_([EmergencyStatus.closed.value, EmergencyStatus.cancelled.value]))
        .order_by(EmergencyEvent.closed_at.desc()).limit(10)))
    return open_rows + ended


async def notifications_of(session: AsyncSession, event_ids: list[int]) -> dict[int, list[EmergencyNotification]]:
    found: dict[int, list[EmergencyNotification]] = {event_id: [] for event_id in event_ids}
    if not event_ids:
        return found
    for row in await session.scalars(select(EmergencyNotification).where(
            EmergencyNotification.event_id.in_(event_ids)).order_by(EmergencyNotification.id)):
        found[row.event_id].append(row)
    return found


async def user_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {row.id: row.display_name for row in await session.scalars(select(User).where(User.id.in_(ids)))}


NOTIFICATION_STATUS_LABELS = {"sent": "已通知", "queued": "已排队", "unavailable": "暂不可用", "no_contact": "无联系方式",
                              "no_one_on_duty": "无人值班", "calling": "呼叫中", "answered": "已接听", "failed": "未接通",
                              "skipped": "已跳过"}
# Why a phone alert ended as it did (the notification's reason), for the board.
PHONE_REASON_LABELS = {"acknowledged": "按1确认", "already_acknowledged": "他人已确认", "no_key": "未按键", "hung_up": "接听后挂断",
                       **{outcome.value: label for outcome, label in OUTCOME_LABELS.items()},
                       "interrupted": "呼叫中断", "step_over": "已升级到下一步",
                       "no_outbound_call": "未配置外呼线路", "no_mobile": "无手机号"}


async def event_views(session: AsyncSession, events: list[EmergencyEvent]) -> list[dict[str, Any]]:
    """The board's (and the API's) form of events: who was notified on which channel when (with the SMS /
    WeChat delivery status from the outbox), who acknowledged when, the elapsed times."""
    rows_of = await notifications_of(session, [e.id for e in events])
    ids = {uid for rows in rows_of.values() for r in rows if (uid := r.user_id) is not None}
    ids |= {uid for e in events for uid in (e.acknowledged_by_id, e.closed_by_id, e.opened_by_id) if uid}
    names = await user_names(session, ids)
    outbound_ids = [r.outbound_id for rows in rows_of.values() for r in rows if r.outbound_id]
    outbound = {row.id: row for row in await session.scalars(
        select(OutboundMessage).where(OutboundMessage.id.in_(outbound_ids)))} if outbound_ids else {}
    now = utcnow()
    views = []
    for event in events:
        opened = as_utc(event.opened_at)
        end = as_utc(event.closed_at) if event.closed_at else now
        acked = as_utc(event.acknowledged_at) if event.acknowledged_at else None
        notes = []
        for row in rows_of[event.id]:
            out = outbound.get(row.outbound_id or 0)
            notes.append({
                "id": row.id, "seq": row.seq, "step": row.step + 1, "user_id": row.user_id,
                "user_name": names.get(row.user_id or 0, "—"), "duty_role": row.duty_role,
                "duty_role_label": DUTY_ROLES.get(row.duty_role or "", ""), "channel": row.channel,
                "channel_label": CHANNEL_LABELS.get(row.channel, "—"), "status": row.status,
                "status_label": NOTIFICATION_STATUS_LABELS.get(row.status, row.status), "reason": row.reason,
                "reason_label": PHONE_REASON_LABELS.get(row.reason or "", "") if row.channel == "phone" else "",
                "delivery": out.status if out is not None else None,
                "delivery_label": STATUS_LABELS[OutboundStatus(out.status)] if out is not None else None,
                "sent_at": as_utc(row.sent_at), "after_s": int((as_utc(row.sent_at) - opened).total_seconds()),
                "acknowledged_at": as_utc(row.acknowledged_at) if row.acknowledged_at else None,
            })
        views.append({
            "id": event.id, "number": event_number(event.id), "level": event.level,
            "level_label": LEVEL_LABELS[event.level], "source": event.source, "source_label": SOURCES[event.source],
            "title": event.title, "description": event.description or "", "status": event.status,
            "status_label": EVENT_STATUS_LABELS[EmergencyStatus(event.status)], "ticket_id": event.ticket_id,
            "outage_id": event.outage_id, "policy_version": event.policy_version, "steps_total": len(event.steps),
            "step": event.current_step + 1 if event.current_step >= 0 else None, "seq": event.seq,
            "next_due_at": as_utc(event.next_due_at) if event.next_due_at else None,
            "exhausted": event.exhausted_at is not None, "opened_at": opened,
            "elapsed_s": int((end - opened).total_seconds()),
            "acknowledged_at": acked, "acknowledged_by": names.get(event.acknowledged_by_id or 0),
            "acknowledged_via": event.acknowledged_via,
            "ack_after_s": int((acked - opened).total_seconds()) if acked else None,
            "closed_at": as_utc(event.closed_at) if event.closed_at else None,
            "closed_by": names.get(event.closed_by_id or 0), "summary": event.summary,
            "cancel_reason": event.cancel_reason, "actions": allowed_actions(event.status),
            "notifications": notes,
        })
    return views
