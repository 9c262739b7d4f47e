"""Application factory: wires every domain's routers, sessions, static files and error handling."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from gasdesk import __version__
from gasdesk.config import Settings, get_settings
from gasdesk.db import dispose_engine
from gasdesk.events import bus
from gasdesk.jobs.queue import stop_worker
from gasdesk.observability.middleware import RequestContextMiddleware
from gasdesk.realtime.hub import get_hub
from gasdesk.realtime.redis_bridge import RedisBridge
from gasdesk.system.cpu_priority import lower_own_priority
from gasdesk.telephony.runtime import start_hotline
from gasdesk.web.access_log import AccessLogMiddleware, configure_app_logging
from gasdesk.web.body_limit import BodyLimitMiddleware
from gasdesk.web.errors import install_error_handlers
from gasdesk.web.input_guard import InputGuard
from gasdesk.web.protection import OriginCheckMiddleware, SecurityHeadersMiddleware
from gasdesk.web.route_index import install_route_index
from gasdesk.web.templating import add_template_dir
from gasdesk.worker import register_handlers, run_worker

log = logging.getLogger(__name__)


GASDESK_DIR = Path(__file__).resolve().parent.parent
WEB_DIR = Path(__file__).resolve().parent
# Modules that hold a domain's HTTP and WebSocket routes, each as a module-level ``router``.
ROUTER_MODULES = ("api", "pages", "socket", "agent_socket")


def _domain_dirs(kind: str) -> list[Path]:
    """Every package's ``templates/`` or ``static/`` folder (nested packages too), the web package's own aside."""
    found = []
    for folder in sorted(GASDESK_DIR.rglob(kind)):
        package = folder.parent
        if folder.is_dir() and package != WEB_DIR and (package / "__init__.py").is_file():
            found.append(folder)
    return found


def domain_template_dirs() -> list[Path]:
    """Domains keep their page templates beside their code; every ``templates/`` folder is searched."""
    return _domain_dirs("templates")


def domain_static_mounts() -> dict[str, Path]:
    """``/static/<package>`` for every package's ``static/`` folder (``/static/webchat``, ``/static/kb``, …).

    Refuses two packages of the same name and a name that would shadow a file or folder of the shared
    ``web/static`` (served at ``/static``)."""
    mounts: dict[str, Path] = {}
    for folder in _domain_dirs("static"):
        url = f"/static/{folder.parent.name}"
        if url in mounts or (WEB_DIR / "static" / folder.parent.name).exists():
            raise RuntimeError(f"static folder {folder} would be served at {url}, which is already taken")
        mounts[url] = folder
    return mounts


def domain_routers() -> list[APIRouter]:
    """The ``router`` of every domain's ``api.py``, ``pages.py`` and socket module, found by name."""
    routers = []
    for path in sorted(GASDESK_DIR.rglob("*.py")):
        if path.stem not in ROUTER_MODULES or WEB_DIR in path.parents:
            continue
        module = ".".join(path.relative_to(GASDESK_DIR.parent).with_suffix("").parts)
        router = getattr(importlib.import_module(module), "router", None)
        if not isinstance(router, APIRouter):
            raise RuntimeError(f"{module} has no module-level APIRouter named router")
        routers.append(router)
    return routers


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app. Refuses production mode with development secrets."""
    settings = settings or get_settings()
    settings.check_production_safety()
    register_handlers()  # jobs enqueued by requests, and hooks such as ticket resolved → 回访, need them

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.web_cpu_priority == "background":
            lower_own_priority()  # a reports-only process: after chat's, machine-wide
        get_hub()  # subscribe the hub before the first event
        bridge = None
        if settings.redis_url:
            bridge = RedisBridge(settings.redis_url, bus)
            await bridge.start()
        hotline = await start_hotline(settings) if settings.hotline_in_app else None
        worker = None
        if settings.run_worker:
            stop = asyncio.Event()
            worker = (stop, asyncio.create_task(run_worker(stop=stop), name="gasdesk-worker"))
        try:
            yield
        finally:
            if worker is not None:
                await stop_worker(*worker)
            if hotline is not None:
                await hotline.close()
            if bridge is not None:
                await bridge.stop()
            await dispose_engine()

    app = FastAPI(
        title="gasdesk API",
        version=__version__,
        description="热力燃气智能客服平台 REST API。用 `POST /api/v1/auth/token` 换取 Bearer 令牌。",
        lifespan=lifespan,
        # /docs is gasdesk's own page (system/api.py) on the vendored Swagger UI: FastAPI's loads it from a
        # CDN, so it was blank without internet and needed a looser CSP. ReDoc has no vendored copy.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.signing_key,
        session_cookie=settings.session_cookie,
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    # NUL, unpaired surrogates and NaN/Infinity in any request: a 422 before a handler sees them.
    app.add_middleware(InputGuard)
    # Added after the session middleware, so they run before it: a refused cross-site request never
    # reaches the session, and even error pages get the headers.
    app.add_middleware(OriginCheckMiddleware, allowed_origins=settings.allowed_origins)
    # A body above its route's cap is refused before anything reads it.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, chat_frame_ancestors=settings.chat_frame_ancestors,
                       hsts=settings.cookie_secure)
    for folder in domain_template_dirs():
        add_template_dir(folder)
    for url, folder in domain_static_mounts().items():
        app.mount(url, StaticFiles(directory=folder), name=f"static-{folder.parent.name}")
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    for router in domain_routers():
        app.include_router(router)
    install_route_index(app.router)
    install_error_handlers(app)
    # Outermost: times the whole request and logs it without query string or personal data.
    app.add_middleware(AccessLogMiddleware)
    # Outside even that: the request id and the context every log line of the request reads, and the metrics.
    app.add_middleware(RequestContextMiddleware)
    configure_app_logging(json_lines=settings.log_format == "json")
    return app
