"""Application factory: wires every domain's routers, sessions, static files and error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from gasdesk import __version__
from gasdesk.config import Settings, get_settings
from gasdesk.db import dispose_engine
from gasdesk.web.access_log import AccessLogMiddleware, configure_app_logging
from gasdesk.web.body_limit import BodyLimitMiddleware
from gasdesk.web.errors import install_error_handlers
from gasdesk.web.input_guard import InputGuard
from gasdesk.web.protection import OriginCheckMiddleware, SecurityHeadersMiddleware
from gasdesk.web.templating import add_template_dir

log = logging.getLogger(__name__)


def _routers() -> list:
    # Imported here so that importing gasdesk.web.app stays cheap for the CLI.
    from gasdesk.appointments.api import router as appointments_api
    from gasdesk.audit.api import router as audit_router
    from gasdesk.auth.api import router as auth_api
    from gasdesk.auth.pages import router as auth_pages
    from gasdesk.bot.api import router as bot_router
    from gasdesk.branches.api import router as branches_router
    from gasdesk.channels.webchat.api import router as webchat_api
    from gasdesk.channels.webchat.socket import router as webchat_socket
    from gasdesk.conversations.agent_socket import router as agent_socket
    from gasdesk.conversations.api import router as conversations_api
    from gasdesk.conversations.pages import router as conversations_pages
    from gasdesk.customers.api import router as customers_api
    from gasdesk.customers.pages import router as customers_pages
    from gasdesk.followups.api import router as followups_api
    from gasdesk.kb.api import router as kb_api
    from gasdesk.kb.pages import router as kb_pages
    from gasdesk.outages.api import router as outages_api
    from gasdesk.routing.api import router as routing_api
    from gasdesk.system.api import router as system_router
    from gasdesk.tickets.api import router as tickets_api
    from gasdesk.tickets.config_api import router as tickets_config_api
    from gasdesk.tickets.pages import router as tickets_pages
    from gasdesk.webhooks.api import router as webhooks_api

    return [system_router, auth_api, auth_pages, audit_router, customers_api, customers_pages, branches_router,
            webchat_api, webchat_socket, agent_socket, conversations_api, conversations_pages, routing_api, bot_router,
            tickets_api, tickets_config_api, tickets_pages, appointments_api, followups_api, webhooks_api, outages_api,
            kb_api, kb_pages]


# Domains keep templates and static files beside their code.
DOMAIN_ASSETS = {
    "webchat": Path(__file__).resolve().parent.parent / "channels" / "webchat",
    "agent": Path(__file__).resolve().parent.parent / "conversations",
    "tickets": Path(__file__).resolve().parent.parent / "tickets",
    "kb": Path(__file__).resolve().parent.parent / "kb",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app. Refuses production mode with development secrets."""
    settings = settings or get_settings()
    settings.check_production_safety()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from gasdesk.events import bus
        from gasdesk.realtime.hub import get_hub

        get_hub()  # subscribe the hub before the first event
        bridge = None
        if settings.redis_url:
            from gasdesk.realtime.redis_bridge import RedisBridge

            bridge = RedisBridge(settings.redis_url, bus)
            await bridge.start()
        worker = None
        if settings.run_worker:
            import asyncio

            from gasdesk.jobs.queue import worker_loop

            stop = asyncio.Event()
            worker = (stop, asyncio.create_task(worker_loop(stop=stop), name="gasdesk-worker"))
        try:
            yield
        finally:
            if worker is not None:
                worker[0].set()
                worker[1].cancel()
            if bridge is not None:
                await bridge.stop()
            await dispose_engine()

    app = FastAPI(
        title="gasdesk API",
        version=__version__,
        description="热力燃气智能客服平台 REST API。用 `POST /api/v1/auth/token` 换取 Bearer 令牌。",
        lifespan=lifespan,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
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
    for name, folder in DOMAIN_ASSETS.items():
        add_template_dir(folder / "templates")
        app.mount(f"/static/{name}", StaticFiles(directory=folder / "static"), name=f"static-{name}")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in _routers():
        app.include_router(router)
    install_error_handlers(app)
    # Outermost: times the whole request and logs it without query string or personal data.
    app.add_middleware(AccessLogMiddleware)
    configure_app_logging()
    return app
