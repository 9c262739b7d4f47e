"""Smart-tag pages: the rule table (/admin/tags, admins edit, supervisors read), the address lookup
(/tags/address, htmx, confirm/remove in place) and the customer 360's tag strip (/tags/customers/{id})."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE, STAFF_DESK, Role
from gasdesk.customers.service import access_customer
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError
from gasdesk.fields import Id
from gasdesk.tags import service
from gasdesk.tags.models import RULE_KIND_LABELS, RULE_TARGET_LABELS
from gasdesk.tags.schemas import RuleIn
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


def _htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


# ---------------------------------------------------------------- rules


async def _rules_context(session: AsyncSession, user: User) -> dict[str, Any]:
    return {
        "rules": [service.rule_out(r) for r in await service.list_rules(session)],
        "kinds": [(k.value, label) for k, label in RULE_KIND_LABELS.items()],
        "targets": [(t.value, label) for t, label in RULE_TARGET_LABELS.items()],
        "intents": service.known_intents(),
        "can_edit": user.role == Role.admin.value,
    }


def rule_from_form(form: dict[str, str]) -> RuleIn:
    """The rule a form describes: one text box of values (intents, keywords or communities, one per line)."""
    kind = form.get("kind", "")
    values = form.get("values", "")
    by_kind: dict[str, dict[str, Any]] = {
        "intent": {"intents": values},
        "keyword": {"keywords": values},
        "address": {"district": form.get("district", ""), "communities": values},
        "outage_area": {"days": form.get("days") or 90, "min_count": form.get("min_count") or 3},
    }
    params = by_kind.get(kind, {})
    return RuleIn.model_validate(
        {
            "tag": (form.get("tag") or "").strip()[:20] or "-",
            "colour": form.get("colour") or "#607d8b",
            "kind": kind if kind in RULE_KIND_LABELS else "keyword",
            "target": form.get("target") or None,
            "params": params,
            "enabled": form.get("enabled") == "on",
        }
    )


@router.get("/admin/tags")
async def rules_page(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    return render(request, "tags_rules.html", await _rules_context(session, user))


async def _save_rule(request: Request, session: AsyncSession, user: User, rule_id: int | None) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    error = notice = None
    status_code = 200
    try:
        data = rule_from_form(form)
        if rule_id is None:
            rule = await service.do_create_rule(session, user, data)
            notice = f"已新建规则：{rule.tag}"
        else:
            rule = await service.do_update_rule(
                session, user, await service.access_rule(session, rule_id), data
            )
            notice = f"已保存规则：{rule.tag}"
    except GasdeskError as exc:
        await rollback(session, user)
        error, status_code = exc.message, (200 if _htmx(request) else exc.status_code)
    context = await _rules_context(session, user)
    context.update(error=error, notice=notice)
    return render(
        request, "tags_rules_list.html" if _htmx(request) else "tags_rules.html", context, status_code
    )


@router.post("/admin/tags/rules")
async def create_rule_form(request: Request, session: DbSession, user: User = allow(Role.admin)) -> Response:
    return await _save_rule(request, session, user, None)


@router.post("/admin/tags/rules/{rule_id}")
async def update_rule_form(
    request: Request, rule_id: Id, session: DbSession, user: User = allow(Role.admin)
) -> Response:
    return await _save_rule(request, session, user, rule_id)


# ---------------------------------------------------------------- address lookup


async def _lookup_context(session: AsyncSession, user: User, district: str, text: str) -> dict[str, Any]:
    context: dict[str, Any] = {
        "district": district,
        "text": text,
        "result": None,
        "searched": bool(text.strip()),
    }
    if text.strip():
        context["result"] = await service.lookup_address(session, user, district, text)
    return context


@router.get("/tags/address")
async def address_page(request: Request, _: User = allow(*STAFF_DESK)) -> Response:
    return render(
        request, "tags_address.html", {"district": "", "text": "", "result": None, "searched": False}
    )


@router.post("/tags/address")
async def address_search(
    request: Request,
    session: DbSession,
    district: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    user: User = allow(*STAFF_DESK),
) -> Response:
    """The lookup form posts: addresses stay out of URLs, history and access logs."""
    error = None
    try:
        context = {
            "district": district[:40],
            "text": text[:120],
            "searched": True,
            "result": await service.lookup_address(session, user, district[:40], text[:120]),
        }
    except GasdeskError as exc:
        context, error = (
            {"district": district[:40], "text": text[:120], "result": None, "searched": False},
            exc.message,
        )
    context["error"] = error
    return render(request, "tags_address_results.html" if _htmx(request) else "tags_address.html", context)


async def _decide(request: Request, session: AsyncSession, user: User, confirm: bool) -> Response:
    form = await request.form()
    district, text = str(form.get("district", ""))[:40], str(form.get("text", ""))[:120]
    error = notice = None
    status_code = 200
    try:
        address = await service.access_address(session, int(str(form.get("address_id", "0")) or 0))
        ref = str(form.get("ref", ""))[:40]
        if confirm:
            await service.do_confirm_link(session, user, address, ref)
            notice = "已确认关联"
        else:
            await service.do_remove_link(session, user, address, ref)
            notice = "已移除关联"
    except (GasdeskError, ValueError) as exc:
        await rollback(session, user)
        error = exc.message if isinstance(exc, GasdeskError) else "参数有误"
        if not _htmx(request):
            status_code = exc.status_code if isinstance(exc, GasdeskError) else 422
    context = await _lookup_context(session, user, district, text)
    context.update(error=error, notice=notice)
    return render(
        request, "tags_address_results.html" if _htmx(request) else "tags_address.html", context, status_code
    )


@router.post("/tags/address/confirm")
async def confirm_form(request: Request, session: DbSession, user: User = allow(*STAFF_DESK)) -> Response:
    return await _decide(request, session, user, True)


@router.post("/tags/address/remove")
async def remove_form(request: Request, session: DbSession, user: User = allow(*STAFF_DESK)) -> Response:
    return await _decide(request, session, user, False)


# ---------------------------------------------------------------- the customer 360's tags


@router.get("/tags/customers/{customer_id}")
async def customer_tags_fragment(
    request: Request, customer_id: Id, session: DbSession, _: User = allow(*OFFICE)
) -> Response:
    """The tag strip of the customer 360 page (loaded by htmx)."""
    await access_customer(session, customer_id)
    return render(request, "tags_customer.html", {"tags": await service.customer_tags(session, customer_id)})
