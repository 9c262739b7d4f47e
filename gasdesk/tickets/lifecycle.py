"""Where tickets change state: one table of allowed transitions, nothing else sets ``status``.

    new ─assign─▶ assigned ─start─▶ in_progress ─resolve─▶ resolved ─close─▶ closed
     │              │  ▲ reassign      │  reassign              │              │
     │              └─resolve──────────┼──────────▶             └──reopen──▶ reopened ◀─reopen─┘
     └─cancel (also from assigned, in_progress, reopened) ─▶ cancelled        │ assign
"""

from __future__ import annotations

from gasdesk.errors import Conflict
from gasdesk.tickets.models import STATUS_LABELS, TicketStatus

T = TicketStatus

TRANSITIONS: dict[str, dict[TicketStatus, TicketStatus]] = {
    "assign": {T.new: T.assigned, T.assigned: T.assigned, T.in_progress: T.assigned, T.reopened: T.assigned},
    "start": {T.assigned: T.in_progress},
    "resolve": {T.assigned: T.resolved, T.in_progress: T.resolved},
    "close": {T.resolved: T.closed},
    "reopen": {T.resolved: T.reopened, T.closed: T.reopened},
    "cancel": {T.new: T.cancelled, T.assigned: T.cancelled, T.in_progress: T.cancelled, T.reopened: T.cancelled},
}
ACTION_LABELS = {"assign": "派单", "start": "开始处理", "resolve": "办结", "close": "关闭", "reopen": "重新打开",
                 "cancel": "取消"}


class InvalidTicketTransition(Conflict):
    code = "invalid_transition"


def next_status(current: str, action: str) -> TicketStatus:
    """The status after ``action`` from ``current``, or a clear error."""
    if action not in TRANSITIONS:
        raise InvalidTicketTransition(f"未知的工单操作: {action}")
    status = TicketStatus(current)
    target = TRANSITIONS[action].get(status)
    if target is None:
        allowed = [ACTION_LABELS[a] for a, table in TRANSITIONS.items() if status in table]
        raise InvalidTicketTransition(
            f"工单当前为“{STATUS_LABELS[status]}”，不能{ACTION_LABELS[action]}"
            + (f"（可执行：{'、'.join(allowed)}）" if allowed else "")
        )
    return target


def allowed_actions(current: str) -> list[str]:
    status = TicketStatus(current)
    return [action for action, table in TRANSITIONS.items() if status in table]
