"""Where an emergency event changes state: one table of allowed transitions, nothing else sets ``status``.

    open ─escalate─▶ escalating(step n) ─escalate─▶ escalating(step n+1) …
      │                 │
      └──acknowledge────┴──▶ acknowledged ─close (summary)─▶ closed
      cancel (false alarm, with a reason) from open, escalating or acknowledged ─▶ cancelled
"""

from __future__ import annotations

from gasdesk.emergency.models import STATUS_LABELS, EmergencyStatus
from gasdesk.errors import Conflict

S = EmergencyStatus

TRANSITIONS: dict[str, dict[EmergencyStatus, EmergencyStatus]] = {
    "escalate": {S.open: S.escalating, S.escalating: S.escalating},
    "acknowledge": {S.open: S.acknowledged, S.escalating: S.acknowledged},
    "close": {S.acknowledged: S.closed},
    "cancel": {S.open: S.cancelled, S.escalating: S.cancelled, S.acknowledged: S.cancelled},
}
ACTION_LABELS = {"escalate": "升级通知", "acknowledge": "确认", "close": "关闭", "cancel": "取消"}


class InvalidEmergencyTransition(Conflict):
    code = "invalid_emergency_transition"


def next_status(current: str, action: str) -> EmergencyStatus:
    """The status after ``action`` from ``current``, or a clear error."""
    if action not in TRANSITIONS:
        raise InvalidEmergencyTransition(f"未知的紧急事件操作: {action}")
    status = EmergencyStatus(current)
    target = TRANSITIONS[action].get(status)
    if target is None:
        raise InvalidEmergencyTransition(f"紧急事件当前为“{STATUS_LABELS[status]}”，不能{ACTION_LABELS[action]}")
    return target


def sources_of(action: str) -> list[str]:
    """The statuses ``action`` may start from (the WHERE of a compare-and-set)."""
    return [status.value for status in TRANSITIONS[action]]


def allowed_actions(current: str) -> list[str]:
    status = EmergencyStatus(current)
    return [action for action, table in TRANSITIONS.items() if status in table and action != "escalate"]
