"""The agent console page (/agent); it runs on the REST API and the staff WebSocket."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.config import get_settings
from gasdesk.conversations.models import CHANNEL_LABELS
from gasdesk.video.service import ice_servers
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/agent")
async def agent_console(request: Request, user: User = allow(Role.agent, Role.supervisor, Role.admin)) -> Response:
    settings = get_settings()
    # The browser softphone exists only where this process carries the calls (telephony/softphone.py).
    return render(request, "agent.html",
                  {"channel_labels": {c.value: label for c, label in CHANNEL_LABELS.items()},
                   "softphone": settings.hotline_in_app and settings.sip_enabled,
                   # Video assist: the console's ICE servers (TURN credentials for this agent) and recording cap.
                   "video_config": {"ice_servers": ice_servers(f"u{user.id}", settings),
                                    "recording_max_bytes": settings.video_recording_max_bytes}})
