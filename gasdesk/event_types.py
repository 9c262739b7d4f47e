"""Every domain event, declared once: its name, its payload (a frozen dataclass with typed fields) and who
must receive it.

``emit(session, QueueChanged(skill_group_id=3))`` is the only way to announce a change (``gasdesk.events``);
a payload class not declared here is refused. The payload's fields, in declaration order, are the JSON
object on the bus, in Redis and (spread into the frame) on the sockets, so the declaration order is part of
the wire format. Webhook bodies are declared beside the events they report (``webhook=``).
``tests/test_events.py`` checks that everything the code emits is declared here, that each payload matches
its declaration, and that each event reaches the consumers listed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Annotated, Any, ClassVar, TypeVar, dataclass_transform, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model, with_config
from pydantic.fields import FieldInfo
from typing_extensions import TypedDict  # pydantic validates typing.TypedDict only from Python 3.12

from gasdesk.conversations.wire import CLOSED, MessageWire


class Consumer(StrEnum):
    """Who acts on an event once it is committed (``realtime/hub.py`` for the socket audiences)."""

    RESIDENT = "resident"  # the widget sockets following the conversation (/ws/webchat)
    AGENT = "agent"  # the consoles of the conversation's agent (/ws/agent)
    STAFF = "staff"  # every open agent console (/ws/agent)
    BELL = "bell"  # the bells of one staff user's pages (/ws/staff)
    HUB = "hub"  # each process's hub acts on it (no frame)
    WEBHOOK = "webhook"  # endpoints subscribed to it: a delivery row queued in the same transaction
    ANALYTICS = "analytics"  # facts for the reports (gasdesk/analytics/ingest.py), written after commit


class UnknownEventType(TypeError):
    """A programming error: an event that is not declared in ``gasdesk/event_types.py``."""


# Tells type checkers that subclasses are frozen dataclasses (``event_type`` makes them so at run time).
@dataclass_transform(frozen_default=True)
class EventPayload:
    """Base of every declared payload (made a frozen, slotted dataclass by ``event_type``)."""

    __slots__ = ()
    TYPE: ClassVar[str]
    # (attribute, key on the wire) in field order; the key differs where the wire name is a Python keyword
    KEYS: ClassVar[tuple[tuple[str, str], ...]]

    def as_dict(self) -> dict[str, Any]:
        """The payload as it travels: a plain dict, keys in declaration order."""
        return {key: getattr(self, attr) for attr, key in self.KEYS}


@dataclass(frozen=True)
class EventSpec:
    name: str
    payload: type[EventPayload] | None  # None: a webhook-only event (nothing on the bus)
    consumers: frozenset[Consumer]
    webhook: Any = None  # the type of the webhook body's ``data`` (a TypedDict or a payload class)


EVENT_TYPES: dict[str, EventSpec] = {}
P = TypeVar("P", bound=EventPayload)


def event_type(name: str, *consumers: Consumer, webhook: Any = None) -> Callable[[type[P]], type[P]]:
    """Class decorator: declare ``name`` with this payload and the consumers that must receive it."""

    def register(cls: type[P]) -> type[P]:
        if name in EVENT_TYPES:
            raise UnknownEventType(f"event type {name!r} declared twice")
        made = dataclass(frozen=True, slots=True)(cls)
        hints = get_type_hints(made, include_extras=True)
        keys = []
        for f in fields(made):  # type: ignore[arg-type]  # dataclass() just made it one
            alias = next((m.alias for m in getattr(hints[f.name], "__metadata__", ())
                          if isinstance(m, FieldInfo) and m.alias), None)
            keys.append((f.name, alias or f.name))
        made.TYPE, made.KEYS = name, tuple(keys)
        EVENT_TYPES[name] = EventSpec(name, made, frozenset(consumers), webhook)
        return made

    return register


def webhook_only_event(name: str, data: Any) -> None:
    """Declare an event that only webhook endpoints receive (no bus payload)."""
    EVENT_TYPES[name] = EventSpec(name, None, frozenset({Consumer.WEBHOOK}), data)


def spec_of(payload: object) -> EventSpec:
    """The declaration of ``payload``'s event type; UnknownEventType for anything undeclared."""
    spec = EVENT_TYPES.get(getattr(payload, "TYPE", None))  # type: ignore[arg-type]
    if spec is None or type(payload) is not spec.payload:
        raise UnknownEventType(f"{payload!r} is not a declared event payload: declare it in gasdesk/event_types.py "
                               "and emit an instance of its class")
    return spec


def webhook_spec(name: str) -> EventSpec:
    """The declaration of webhook event ``name``; UnknownEventType when endpoints cannot receive it."""
    spec = EVENT_TYPES.get(name)
    if spec is None or spec.webhook is None:
        raise UnknownEventType(f"{name!r} is not a declared webhook event (gasdesk/event_types.py)")
    return spec


@functools.cache
def wire_schema(payload: type[EventPayload]) -> type[BaseModel]:
    """A strict model of ``payload``'s wire form (the keys as sent, no others): what a receiver of the JSON,
    or a test, validates a payload with."""
    hints = get_type_hints(payload)
    fields_: dict[str, Any] = {attr: (hints[attr], Field(alias=key)) for attr, key in payload.KEYS}
    return create_model(f"{payload.__name__}Wire", __config__=ConfigDict(strict=True, extra="forbid"), **fields_)


def webhook_event_names() -> tuple[str, ...]:
    """The events webhook endpoints may subscribe to, in declaration order."""
    return tuple(name for name, spec in EVENT_TYPES.items() if spec.webhook is not None)


# ------------------------------------------------------------------ conversations and chat


@event_type("conversation.started", Consumer.ANALYTICS)
class ConversationStarted(EventPayload):
    """A resident opened a conversation (the bot has it). The widget learns it from ``welcome``."""

    conversation_id: int
    state: str
    agent_id: int | None
    previous_agent_id: int | None
    skill_group_id: int | None
    accepted: bool


@event_type("conversation.state", Consumer.RESIDENT, Consumer.AGENT, Consumer.STAFF, Consumer.ANALYTICS)
class ConversationStateChanged(EventPayload):
    """Frame ``state`` to the conversation's sockets and its agents (old and new); other consoles get
    ``conversations_changed``."""

    conversation_id: int
    state: str
    agent_id: int | None
    previous_agent_id: int | None
    skill_group_id: int | None
    accepted: bool


@event_type("conversation.message", Consumer.RESIDENT, Consumer.AGENT)
class ConversationMessage(EventPayload):
    """Frame ``message`` to the conversation's sockets and its agent's consoles."""

    conversation_id: int
    agent_id: int | None
    message: MessageWire


@event_type("conversation.assigned", Consumer.AGENT)
class ConversationAssigned(EventPayload):
    """Frame ``assigned`` (new work: notify and sound) to the agent's consoles."""

    conversation_id: int
    agent_id: int | None


@event_type("conversation.typing", Consumer.RESIDENT, Consumer.AGENT)
class ConversationTyping(EventPayload):
    """Frame ``typing`` to the other side: the resident's widget, or the agent's consoles. Not stored:
    published at once, outside any transaction."""

    conversation_id: int
    sender: Annotated[str, Field(alias="from")]  # "resident" | "staff"
    agent_id: int | None


@event_type("conversation.rated", Consumer.ANALYTICS)
class ConversationRated(EventPayload):
    conversation_id: int
    rating: int
    agent_id: int | None


@event_type("conversation.resident_gone", Consumer.HUB)
class ResidentGone(EventPayload):
    """A process saw the resident's last socket close; a process still holding one marks the resident back."""

    conversation_id: int


@event_type("left_message.created", Consumer.STAFF)
class LeftMessageCreated(EventPayload):
    """Frame ``left_message`` to every console."""

    left_message_id: int
    skill_group_id: int | None


@event_type("queue.changed", Consumer.STAFF, Consumer.RESIDENT)
class QueueChanged(EventPayload):
    """Frame ``queue_changed`` to every console; residents waiting in the group get their ``queue`` position."""

    skill_group_id: int


@event_type("agent.presence", Consumer.STAFF)
class AgentPresence(EventPayload):
    """Frame ``presence`` to every console."""

    user_id: int
    presence: str


@event_type("bot.turn", Consumer.ANALYTICS)
class BotTurn(EventPayload):
    """The bot answered one resident message (``conversations/pipeline.py``): the outcome of the turn
    (answered, clarify, handoff, emergency, flow_step, flow_done, flow_cancelled) and, when it looked in the
    knowledge base, whether that found an answer (``hit``) or not (``miss``)."""

    conversation_id: int
    message_id: int
    channel: str
    intent: str | None
    outcome: str
    knowledge: str | None  # hit | miss | None


@event_type("kb.feedback", Consumer.ANALYTICS)
class KbFeedbackGiven(EventPayload):
    """Someone said a knowledge answer helped or not (``kb/service.py do_feedback``)."""

    feedback_id: int
    article_id: int
    helpful: bool


@event_type("kb.suggestion_resolved")
class KbSuggestionResolved(EventPayload):
    """An admin dismissed a suggested article or wrote a draft from it (``kb/suggestions.py``)."""

    kind: str  # missing (unanswered questions) | unhelpful (an article voted 没帮助)
    action: str  # dismissed | drafted
    questions: int  # unanswered questions the suggestion grouped
    article_id: int | None  # the article voted down (unhelpful), else None
    draft_article_id: int | None  # the draft written from it (drafted), else None


@event_type("emergency.alert")
class EmergencyAlert(EventPayload):
    """A gas leak reported to the bot (staff are told through notifications, one per person)."""

    ticket_id: int
    conversation_id: int
    number: str


# ------------------------------------------------------------------ the hotline (gasdesk/telephony)


@event_type("call.ringing", Consumer.STAFF)
class CallRinging(EventPayload):
    """A call reached the hotline: frame ``call_ringing`` to every console (the screen pop: the conversation
    and the customer, if the number is on file; never the number itself)."""

    call_id: int
    conversation_id: int
    customer_id: int | None


@event_type("call.ended", Consumer.STAFF, Consumer.ANALYTICS)
class CallEnded(EventPayload):
    """A call ended: frame ``call_ended`` to every console (the softphone drops its line)."""

    call_id: int
    conversation_id: int | None
    agent_id: int | None
    hangup_by: str


@event_type("call.offered", Consumer.AGENT)
class CallOffered(EventPayload):
    """The ACD chose an agent for a call and their softphone rings: frame ``call_offered`` to that agent's
    consoles only (接听 / 拒接). The number is masked (``138****1234``)."""

    call_id: int
    conversation_id: int
    customer_id: int | None
    agent_id: int
    caller_masked: str


@event_type("call.offer_withdrawn", Consumer.AGENT)
class CallOfferWithdrawn(EventPayload):
    """The ringing stopped before the agent answered (rang out, refused, the caller hung up, transferred
    away): frame ``call_offer_withdrawn`` to that agent's consoles, which drop the incoming-call bar."""

    call_id: int
    agent_id: int
    reason: str


# ------------------------------------------------------------------ video assist (gasdesk/video)


@event_type("video.signal", Consumer.RESIDENT, Consumer.AGENT)
class VideoSignal(EventPayload):
    """Video assist (视频协助): frame ``video`` (with ``kind``) to one side only — the resident's widget sockets
    following the conversation (``to="resident"``) or the consoles of the session's agent (``to="agent"``).
    Invitations, answers and ends are emitted after their row commits; SDP and ICE (``kind`` offer / answer /
    ice) are published at once, never stored, logged or audited. ``data`` holds only what the kind needs."""

    conversation_id: int
    session_id: int
    agent_id: int | None
    to: str  # "resident" | "agent"
    kind: str  # invite | accepted | declined | offer | answer | ice | ended
    data: dict[str, Any]


# ------------------------------------------------------------------ notifications (the bell)


@with_config(CLOSED)
class NotificationWire(TypedDict):
    """``notifications.schemas.NotificationOut`` as JSON."""

    id: int
    kind: str
    kind_label: str
    urgent: bool
    title: str
    body: str
    link: str | None
    created_at: str
    read: bool


@event_type("notification.created", Consumer.BELL)
class NotificationCreated(EventPayload):
    """Frame ``notification`` to the user's bells."""

    user_id: int
    notification: NotificationWire


@event_type("notification.read", Consumer.BELL)
class NotificationsRead(EventPayload):
    """Frame ``notification_read`` to the user's bells (``ids`` None: all)."""

    user_id: int
    ids: list[int] | None
    unread: int


# ------------------------------------------------------------------ tickets, appointments, 回访


@with_config(CLOSED)
class TicketWebhookData(TypedDict):
    """``data`` of the ``ticket.created`` / ``ticket.updated`` webhooks (``tickets.service.ticket_webhook_data``)."""

    number: str
    type: str
    priority: str
    status: str
    team_id: int | None
    handler_id: int | None
    crew_id: int | None
    customer_id: int | None
    service_type: str | None
    id: int
    title: str
    district: str | None
    channel: str | None
    sla_state: str
    respond_by: str | None
    resolve_by: str | None
    created_at: str | None


@event_type("ticket.created", Consumer.WEBHOOK, Consumer.ANALYTICS, webhook=TicketWebhookData)
class TicketCreated(EventPayload):
    ticket_id: int
    status: str
    crew_id: int | None
    handler_id: int | None


@event_type("ticket.updated", Consumer.WEBHOOK, Consumer.ANALYTICS, webhook=TicketWebhookData)
class TicketUpdated(EventPayload):
    ticket_id: int
    status: str
    crew_id: int | None
    handler_id: int | None


@with_config(CLOSED)
class AppointmentBookedData(TypedDict):
    appointment_id: int
    ticket_id: int
    ticket_number: str
    service: str
    district: str
    slot_start: str
    slot_end: str


webhook_only_event("appointment.booked", AppointmentBookedData)


@event_type("ticket.sla", Consumer.ANALYTICS)
class TicketSla(EventPayload):
    """A ticket became at risk or breached (the people to tell get notifications)."""

    ticket_id: int
    sla_state: str  # at_risk | breached
    deadline: str | None  # respond | resolve


@event_type("followup.unreachable")
class FollowupUnreachable(EventPayload):
    followup_id: int
    ticket_id: int


@with_config(CLOSED)
class FollowupCompletedData(TypedDict):
    followup_id: int
    ticket_id: int
    ticket_number: str
    score: int
    solved: bool
    outcome: str


@event_type("followup.completed", Consumer.WEBHOOK, Consumer.ANALYTICS, webhook=FollowupCompletedData)
class FollowupCompleted(EventPayload):
    """The webhook's ``data`` is this payload."""

    followup_id: int
    ticket_id: int
    ticket_number: str
    score: int
    solved: bool
    outcome: str


# ------------------------------------------------------------------ quality inspection (gasdesk/quality)


@event_type("quality.scored", Consumer.ANALYTICS)
class QualityScored(EventPayload):
    """A closed contact was scored (``adjusted`` False), or its score changed by a supervisor's adjustment or an
    upheld appeal (``adjusted`` True): the latest event of a ``score_id`` carries its current score (0–100).
    For roll-ups (gasdesk/analytics): agent and team as scored, the sheet version used."""

    score_id: int
    conversation_id: int
    call_id: int | None
    agent_id: int | None
    team_id: int | None
    sheet_id: int
    score: float
    adjusted: bool


# ------------------------------------------------------------------ directory and configuration


@event_type("user.created")
class UserCreated(EventPayload):
    user_id: int
    role: str


@event_type("user.updated")
class UserUpdated(EventPayload):
    user_id: int


@event_type("customer.created")
class CustomerCreated(EventPayload):
    customer_id: int


@event_type("customer.updated")
class CustomerUpdated(EventPayload):
    customer_id: int


@event_type("account.created")
class AccountCreated(EventPayload):
    account_id: int
    customer_id: int


@event_type("branch.saved")
class BranchSaved(EventPayload):
    branch_id: int


@event_type("outage.announced")
class OutageAnnounced(EventPayload):
    outage_id: int
    district: str
    kind: str  # gas | heating


@event_type("outage.updated")
class OutageUpdated(EventPayload):
    outage_id: int
    kind: str  # gas | heating
    version: int  # the content version residents now read


@event_type("outage.closed")
class OutageClosed(EventPayload):
    outage_id: int
    kind: str
# ------------------------------------------------------------------ emergency escalation (gasdesk/emergency)


@event_type("emergency.updated", Consumer.BELL)
class EmergencyUpdated(EventPayload):
    """An emergency event opened, escalated, was acknowledged, closed or cancelled: frame ``emergency`` to the
    staff pages of every supervisor, dispatcher and admin (the board refreshes; ids and status only)."""

    event_id: int
    level: int
    status: str
    seq: int


# ------------------------------------------------------------------ learning from production (gasdesk/intent_corrections)


@event_type("bot.intent_corrected")
class IntentCorrected(EventPayload):
    """An agent marked the intent the bot should have understood in a resident message (waiting for review)."""

    correction_id: int
    conversation_id: int
    message_id: int
    intent: str


@event_type("bot.correction_reviewed")
class IntentCorrectionReviewed(EventPayload):
    """A supervisor or admin approved (training data for the next retrain) or rejected a correction."""

    correction_id: int
    status: str  # approved | rejected


# ------------------------------------------------------------------ internal chat (gasdesk/internal_chat)


@with_config(CLOSED)
class ChatFileWire(TypedDict):
    """A file or picture of a staff chat (``internal_chat.schemas.ChatFileOut``)."""

    name: str
    mime: str
    size: int
    url: str
    image: bool


@with_config(CLOSED)
class ChatCardWire(TypedDict):
    """A ticket or conversation shared into a staff chat, as it read when shared (``ChatCardOut``)."""

    type: str
    id: int
    title: str
    status: str | None
    status_label: str | None
    open_url: str


@with_config(CLOSED)
class ChatMessageWire(TypedDict):
    """``internal_chat.schemas.ChatMessageOut`` as JSON: REST answers and live pushes alike."""

    id: int
    chat_id: int
    sender_id: int | None
    sender_name: str
    kind: str
    text: str | None
    mentions: list[int]
    file: ChatFileWire | None
    card: ChatCardWire | None
    created_at: str


@event_type("internal_chat.message", Consumer.BELL)
class InternalChatMessagePosted(EventPayload):
    """Frame ``ichat_message`` to the staff pages of the chat's members at commit (nobody else)."""

    chat_id: int
    member_ids: list[int]
    message: ChatMessageWire


@event_type("internal_chat.read", Consumer.BELL)
class InternalChatRead(EventPayload):
    """Frame ``ichat_read`` to the reader's own pages: the chat's read mark and their new unread total."""

    chat_id: int
    user_id: int
    last_read_id: int
    unread_total: int


@event_type("internal_chat.members", Consumer.BELL)
class InternalChatMembersChanged(EventPayload):
    """A chat was created or its members changed: frame ``ichat_chats`` to the pages of the members and of
    those removed, whose chat lists reload."""

    chat_id: int
    member_ids: list[int]
    removed_ids: list[int]

# ------------------------------------------------------------------ rostering (gasdesk/rostering)


@event_type("roster.updated")
class RosterUpdated(EventPayload):
    """A month's roster was generated (a new draft) or a cell of it edited."""

    roster_id: int
    month: str  # YYYY-MM
    status: str  # draft | published
    change: str  # generated | edited


@event_type("roster.published")
class RosterPublished(EventPayload):
    """A month's roster was published: its people were notified, and emergency duty now reads it."""

    roster_id: int
    month: str  # YYYY-MM
    people: int  # how many people it rosters

# ------------------------------------------------------------------ training (gasdesk/training)


@event_type("training.completed")
class TrainingCompleted(EventPayload):
    """A trainee finished an exam attempt (handed in, or closed at its deadline) or a sparring session."""

    kind: str  # exam | sparring
    record_id: int  # the attempt's or the sparring session's id
    user_id: int
    score: float
    passed: bool | None  # exams only

# ---------------------------------------------------------------- smart tags and data links (gasdesk/tags)


@event_type("tags.changed")
class TagsChanged(EventPayload):
    """Tags of a customer and/or a conversation changed: a rule matched when it closed, an agent added or removed
    one, or a stranger's number was marked 陌生号码. Ids only (tag names stay on the rows)."""

    customer_id: int | None
    conversation_id: int | None


@event_type("tags.address_link")
class AddressLinkChanged(EventPayload):
    """An agent confirmed or removed the link between an address and a phone number or WeChat identity."""

    link_id: int
    address_id: int
    status: str  # confirmed | removed
