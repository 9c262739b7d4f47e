"""Lookups by phone, 户号 or name go in POST bodies: URLs end up in access logs, proxies and browser history."""

from __future__ import annotations

from fastapi.routing import APIRoute

from gasdesk.auth.access import iter_routes
from tests.factories import login, staff_user

# Query parameters that would carry a resident's identifiers in a URL.
PII_PARAMS = {"phone", "account_no", "id_card", "name", "address", "customer_q", "contact_phone", "mobile"}


def test_no_get_route_takes_personal_data_in_its_query_string(app) -> None:
    offenders = []
    for route in iter_routes(app.routes):
        if not isinstance(route, APIRoute) or not route.methods & {"GET", "DELETE", "HEAD"}:
            continue
        names = {p.alias for p in route.dependant.query_params}
        if names & PII_PARAMS:
            offenders.append((route.path, sorted(names & PII_PARAMS)))
        # a free-text "q" is fine for ticket numbers and article keywords, not for finding people
        if "q" in names and "customer" in route.path:
            offenders.append((route.path, ["q"]))
    assert offenders == []


async def test_customer_lookup_by_url_is_gone_and_the_body_works(client, factory) -> None:
    customer = await factory.customer(name="周晓梅", phones=["13512345678"], account_no="2100077777")
    headers = await factory.headers("agent")
    for url in ("/api/v1/customers?phone=13512345678", "/api/v1/customers?q=13512345678",
                "/api/v1/progress?phone=13512345678", "/api/v1/progress?account_no=2100077777"):
        response = await client.get(url, headers=headers)
        assert response.status_code == 405, url  # nothing is looked up from a URL
    found = await client.post("/api/v1/customers/search", headers=headers, json={"q": "135 1234 5678"})
    assert [c["id"] for c in found.json()] == [customer.id]
    found = await client.post("/api/v1/customers/search", headers=headers, json={"account_no": "2100077777"})
    assert [c["id"] for c in found.json()] == [customer.id]
    assert (await client.post("/api/v1/progress", headers=headers, json={"phone": "13512345678"})).json() == []


async def test_staff_pages_search_by_post(client, factory, session) -> None:
    await factory.customer(name="周晓梅", phones=["13512345678"], account_no="2100077777")
    await staff_user(session, "agent", username="desk_search")
    assert (await login(client, "desk_search")).status_code == 303
    page = await client.get("/customers", params={"q": "13512345678"}, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "周晓梅" not in page.text, "a query string is not a search"
    results = await client.post("/customers/search", data={"q": "13512345678"}, headers={"HX-Request": "true"})
    assert results.status_code == 200 and "周晓梅" in results.text
    full = await client.post("/customers/search", data={"q": "2100077777"}, headers={"Accept": "text/html"})
    assert full.status_code == 200 and "周晓梅" in full.text and "<form" in full.text
    picker = await client.post("/tickets/new/customers", data={"customer_q": "135-1234-5678"},
                               headers={"HX-Request": "true"})
    assert picker.status_code == 200 and "周晓梅" in picker.text
