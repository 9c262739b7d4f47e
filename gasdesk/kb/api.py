"""REST API of the knowledge base: search (staff), feedback (residents or staff), admin CRUD + import."""

from __future__ import annotations

import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow, public
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput, RateLimited
from gasdesk.fields import Count, Id
from gasdesk.kb import service
from gasdesk.kb.importer import import_articles
from gasdesk.kb.models import CHANNELS
from gasdesk.kb.schemas import (
    ArticleIn,
    ArticleOut,
    ArticleUpdated,
    ArticleVersionOut,
    FeedbackIn,
    FeedbackOut,
    ImportReport,
    KbStatsOut,
    RestoreIn,
    SearchOut,
)
from gasdesk.kb.search import search_articles
from gasdesk.web.uploads import read_upload_form

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])

MAX_UPLOAD = 5 * 1024 * 1024


def _check_channel(channel: str | None) -> str | None:
    if channel and channel not in CHANNELS:
        raise InvalidInput("渠道应为 webchat、wechat、sms、voice 或 agent", code="invalid_kb_channel")
    return channel or None


@router.get("/search", response_model=SearchOut)
async def search(session: DbSession, q: Annotated[str, Query(max_length=300)] = "", channel: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=20)] = 5, _: User = allow(*OFFICE)) -> dict[str, Any]:
    hits = await search_articles(session, q, limit=limit, channel=_check_channel(channel))
    return {"q": q, "results": [{"id": h.article_id, "title": h.title, "category": h.category, "score": h.score,
                                 "snippet": h.snippet, "answer": h.answer} for h in hits]}


class _FeedbackLimiter:
    """Per client address: at most ``limit`` votes in ``window`` seconds, one vote per article per window."""

    def __init__(self, limit: int = 20, window: float = 600.0) -> None:
        self.limit, self.window = limit, window
        self.votes: dict[str, deque[tuple[float, int]]] = {}

    def check(self, client: str, article_id: int) -> bool:
        """False: a repeated vote (accepted, not counted). Raises RateLimited when over the limit."""
        now = time.monotonic()
        if len(self.votes) > 10000:
            self.votes.clear()
        q = self.votes.setdefault(client, deque())
        while q and now - q[0][0] > self.window:
            q.popleft()
        if any(a == article_id for _, a in q):
            return False
        if len(q) >= self.limit:
            raise RateLimited("反馈太频繁，请稍后再试", code="rate_limited")
        q.append((now, article_id))
        return True


feedback_limiter = _FeedbackLimiter()


@router.post("/articles/{article_id}/feedback", response_model=FeedbackOut)
async def feedback(article_id: Id, body: FeedbackIn, request: Request, session: DbSession,
                   user: User | None = public()) -> dict[str, Any]:
    """「有帮助/没帮助」from the residents' widget (anonymous, rate-limited) or from staff."""
    client = f"user:{user.id}" if user else f"ip:{request.client.host if request.client else '-'}"
    counted = feedback_limiter.check(client, article_id)
    if counted:
        await service.do_feedback(session, article_id, body.helpful, source="staff" if user else "resident")
    else:
        await service.access_article(session, article_id)
    return {"ok": True, "counted": counted}


@router.get("/articles", response_model=list[ArticleOut])
async def list_articles(session: DbSession, q: str = "", category: str = "", status: str = "",
                        limit: Annotated[int, Query(ge=1, le=500)] = 200, offset: Annotated[Count, Query()] = 0,
                        _: User = allow(*MANAGERS)) -> list[dict[str, Any]]:
    return [service.article_dict(a) for a in await service.list_articles(session, q=q, category=category,
                                                                         status=status, limit=limit, offset=offset)]


@router.post("/articles", status_code=201, response_model=ArticleOut)
async def create_article(body: ArticleIn, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    article = await service.do_create_article(session, Actor.of(user, "api"), body.checked(),
                                              status=body.status or "draft")
    return service.article_dict(article)


@router.get("/articles/{article_id}", response_model=ArticleOut)
async def get_article(article_id: Id, session: DbSession, _: User = allow(*MANAGERS)) -> dict[str, Any]:
    article = await service.access_article(session, article_id)
    return service.article_dict(article)


@router.put("/articles/{article_id}", response_model=ArticleUpdated)
async def update_article(article_id: Id, body: ArticleIn, session: DbSession,
                         user: User = allow(*MANAGERS)) -> dict[str, Any]:
    article = await service.access_article(session, article_id)
    changed = await service.do_update_article(session, Actor.of(user, "api"), article, body.checked(),
                                              status=body.status)
    return {**service.article_dict(article), "changed": changed}


@router.delete("/articles/{article_id}", status_code=204)
async def delete_article(article_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> None:
    article = await service.access_article(session, article_id)
    await service.do_delete_article(session, Actor.of(user, "api"), article)


@router.post("/articles/{article_id}/publish", response_model=ArticleOut)
async def publish(article_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    article = await service.access_article(session, article_id)
    return service.article_dict(await service.do_set_status(session, Actor.of(user, "api"), article, "published"))


@router.post("/articles/{article_id}/archive", response_model=ArticleOut)
async def archive(article_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    article = await service.access_article(session, article_id)
    return service.article_dict(await service.do_set_status(session, Actor.of(user, "api"), article, "archived"))


@router.get("/articles/{article_id}/versions", response_model=list[ArticleVersionOut])
async def versions(article_id: Id, session: DbSession, _: User = allow(*MANAGERS)) -> list[dict[str, Any]]:
    await service.access_article(session, article_id)
    return [{"version": v.version, "title": v.title, "status": v.status, "note": v.note, "editor": v.editor_name,
             "at": v.created_at, "questions": v.questions, "answer": v.answer}
            for v in await service.versions_of(session, article_id)]


@router.post("/articles/{article_id}/restore", response_model=ArticleOut)
async def restore(article_id: Id, body: RestoreIn, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    article = await service.access_article(session, article_id)
    await service.do_restore_version(session, Actor.of(user, "api"), article, body.version)
    return service.article_dict(article)


@router.get("/stats", response_model=KbStatsOut)
async def stats(session: DbSession, days: Annotated[int, Query(ge=1, le=365)] = 30,
                _: User = allow(*MANAGERS)) -> dict[str, Any]:
    s = await service.kb_stats(session, days=days)
    return {"articles": s.articles, "hits": s.hits, "misses": s.misses,
            # "query" is one wording of the group (redacted); "key" identifies the group
            "top_misses": [{"query": e, "key": k, "count": c, "example": e} for k, c, e in s.top_misses],
            "top_articles": [{"id": a.id, "title": a.title, "hits": a.hits} for a in s.top_articles],
            "not_helpful": [{"id": a.id, "title": a.title, "not_helpful": a.not_helpful, "helpful": a.helpful}
                            for a in s.not_helpful]}


async def save_upload(request: Request, session: DbSession, folder: str) -> Path:
    """The uploaded KB file (multipart field ``file``), read only after the editor is authenticated."""
    form = await read_upload_form(request, session=session)
    upload = form.file("file")
    suffix = Path(upload.filename if upload else "").suffix.lower()
    if upload is None or suffix not in (".xlsx", ".csv"):
        raise InvalidInput("请上传 .xlsx 或 .csv 文件", code="invalid_kb_file")
    if len(upload.data) > MAX_UPLOAD:
        raise InvalidInput("文件不能超过 5 MB", code="invalid_kb_file")
    path = Path(folder) / f"kb_import{suffix}"
    path.write_bytes(upload.data)
    return path


@router.post("/import", response_model=ImportReport)
async def import_file(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = await save_upload(request, session, tmp)
        report = await import_articles(path, Actor.of(user, "import"))
    return report.as_dict()
