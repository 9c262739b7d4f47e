"""Agent-facing customer pages: search and the customer 360 card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import OFFICE
from gasdesk.channels.timeline import customer_contacts, customer_timeline
from gasdesk.customers import service
from gasdesk.customers.billing import billing_system_for
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/customers")
async def customers_page(request: Request, _: User = allow(*OFFICE)) -> Response:
    return render(request, "customers.html", {"q": "", "results": [], "searched": False})


@router.post("/customers/search")
async def customers_search(request: Request, session: DbSession, q: Annotated[str, Form()] = "",
                           _: User = allow(*OFFICE)) -> Response:
    """The search form posts: phone numbers, 户号 and names stay out of URLs, history and access logs."""
    results = []
    if q.strip():
        results = [service.summarize(c) for c in await service.find_customers(session, service.CustomerQuery(q=q[:120]))]
    template = "customer_results.html" if request.headers.get("hx-request") else "customers.html"
    return render(request, template, {"q": q, "results": results, "searched": bool(q.strip())})


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> Response:
    customer = await service.access_customer(session, customer_id)
    view = await service.customer_360(session, customer, billing_system_for(session))
    return render(request, "customer_360.html", {
        "c": view, "timeline": await customer_timeline(session, customer.id),
        "contacts": await customer_contacts(session, customer.id)})
