"""Knowledge-base admin pages (/admin/kb): list, edit with preview, versions, import, stats, suggested articles."""

from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.db import DbSession
from gasdesk.errors import GasdeskError
from gasdesk.fields import MAX_DB_INT, Id
from gasdesk.kb import service, suggestions
from gasdesk.kb.api import save_upload
from gasdesk.kb.importer import import_articles
from gasdesk.kb.models import CHANNEL_LABELS, STATUS_LABELS, KbArticle
from gasdesk.kb.render import to_html
from gasdesk.web.templating import render, templates

router = APIRouter(include_in_schema=False)
templates.env.filters["kb_markdown"] = to_html
templates.env.globals["KB_STATUS_LABELS"] = STATUS_LABELS
templates.env.globals["KB_CHANNEL_LABELS"] = CHANNEL_LABELS

Text = Annotated[str, Form()]


@router.get("/admin/kb")
async def kb_list(request: Request, session: DbSession, q: str = "", category: str = "", status: str = "",
                  _: User = allow(*MANAGERS)) -> Response:
    articles = await service.list_articles(session, q=q[:50], category=category, status=status, limit=500)
    return render(request, "kb_list.html", {"articles": articles, "q": q, "category": category, "status": status,
                                            "categories": await service.categories(session)})


def _form(article: KbArticle | None, **values: str) -> dict[str, str]:
    if article is not None and not values:
        values = {"title": article.title, "questions": "\n".join(article.questions), "answer": article.answer,
                  "category": article.category, "tags": "，".join(article.tags),
                  "valid_from": article.valid_from.isoformat() if article.valid_from else "",
                  "valid_to": article.valid_to.isoformat() if article.valid_to else ""}
    return values


async def _edit_page(request: Request, session, article: KbArticle | None, form: dict[str, str],
                     channels: list[str], error: str | None = None, notice: str | None = None,
                     status_code: int = 200) -> Response:
    versions = await service.versions_of(session, article.id) if article is not None else []
    return render(request, "kb_edit.html", {"article": article, "form": form, "channels": channels,
                                            "versions": versions, "error": error, "notice": notice,
                                            "categories": await service.categories(session)}, status_code=status_code)


@router.get("/admin/kb/new")
async def kb_new(request: Request, session: DbSession, _: User = allow(*MANAGERS)) -> Response:
    return await _edit_page(request, session, None, {}, [])


@router.post("/admin/kb/new")
async def kb_create(request: Request, session: DbSession, title: Text = "", questions: Text = "", answer: Text = "",
                    category: Text = "", tags: Text = "", valid_from: Text = "", valid_to: Text = "",
                    channel: Annotated[list[str] | None, Form()] = None, publish: Text = "",
                    user: User = allow(*MANAGERS)) -> Response:
    form = {"title": title, "questions": questions, "answer": answer, "category": category, "tags": tags,
            "valid_from": valid_from, "valid_to": valid_to}
    try:
        data = service.check_article(**form, channels=channel or [])
        article = await service.do_create_article(session, Actor.of(user), data,
                                                  status="published" if publish else "draft")
    except GasdeskError as exc:  # raised by validation, before anything was written
        return await _edit_page(request, session, None, form, channel or [], exc.message, status_code=exc.status_code)
    return RedirectResponse(f"/admin/kb/{article.id}?saved=1", status_code=303)


@router.get("/admin/kb/import")
async def kb_import_form(request: Request, _: User = allow(*MANAGERS)) -> Response:
    return render(request, "kb_import.html", {"report": None, "error": None})


@router.post("/admin/kb/import")
async def kb_import(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = await save_upload(request, session, tmp)
            report = await import_articles(path, Actor.of(user, "import"))
    except GasdeskError as exc:
        return render(request, "kb_import.html", {"report": None, "error": exc.message}, status_code=exc.status_code)
    return render(request, "kb_import.html", {"report": report, "error": None})


@router.get("/admin/kb/stats")
async def kb_stats_page(request: Request, session: DbSession, days: int = 30, _: User = allow(*MANAGERS)) -> Response:
    days = max(1, min(days, 365))
    return render(request, "kb_stats.html", {"s": await service.kb_stats(session, days=days), "days": days})


@router.get("/admin/kb/suggestions")
async def kb_suggestions_page(request: Request, session: DbSession, days: int = 90, all: str = "",
                              notice: str = "", _: User = allow(*MANAGERS)) -> Response:
    days = max(1, min(days, 365))
    found = await suggestions.list_suggestions(session, days=days, min_count=1 if all else 2)
    return render(request, "kb_suggestions.html", {"suggestions": found, "days": days, "all": bool(all),
                                                   "notice": notice[:40]})


@router.post("/admin/kb/suggestions/dismiss")
async def kb_suggestion_dismiss(session: DbSession, key: Annotated[str, Form(max_length=20)],
                                user: User = allow(*MANAGERS)) -> Response:
    await suggestions.do_dismiss_suggestion(session, Actor.of(user), key)
    return RedirectResponse("/admin/kb/suggestions?notice=dismissed", status_code=303)


@router.post("/admin/kb/suggestions/draft")
async def kb_suggestion_draft(session: DbSession, key: Annotated[str, Form(max_length=20)],
                              user: User = allow(*MANAGERS)) -> Response:
    draft = await suggestions.do_draft_from_suggestion(session, Actor.of(user), key)
    return RedirectResponse(f"/admin/kb/{draft.id}?saved=1", status_code=303)


@router.post("/admin/kb/preview")
async def kb_preview(request: Request, answer: Text = "", _: User = allow(*MANAGERS)) -> Response:
    return render(request, "kb_preview.html", {"answer": answer})


@router.get("/admin/kb/{article_id}")
async def kb_edit(request: Request, article_id: Id, session: DbSession, saved: str = "",
                  _: User = allow(*MANAGERS)) -> Response:
    article = await service.access_article(session, article_id)
    return await _edit_page(request, session, article, _form(article), list(article.channels),
                            notice="已保存" if saved else None)


@router.post("/admin/kb/{article_id}")
async def kb_save(request: Request, article_id: Id, session: DbSession, title: Text = "", questions: Text = "",
                  answer: Text = "", category: Text = "", tags: Text = "", valid_from: Text = "", valid_to: Text = "",
                  channel: Annotated[list[str] | None, Form()] = None, user: User = allow(*MANAGERS)) -> Response:
    article = await service.access_article(session, article_id)
    form = {"title": title, "questions": questions, "answer": answer, "category": category, "tags": tags,
            "valid_from": valid_from, "valid_to": valid_to}
    try:
        data = service.check_article(**form, channels=channel or [])
        await service.do_update_article(session, Actor.of(user), article, data)
    except GasdeskError as exc:  # raised by validation, before anything was written
        return await _edit_page(request, session, article, form, channel or [], exc.message,
                                status_code=exc.status_code)
    return RedirectResponse(f"/admin/kb/{article.id}?saved=1", status_code=303)


@router.post("/admin/kb/{article_id}/status")
async def kb_status(article_id: Id, session: DbSession, status: Text, user: User = allow(*MANAGERS)) -> Response:
    article = await service.access_article(session, article_id)
    await service.do_set_status(session, Actor.of(user), article, status)
    return RedirectResponse(f"/admin/kb/{article_id}?saved=1", status_code=303)


@router.post("/admin/kb/{article_id}/restore")
async def kb_restore(article_id: Id, session: DbSession, version: Annotated[int, Form(ge=1, le=MAX_DB_INT)],
                     user: User = allow(*MANAGERS)) -> Response:
    article = await service.access_article(session, article_id)
    await service.do_restore_version(session, Actor.of(user), article, version)
    return RedirectResponse(f"/admin/kb/{article_id}?saved=1", status_code=303)


@router.post("/admin/kb/{article_id}/delete")
async def kb_delete(article_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    article = await service.access_article(session, article_id)
    await service.do_delete_article(session, Actor.of(user), article)
    return RedirectResponse("/admin/kb", status_code=303)
