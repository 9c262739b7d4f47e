"""Whether a browser request comes from a page of this site: used by the Origin check middleware
(``web/protection.py``) and for WebSocket handshakes (``auth/access.py``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers


def _origin_of(value: str) -> tuple[str, str] | None:
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def origin_allowed(headers: Headers, allowed_origins: list[str] | frozenset[str]) -> bool:
    """Whether a browser request comes from a page of this site (or a configured origin).

    Uses ``Origin``, else ``Referer``. A request with neither is not from a browser page (browsers send
    Origin on every cross-origin POST and WebSocket handshake), so it passes; an opaque ``null`` origin
    (sandboxed frames, some redirects) does not.
    """
    value = headers.get("origin") or headers.get("referer")
    if value is None:
        return True
    origin = _origin_of(value)
    if origin is None:
        return False
    scheme, netloc = origin
    if netloc == headers.get("host", "").lower():
        return True
    return f"{scheme}://{netloc}" in allowed_origins
