"""A PII-free access log and the process's logging set-up.

uvicorn's own access log prints the full URL, query string included (a phone number in
``?phone=…``, a visitor token in ``?v=…``). gasdesk turns it off and logs each request itself:
method, the route's path template (``/api/v1/files/{token}``, so path parameters never appear),
status and duration. Requests that match no route log their raw path with identifiers redacted.
No query string, no client address, no bodies. Every handler also carries ``PiiLogFilter``, which
redacts identifiers in any message and traceback that reaches it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gasdesk.observability.logs import use_json_format
from gasdesk.security.pii import PiiLogFilter, install_log_redaction, redact_pii

access_log = logging.getLogger("gasdesk.access")


def _route_path(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template and "{" in template:
        return template
    return redact_pii(scope.get("path", ""))


class AccessLogMiddleware:
    """One INFO line per HTTP request (and per WebSocket session) without personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None}

        async def watch(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                status["code"] = message["status"]
            elif kind == "websocket.accept":
                status["code"] = 101
            elif kind == "websocket.close" and status["code"] is None:
                status["code"] = 403
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            method = scope.get("method", "WS")
            access_log.info("%s %s %s %.1fms", method, _route_path(scope), status["code"] or 500, elapsed_ms)


def configure_app_logging(*, json_lines: bool = False) -> None:
    """Called by the app factory: redact whatever handlers the server set up (and, with
    ``GASDESK_LOG_FORMAT=json``, make them write JSON lines), and silence uvicorn's access log (the middleware
    above replaces it)."""
    install_log_redaction("uvicorn", "uvicorn.error")
    if json_lines:
        use_json_format("uvicorn", "uvicorn.error")
    logging.getLogger("uvicorn.access").disabled = True


def log_config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` used by ``gasdesk serve``, ``worker`` and ``hotline``: one stderr
    handler with the redacting filter for gasdesk, uvicorn and everything else; ``fmt="json"`` writes one JSON
    object per line (``observability/logs.py``: time, level, logger, message, request and conversation ids, pid)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"pii": {"()": PiiLogFilter}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                       "json": {"()": "gasdesk.observability.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "json" if fmt == "json" else "plain", "filters": ["pii"]}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # one INFO line per outgoing call, URL included (the billing API puts 户号 in its paths)
            "httpx": {"handlers": [], "level": "WARNING", "propagate": True},
            "httpcore": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
