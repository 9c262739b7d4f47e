"""Browser-facing protections applied to every response or request: the Origin check for state-changing
requests and the security headers (CSP, frame rules, nosniff, referrer policy)."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gasdesk.security.origin import origin_allowed
from gasdesk.web.errors import error_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Staff pages, the API docs (vendored Swagger UI) and the resident chat use only their own scripts (no
# inline script, no eval); inline style attributes remain in templates, and htmx and Swagger UI add
# styles, hence 'unsafe-inline' for styles only. blob:/data: images are the chat's upload previews and
# Swagger UI's icons.
BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
# The resident chat is the one page other sites may frame (widget.js, WeChat menus).
FRAMEABLE_PATHS = frozenset({"/chat"})


class OriginCheckMiddleware:
    """Refuses state-changing requests whose Origin/Referer is another site, unless they authenticate
    with a bearer token (which a foreign page cannot attach without CORS, and we allow no CORS).

    This is the first CSRF defence; cookie-authenticated changes also need the session's CSRF token
    (``gasdesk.auth.access.current_user_or_none``), which covers browsers that omit both headers.
    """

    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            bearer = headers.get("authorization", "").lower().startswith("bearer ")
            if not bearer and not origin_allowed(headers, self.allowed_origins):
                response = error_response(Request(scope), 403, "forbidden_origin",
                                          "请求来源不是本站页面，已拒绝（跨站请求）")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def content_security_policy(path: str, chat_frame_ancestors: str) -> str:
    if path in FRAMEABLE_PATHS:
        # "*" would still refuse parents without a network origin (about:blank, file:, some webviews):
        # "any site" means no frame-ancestors directive at all.
        if chat_frame_ancestors.strip() == "*":
            return BASE_CSP
        return f"{BASE_CSP}; frame-ancestors {chat_frame_ancestors}"
    return f"{BASE_CSP}; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response; a response that set its own CSP (file
    downloads use ``sandbox``) keeps it."""

    def __init__(self, app: ASGIApp, chat_frame_ancestors: str, hsts: bool) -> None:
        self.app = app
        self.chat_frame_ancestors = chat_frame_ancestors
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Content-Security-Policy", content_security_policy(path, self.chat_frame_ancestors))
                if path not in FRAMEABLE_PATHS:
                    headers.setdefault("X-Frame-Options", "DENY")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)
