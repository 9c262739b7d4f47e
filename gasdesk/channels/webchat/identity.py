"""Anonymous resident identity for the web widget: a signed visitor token kept in the browser."""

from __future__ import annotations

import secrets

from itsdangerous import BadData, URLSafeTimedSerializer

from gasdesk.config import get_settings

VISITOR_TOKEN_MAX_AGE_S = 90 * 24 * 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().signing_key, salt="gasdesk-webchat-visitor")


def issue_visitor_token(visitor_id: str | None = None) -> tuple[str, str]:
    """A visitor id (a new anonymous one unless given, e.g. a WeChat follower's "wechat:12" after OAuth) and the
    token that proves it."""
    visitor_id = visitor_id or "v_" + secrets.token_urlsafe(16)
    return visitor_id, _serializer().dumps({"v": visitor_id})


def visitor_from_token(token: object) -> str | None:
    """The visitor id a token proves, or None (also for anything that is not a non-empty string)."""
    if not token or not isinstance(token, str):
        return None
    try:
        data = _serializer().loads(token, max_age=VISITOR_TOKEN_MAX_AGE_S)
    except (BadData, UnicodeError):  # forged, expired, or not even encodable (a lone surrogate)
        return None
    visitor = data.get("v") if isinstance(data, dict) else None
    return visitor if isinstance(visitor, str) else None
