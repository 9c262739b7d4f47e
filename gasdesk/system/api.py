from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from gasdesk.auth.access import public, viewer_of
from gasdesk.config import get_settings
from gasdesk.db import DbSession
from gasdesk.web.navigation import consoles_for, public_pages, roles_label
from gasdesk.web.templating import render

router = APIRouter(tags=["system"])

# Demo accounts created by `gasdesk seed-demo`; shown on the landing page outside production only.
DEMO_LOGINS = [
    ("admin", "demo-admin-pass", "系统管理员"),
    ("supervisor", "demo-super-pass", "班长/质检"),
    ("agent1", "demo-agent-pass", "坐席"),
    ("agent2", "demo-agent-pass", "坐席"),
    ("dispatcher", "demo-dispatch-pass", "调度"),
    ("crew1", "demo-crew-pass", "外勤班组"),
    ("wall", "demo-wall-pass", "大屏"),
]


@router.get("/healthz", dependencies=[public()])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[public()])
async def readyz(session: DbSession) -> Response:
    """Readiness: the database answers."""
    try:
        await session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/docs", include_in_schema=False, dependencies=[public()])
async def api_docs(request: Request) -> Response:
    """The OpenAPI reference in Swagger UI, served from this server only (no CDN)."""
    return render(request, "api_docs.html", {"openapi_url": request.app.openapi_url})


@router.get("/", include_in_schema=False, dependencies=[public()])
async def index(request: Request) -> Response:
    """The landing page: the consoles of the logged-in role (all of them, with who may open each, for a
    visitor), the public pages, and outside production the demo logins."""
    viewer = viewer_of(request)
    role = viewer.role if viewer is not None else None
    consoles = [(c, roles_label(request.app, c.href)) for c in consoles_for(request.app, role)]
    show_demo = get_settings().env != "production" and viewer is None
    return render(request, "index.html", {"consoles": consoles, "public_pages": public_pages(),
                                          "demo_logins": DEMO_LOGINS if show_demo else []})
