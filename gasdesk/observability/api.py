"""``GET /metrics``: this process's Prometheus metrics, for loopback clients or a bearer token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gasdesk.auth.access import AccessRule
from gasdesk.config import get_settings
from gasdesk.db import sessionmaker
from gasdesk.observability import gauges
from gasdesk.observability.middleware import is_loopback

router = APIRouter(tags=["system"])


class ScrapeAccess(AccessRule):
    """Declares the route public for the route walk (tests/auth) without resolving a user: a scrape's bearer
    token is the metrics token, not an API token, and a scrape needs no database session. The handler checks
    the caller itself (``metrics_refusal``)."""

    def __init__(self) -> None:
        super().__init__(None)

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


def metrics_refusal(request: Request) -> Response | None:
    """None when the caller may read the metrics. With ``GASDESK_METRICS_TOKEN`` set, only ``Authorization:
    Bearer <token>`` opens them (403 otherwise, loopback included: a proxy on the same host would look local).
    Without a token, only a loopback client that came through no proxy (no Forwarded / X-Forwarded-For), else a
    plain 404 (nothing to see here)."""
    token = get_settings().metrics_token
    if token is not None and token.get_secret_value():
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            return None
        return JSONResponse(
            {"error": {"code": "forbidden", "message": "需要有效的监控令牌"}}, status_code=403
        )
    proxied = "forwarded" in request.headers or "x-forwarded-for" in request.headers
    if is_loopback(request.client.host if request.client else None) and not proxied:
        return None
    return JSONResponse({"error": {"code": "not_found", "message": "页面不存在"}}, status_code=404)


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(ScrapeAccess())])
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format. The database gauges are read at most every few seconds (gauges.REFRESH_S), in a
    session of their own, so a scrape holds no connection otherwise."""
    refused = metrics_refusal(request)
    if refused is not None:
        return refused
    if not gauges.is_fresh():
        async with sessionmaker()() as session:
            await gauges.refresh(session)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
