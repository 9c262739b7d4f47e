"""Announcing a conversation's state: the events the consoles, the resident's chat and webhooks follow.

Apart from ``service.py`` because the ACD (``routing/service.py``) announces the assignments it makes and
``service.py`` calls the ACD: both import this module, neither imports the other back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.conversations.models import Conversation
from gasdesk.event_types import ConversationAssigned, ConversationStarted, ConversationStateChanged
from gasdesk.events import emit


def publish_state(session: AsyncSession, conversation: Conversation, *, previous_agent_id: int | None = None,
                  event: type[ConversationStateChanged | ConversationStarted] = ConversationStateChanged) -> None:
    """Announce the conversation's state after commit (``conversation.state``, or ``conversation.started``)."""
    emit(session, event(
        conversation_id=conversation.id, state=conversation.state, agent_id=conversation.agent_id,
        previous_agent_id=previous_agent_id, skill_group_id=conversation.skill_group_id,
        accepted=conversation.accepted_at is not None))


async def announce_assignment(session: AsyncSession, conversation: Conversation, *,
                              previous_agent_id: int | None) -> None:
    """Tell everyone a conversation now has an agent (called by the ACD and by transfers)."""
    publish_state(session, conversation, previous_agent_id=previous_agent_id)
    emit(session, ConversationAssigned(conversation_id=conversation.id, agent_id=conversation.agent_id))
