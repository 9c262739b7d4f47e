"""The one place where errors become responses: JSON for the API, a page for browsers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gasdesk.errors import DatabaseUnavailable, GasdeskError, NotAuthenticated
from gasdesk.web.templating import render

log = logging.getLogger(__name__)


def wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/") or request.headers.get("hx-request"):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, code: str, message: str, details: object = None) -> Response:
    if wants_html(request):
        if status == 401:
            return render(request, "login.html", {"error": None, "next": request.url.path}, status_code=401)
        return render(request, "error.html", {"status": status, "message": message, "code": code}, status_code=status)
    body: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(details, dict) and isinstance(details.get("retry_after_s"), int):
        headers = {"Retry-After": str(details["retry_after_s"])}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GasdeskError)
    async def _domain_error(request: Request, exc: GasdeskError) -> Response:
        if isinstance(exc, NotAuthenticated):
            request.state.viewer = None
        return error_response(request, exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        field = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
        return error_response(request, 422, "invalid_input", f"请求参数有误: {field} {first['msg']}".strip(), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "页面或资源不存在", 405: "不支持的请求方法"}
        message = exc.detail if isinstance(exc.detail, str) and exc.status_code not in messages else None
        return error_response(request, exc.status_code, f"http_{exc.status_code}", message or messages.get(exc.status_code, "请求错误"))

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated:  # the server went away mid-request (restart, crash, network)
            log.warning("database connection lost on %s %s: %s", request.method, request.url.path, exc.orig)
            return await _domain_error(request, DatabaseUnavailable())
        log.exception("database error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "服务器内部错误，请稍后重试")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "服务器内部错误，请稍后重试")
