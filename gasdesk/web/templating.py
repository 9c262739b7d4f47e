"""Jinja2 templates shared by every domain's pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape

from gasdesk.auth.access import csrf_token, viewer_of
from gasdesk.auth.roles import ROLE_LABELS, Role
from gasdesk.clock import format_local
from gasdesk.conversations.models import channel_label
from gasdesk.realtime.protocol import client_protocol
from gasdesk.web.navigation import Console, consoles_for

TEMPLATE_DIRS = [str(Path(__file__).parent / "templates")]
templates = Jinja2Templates(directory=TEMPLATE_DIRS)
templates.env.filters["local"] = format_local
templates.env.globals["role_label"] = lambda role: ROLE_LABELS.get(Role(role), role) if role else ""
templates.env.globals["channel_label"] = channel_label
# The socket client's constants, rendered into every page that runs one (_socket_client.html).
templates.env.globals["socket_protocol"] = client_protocol


@pass_context
def _nav_consoles(context: Any) -> list[Console]:
    """The header's links: the consoles the logged-in role may open (none for anonymous visitors)."""
    request = context.get("request")
    viewer = viewer_of(request) if request is not None else None
    return consoles_for(request.app, viewer.role) if viewer is not None else []


templates.env.globals["nav_consoles"] = _nav_consoles


@pass_context
def _csrf_token(context: Any) -> str:
    request = context.get("request")
    return csrf_token(request) if request is not None else ""


@pass_context
def _csrf_field(context: Any) -> Markup:
    """The hidden form field every state-changing staff form carries (see gasdesk.auth.access)."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % escape(_csrf_token(context))


templates.env.globals["csrf_token"] = _csrf_token
templates.env.globals["csrf_field"] = _csrf_field


def add_template_dir(path: Path) -> None:
    """Domains keep their page templates beside their code and register the folder here."""
    if str(path) not in TEMPLATE_DIRS:
        TEMPLATE_DIRS.append(str(path))
        templates.env.loader.searchpath.append(str(path))  # type: ignore[union-attr]


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    # "user" in templates is the Viewer snapshot (id, username, display_name, role), safe to read even on
    # an error page rendered after the request's transaction rolled back.
    ctx = {"user": viewer_of(request), **(context or {})}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
