"""Log lines that carry the request and conversation they belong to, optionally as one JSON object per line.

``request_id`` is set by ``middleware.RequestContextMiddleware`` for each HTTP request and WebSocket connection;
``conversation_id`` by the chat path (``bind_conversation``) once a message's conversation is known. Both are
context variables: an asyncio task started inside a request inherits them, the next request does not see them.
The JSON formatter never adds record attributes (``extra=``) to its output and redacts the message itself when
no ``PiiLogFilter`` has (``security/pii.py``), so a line carries no more personal data than the text log does.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

from gasdesk.security.pii import redact_pii

REQUEST_ID: ContextVar[str | None] = ContextVar("gasdesk_request_id", default=None)
CONVERSATION_ID: ContextVar[int | None] = ContextVar("gasdesk_conversation_id", default=None)


def bind_conversation(conversation_id: int | None) -> None:
    """Mark the rest of this request, socket session or task as working on ``conversation_id`` (its log lines
    name it). The request middleware clears it when the request or socket ends."""
    CONVERSATION_ID.set(conversation_id)


def current_request_id() -> str | None:
    """The id of the HTTP request or WebSocket connection being served, if any."""
    return REQUEST_ID.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id, conversation_id,
    pid, and the (redacted) traceback as ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        clean = getattr(record, "_pii_clean", False)
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message if clean else redact_pii(message),
            "request_id": REQUEST_ID.get(),
            "conversation_id": CONVERSATION_ID.get(),
            "pid": record.process,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text if clean else redact_pii(record.exc_text)
        if record.stack_info:
            entry["stack"] = record.stack_info if clean else redact_pii(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_json_format(*logger_names: str) -> None:
    """Give every handler of the root logger and of the named ones the JSON formatter (the app factory calls it
    under a server whose logging gasdesk did not configure, e.g. plain uvicorn)."""
    formatter = JsonFormatter()
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(formatter)
