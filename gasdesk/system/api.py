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
    ("/chat", "在线客服（居民 H5）", "居民；可用 widget.js 嵌入网站、公众号、小程序"),
    ("/agent", "坐席工作台", "坐席、班长"),
    ("/customers", "客户查询 / 客户360", "坐席、班长、管理员"),
    ("/tickets", "工单", "坐席、调度、班长"),
    ("/dispatch", "调度看板", "调度、班长"),
    ("/crew", "外勤工单（手机）", "外勤班组"),
    ("/appointments/calendar", "预约日历", "调度、坐席"),
    ("/admin/kb", "知识库", "管理员、班长"),
    ("/admin/users", "用户管理", "管理员"),
    ("/admin/audit", "审计日志", "管理员、班长"),
    ("/admin/webhooks", "Webhook 集成", "管理员"),
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
