from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from gasdesk.auth.access import public
from gasdesk.config import get_settings
from gasdesk.db import DbSession
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
]

CONSOLES = [
    ("/customers", "客户查询 / 客户360", "坐席、班长、管理员"),
    ("/admin/users", "用户管理", "管理员"),
    ("/admin/audit", "审计日志", "管理员、班长"),
    ("/docs", "REST API 文档 (OpenAPI)", "集成开发者"),
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


@router.get("/", include_in_schema=False, dependencies=[public()])
async def index(request: Request) -> Response:
    show_demo = get_settings().env != "production"
    return render(request, "index.html", {"consoles": CONSOLES, "demo_logins": DEMO_LOGINS if show_demo else []})
