"""Every event the code emits is declared in gasdesk/event_types.py, and every declaration is emitted.

The scan reads the source (AST) rather than running it, so an event emitted on a path no other test takes
is still caught.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import gasdesk
from gasdesk import event_types
from gasdesk.event_types import (
    EVENT_TYPES,
    Consumer,
    ConversationTyping,
    QueueChanged,
    UnknownEventType,
    webhook_event_names,
)
from gasdesk.events import Event, emit
from gasdesk.realtime.hub import Hub
from gasdesk.webhooks import service as webhooks
from gasdesk.webhooks.models import EVENTS

ROOT = Path(gasdesk.__file__).parent
DECLARATIONS = Path(event_types.__file__)
# Ways to send an event: emit(session, payload), Event.of(payload), publish_now(payload) — and the webhook
# queue, webhooks.publish(session, "name", data).
SENDERS = {"emit": 1, "of": 0, "publish_now": 0}

PAYLOAD_CLASSES = {spec.payload.__name__: name for name, spec in EVENT_TYPES.items() if spec.payload is not None}
WEBHOOK_BODIES = {spec.webhook.__name__: name for name, spec in EVENT_TYPES.items()
                  if spec.webhook is not None and spec.payload is None}


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(ROOT.rglob("*.py"))
            if path != DECLARATIONS and "migrations" not in path.parts]


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _scan() -> tuple[set[str], list[str]]:
    """The event types the code refers to, and every way of sending one that names no declared type."""
    referenced: set[str] = set()
    problems: list[str] = []
    for path, tree in _sources():
        where = path.relative_to(ROOT.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in PAYLOAD_CLASSES:
                    referenced.add(PAYLOAD_CLASSES[node.id])
                elif node.id in WEBHOOK_BODIES:
                    referenced.add(WEBHOOK_BODIES[node.id])
            if not isinstance(node, ast.Call):
                continue
            callee = _callee(node)
            if callee == "Event" and node.args and isinstance(node.args[0], ast.Constant):
                problems.append(f"{where}:{node.lineno}: Event({node.args[0].value!r}, …) — use Event.of(payload)")
            webhook_queue = isinstance(node.func, ast.Name) or (
                isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "webhooks")  # not a Redis client's publish
            if callee == "publish" and webhook_queue and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant):
                name = node.args[1].value
                referenced.add(name)
                if name not in webhook_event_names():
                    problems.append(f"{where}:{node.lineno}: webhook {name!r} is not declared")
            position = SENDERS.get(callee or "")
            if position is None or len(node.args) <= position:
                continue
            if callee == "of" and not (isinstance(node.func, ast.Attribute)
                                       and isinstance(node.func.value, ast.Name) and node.func.value.id == "Event"):
                continue
            sent = node.args[position]
            if isinstance(sent, ast.Constant):
                problems.append(f"{where}:{node.lineno}: {callee}() with the literal {sent.value!r}")
            elif isinstance(sent, ast.Call) and isinstance(sent.func, ast.Name) and sent.func.id[:1].isupper() \
                    and sent.func.id not in PAYLOAD_CLASSES:
                problems.append(f"{where}:{node.lineno}: {callee}({sent.func.id}(…)) is not a declared payload")
    return referenced, problems


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_every_emitted_event_is_declared_and_every_declared_event_is_emitted() -> None:
    referenced, problems = _scan()
    assert problems == []
    assert referenced <= set(EVENT_TYPES)
    assert set(EVENT_TYPES) - referenced == set(), "declared but never emitted"
    # the scan does see the call sites (a scan that finds nothing would pass the two checks above vacuously)
    assert {"conversation.message", "conversation.typing", "notification.read", "appointment.booked"} <= referenced


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_the_scan_catches_an_undeclared_event(tmp_path, monkeypatch) -> None:
    rogue = tmp_path / "gasdesk"
    rogue.mkdir()
    (rogue / "rogue.py").write_text(
        "def f(session):\n"
        "    emit(session, 'customer.deleted', {'customer_id': 1})\n"
        "    emit(session, CustomerDeleted(customer_id=1))\n"
        "    Event('customer.deleted', {})\n"
        "    publish(session, 'customer.deleted', {})\n", encoding="utf-8")
    monkeypatch.setitem(globals(), "ROOT", rogue)
    _, problems = _scan()
    assert [p.split(": ", 1)[1] for p in problems] == [
        "emit() with the literal 'customer.deleted'", "emit(CustomerDeleted(…)) is not a declared payload",
        "Event('customer.deleted', …) — use Event.of(payload)", "webhook 'customer.deleted' is not declared"]


async def test_emit_refuses_an_undeclared_event_at_once(session) -> None:
    with pytest.raises(UnknownEventType, match="event_types.py"):
        emit(session, "queue.changed")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # the old form, a name and a dict
        emit(session, "queue.changed", {"skill_group_id": 1})  # type: ignore[call-arg]

    class Lookalike:
        TYPE = "queue.changed"

    with pytest.raises(UnknownEventType):
        emit(session, Lookalike())  # type: ignore[arg-type]
    assert session.info.get("after_commit", []) == []  # nothing was queued
    with pytest.raises(UnknownEventType):
        await webhooks.publish(session, "ticket.deleted", {"id": 1})


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_the_socket_consumers_match_the_hubs_handlers() -> None:
    # The hub picks its handler by name (_on_<type>): a declared socket audience without a handler, or a
    # handler for a type nobody emits, would silently drop the pushes.
    handled = {name[len("_on_"):] for name in vars(Hub) if name.startswith("_on_")}
    declared = {name.replace(".", "_") for name, spec in EVENT_TYPES.items()
                if spec.consumers & {Consumer.RESIDENT, Consumer.AGENT, Consumer.STAFF, Consumer.BELL, Consumer.HUB}}
    assert handled == declared


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_webhook_events_come_from_the_declarations() -> None:
    assert EVENTS == webhook_event_names() == (
        "ticket.created", "ticket.updated", "appointment.booked", "followup.completed")
    assert {name for name, spec in EVENT_TYPES.items() if Consumer.WEBHOOK in spec.consumers} == set(EVENTS)


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_payloads_travel_as_before() -> None:
    # What the widget, the console and Redis peers read: same keys, same order as the dicts built by hand before.
    typing = Event.of(ConversationTyping(conversation_id=3, sender="staff", agent_id=9))
    assert (typing.type, list(typing.payload.items())) == (
        "conversation.typing", [("conversation_id", 3), ("from", "staff"), ("agent_id", 9)])
    state = EVENT_TYPES["conversation.state"].payload
    assert [key for _, key in state.KEYS] == [
        "conversation_id", "state", "agent_id", "previous_agent_id", "skill_group_id", "accepted"]
    queue = Event.of(QueueChanged(skill_group_id=2))
    assert json.loads(queue.to_json()) == {"type": "queue.changed", "payload": {"skill_group_id": 2}, "at": queue.at}
    assert Event(queue.type, json.loads(queue.to_json())["payload"], queue.at) == queue  # Redis rebuilds it whole


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_the_message_wire_format_is_built_in_one_place() -> None:
    # A message dict written out by hand (as group commit once did) drifts from Message.to_wire().
    builders = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if {"seq", "sender", "client_msg_id"} <= keys:
                    builders.append(str(path.relative_to(ROOT)))
    assert builders == ["conversations/wire.py"]
