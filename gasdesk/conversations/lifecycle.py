"""The conversation lifecycle: the one place where a conversation changes state.

    bot ──handoff──▶ queued ──assign──▶ assigned ──close──▶ closed
     │                 │  ▲                │ │
     │                 │  └──requeue/transfer-to-group──┘ │
     └──close──▶ closed ◀──abandon/close──┘   transfer-to-agent (stays assigned)
"""

from __future__ import annotations

from gasdesk.conversations.models import Conversation, ConversationState
from gasdesk.errors import Conflict

S = ConversationState

TRANSITIONS: dict[str, dict[ConversationState, set[ConversationState]]] = {
    "handoff": {S.bot: {S.queued}},
    "assign": {S.queued: {S.assigned}},
    "transfer_agent": {S.assigned: {S.assigned}, S.queued: {S.assigned}},
    "requeue": {S.assigned: {S.queued}, S.queued: {S.queued}},
    "close": {S.bot: {S.closed}, S.queued: {S.closed}, S.assigned: {S.closed}},
    "reopen": {S.closed: {S.bot}},
}

ACTION_LABELS = {"handoff": "转人工", "assign": "分配坐席", "transfer_agent": "转接坐席", "requeue": "重新排队",
                 "close": "结束会话", "reopen": "重新打开"}


class InvalidTransition(Conflict):
    code = "invalid_transition"


def transition(conversation: Conversation, action: str, target: ConversationState) -> ConversationState:
    """Move ``conversation`` to ``target`` via ``action`` or raise InvalidTransition."""
    allowed = TRANSITIONS.get(action, {}).get(ConversationState(conversation.state), set())
    if target not in allowed:
        state_label = {S.bot: "机器人服务", S.queued: "排队", S.assigned: "人工服务", S.closed: "已结束"}
        raise InvalidTransition(
            f"会话处于“{state_label[ConversationState(conversation.state)]}”状态，不能{ACTION_LABELS.get(action, action)}"
        )
    previous = ConversationState(conversation.state)
    conversation.state = target.value
    return previous
