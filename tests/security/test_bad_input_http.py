"""Finding 8 (“5xx on bad input”), reproduced request by request: each used to be a 500; each is now a 4xx
with a clear message (or, for pages, the page with its own error), on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from gasdesk.fields import MAX_DB_INT
from tests.factories import TEST_PASSWORD, login, staff_user, wo_headers, wo_ticket, write_csv

HUGE = "99999999999999999999"  # > 2^64: OverflowError on SQLite
INT4_PLUS_ONE = str(MAX_DB_INT + 1)  # fits SQLite, out of PostgreSQL int4: asyncpg DataError


async def _headers(factory: Any, role: str) -> dict[str, str]:
    """Bearer headers for a new user of ``role`` (cached password hash: argon2 per test is slow)."""
    return await wo_headers(factory, await staff_user(factory.session, role))


def _invalid(response: Any, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith("请求"), error
    if field is not None:
        assert field in error["message"], error
    return error


# ---------------------------------------------------------------- integers beyond the id columns


async def test_big_ids_on_the_public_kb_feedback_route(client) -> None:
    for article_id in (HUGE, INT4_PLUS_ONE, "0", "-1"):
        _invalid(await client.post(f"/api/v1/kb/articles/{article_id}/feedback", json={"helpful": True}),
                 "article_id")
    # a real id still only gets the ordinary answer
    assert (await client.post("/api/v1/kb/articles/123/feedback", json={"helpful": True})).status_code == 404


GROUP = {"name": "燃气", "working_hours": {"1": "08:00-17:00"}}
BRANCH = {"name": "和平区营业厅", "district": "和平区", "address": "南京南街 128 号", "phone": "024-2341 6600",
          "weekly_hours": {"1": "08:30-17:00"}}
# (method, path, JSON body, the field the 422 must name); {n} is the number under test
BIG_ID_REQUESTS = [
    ("GET", "/api/v1/customers/{n}", None, "customer_id"), ("PATCH", "/api/v1/customers/{n}", {}, "customer_id"),
    ("GET", "/api/v1/customers/{n}/conversations", None, "customer_id"),
    ("GET", "/api/v1/conversations/{n}", None, "conversation_id"),
    ("POST", "/api/v1/conversations/{n}/accept", None, "conversation_id"),
    ("POST", "/api/v1/conversations/{n}/close", None, "conversation_id"),
    ("GET", "/api/v1/conversations/{n}/ticket-draft", None, "conversation_id"),
    ("POST", "/api/v1/left-messages/{n}/handled", None, "left_id"), ("GET", "/api/v1/tickets/{n}", None, "ticket_id"),
    ("GET", "/api/v1/kb/articles/{n}", None, "article_id"), ("DELETE", "/api/v1/kb/articles/{n}", None, "article_id"),
    ("PUT", "/api/v1/skill-groups/{n}", GROUP, "group_id"), ("PUT", "/api/v1/branches/{n}", BRANCH, "branch_id"),
    ("PATCH", "/api/v1/users/{n}", {}, "user_id"), ("POST", "/api/v1/appointments/{n}/cancel", {}, "appointment_id"),
    ("GET", "/api/v1/canned-replies?conversation_id={n}", None, "conversation_id"),
    ("GET", "/api/v1/followups?ticket_id={n}", None, "ticket_id"),
    ("GET", "/api/v1/tickets?customer_id={n}", None, "customer_id"),
    ("GET", "/api/v1/webhooks/deliveries?endpoint_id={n}", None, "endpoint_id"),
    ("GET", "/api/v1/kb/articles?offset={n}", None, "offset"), ("GET", "/api/v1/audit?offset={n}", None, "offset"),
    ("GET", "/api/v1/conversations/1?after_seq={n}", None, "after_seq"),
    ("PUT", "/api/v1/conversations/1/customer", {"customer_id": "{n}"}, "customer_id"),
    ("POST", "/api/v1/conversations/1/transfer", {"to_agent_id": "{n}"}, "to_agent_id"),
    ("POST", "/api/v1/tickets", {"type": "repair", "customer_id": "{n}"}, "customer_id"),
    ("POST", "/api/v1/tickets/1/actions", {"action": "assign", "crew_id": "{n}"}, "crew_id"),
    ("POST", "/api/v1/appointments", {"customer_id": 1, "service": "维修", "slot_id": "{n}"}, "slot_id"),
    ("POST", "/api/v1/handoff-rules", {"position": 1, "name": "x", "kind": "keyword", "skill_group_id": "{n}"},
     "skill_group_id"),
    ("PUT", "/api/v1/agents/1/skills", {"skill_group_ids": [1, "{n}"]}, "skill_group_ids"),
    ("POST", "/api/v1/customers/1/accounts", {"account_no": "2103345678", "address_id": "{n}"}, "address_id"),
    ("POST", "/api/v1/config/ticket-routing-rules", {"position": 1, "name": "x", "team_id": "{n}"}, "team_id"),
    ("POST", "/api/v1/kb/articles/1/restore", {"version": "{n}"}, "version"),
]


def _fill(value: Any, n: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, n) for v in value]
    return int(n) if value == "{n}" else value


@pytest.mark.parametrize("method,path,body,field", BIG_ID_REQUESTS,
                         ids=[f"{m} {p}" for m, p, _, _ in BIG_ID_REQUESTS])
async def test_big_ids_are_refused_at_the_edge(client, factory, method: str, path: str, body: Any,
                                               field: str) -> None:
    headers = await _headers(factory, "admin")
    for n in (HUGE, INT4_PLUS_ONE):
        kwargs = {"json": _fill(body, n)} if body is not None else {}
        _invalid(await client.request(method, path.replace("{n}", n), headers=headers, **kwargs), field)


def _integers(schema: Any, where: str, found: list[tuple[str, dict[str, Any]]], components: dict[str, Any],
              seen: frozenset[str] = frozenset()) -> None:
    """Every integer schema reachable from ``schema`` (through $ref, anyOf, items, properties)."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            _integers(components[name], f"{where}→{name}", found, components, seen | {name})
        return
    if schema.get("type") == "integer":
        found.append((where, schema))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            _integers(sub, where, found, components, seen)
    _integers(schema.get("items"), f"{where}[]", found, components, seen)
    for name, sub in (schema.get("properties") or {}).items():
        _integers(sub, f"{where}.{name}", found, components, seen)
    _integers(schema.get("additionalProperties"), f"{where}{{}}", found, components, seen)


def test_every_integer_the_api_accepts_is_bounded(app) -> None:
    """Structural guard for new routes: each integer in a path, query, form or request body declares a minimum and
    a maximum the database can hold (use ``gasdesk.fields.Id`` / ``Count``)."""
    document = app.openapi()
    components = document.get("components", {}).get("schemas", {})
    found: list[tuple[str, dict[str, Any]]] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                _integers(parameter.get("schema"), f"{method.upper()} {path} {parameter['name']}", found, components)
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                _integers(media.get("schema"), f"{method.upper()} {path} body", found, components)
    assert len(found) > 40
    unbounded = [where for where, schema in found
                 if not (-MAX_DB_INT - 1 <= schema.get("minimum", schema.get("exclusiveMinimum", -2**63))
                         and schema.get("maximum", schema.get("exclusiveMaximum", 2**63)) <= MAX_DB_INT)]
    assert unbounded == []


# ---------------------------------------------------------------- times and dates


async def test_naive_since_in_the_audit_log_is_a_clear_422(client, factory) -> None:
    headers = await _headers(factory, "supervisor")
    error = _invalid(await client.get("/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=headers),
                     "since")
    assert "时区" in error["message"]
    _invalid(await client.get("/api/v1/audit", params={"until": "2026-01-01 08:00"}, headers=headers), "until")
    _invalid(await client.get("/api/v1/audit", params={"since": "0001-01-01T00:00:00+08:00"}, headers=headers),
             "since")
    for aware in ("2026-01-01T00:00:00Z", "2026-01-01T08:00:00+08:00"):
        response = await client.get("/api/v1/audit", params={"since": aware}, headers=headers)
        assert response.status_code == 200, response.text


async def test_out_of_range_calendar_dates(client, factory, session) -> None:
    headers = await _headers(factory, "dispatcher")
    for day in ("9999-12-31", "0001-01-01", "3000-01-01"):
        _invalid(await client.get("/api/v1/appointment-calendar", params={"district": "和平区", "first_day": day},
                                  headers=headers), "first_day")
        _invalid(await client.post("/api/v1/appointment-slots/generate", headers=headers, json={
            "district": "和平区", "first_day": day, "days": 1, "windows": [["09:00", "12:00"]], "capacity": 2}),
            "first_day")
    ok = await client.get("/api/v1/appointment-calendar", params={"district": "和平区", "first_day": "2026-12-07"},
                          headers=headers)
    assert ok.status_code == 200 and ok.json() == []
    # the calendar page falls back to this week instead of adding weeks past year 9999
    await staff_user(session, "dispatcher", username="cal-dispatcher")
    assert (await login(client, "cal-dispatcher")).status_code == 303
    for week in ("9999-12-31", "0001-01-01"):
        page = await client.get("/appointments/calendar", params={"week": week})
        assert page.status_code == 200, page.text


async def test_slot_windows_and_page_numbers_are_checked(client, factory, session) -> None:
    headers = await _headers(factory, "dispatcher")
    for windows in ([["", ""]], [["12:00", "09:00"]], [["09:00+08:00", "12:00"]], [["nope", "12:00"]]):
        response = await client.post("/api/v1/appointment-slots/generate", headers=headers, json={
            "district": "和平区", "first_day": "2026-12-07", "days": 1, "windows": windows, "capacity": 2})
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_slots", response.text
    await staff_user(session, "dispatcher", username="gen-dispatcher")
    await login(client, "gen-dispatcher")
    for days, capacity in ((HUGE, "2"), ("²", "2"), ("1", INT4_PLUS_ONE), ("1", "٣")):
        page = await client.post("/appointments/calendar/generate", data={
            "district": "和平区", "first_day": "2026-12-07", "days": days, "windows": "09:00-12:00",
            "capacity": capacity})
        assert page.status_code == 422 and ("天数" in page.text or "容量" in page.text), page.text[:300]
    page = await client.post("/appointments/calendar/generate", data={
        "district": "和平区", "first_day": "9999-12-30", "days": "7", "windows": "09:00-12:00", "capacity": "2"})
    assert page.status_code == 422 and "1900" in page.text


async def test_naive_and_far_times_in_bodies(client, factory, session) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=crew.id)
    headers = await wo_headers(factory, crew)
    for arrived in ("2026-12-07T09:40:00", "9999-12-31T23:00:00-05:00"):
        _invalid(await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers,
                                   json={"arrived_at": arrived, "result": "已处理"}), "arrived_at")
    admin = await _headers(factory, "admin")
    _invalid(await client.post("/api/v1/outages", headers=admin, json={
        "kind": "gas", "district": "和平区", "starts_at": "2026-12-01T09:00:00", "ends_at": "2026-12-01T18:00:00"}),
        "starts_at")


async def test_material_quantities_must_be_finite(client, factory, session) -> None:
    crew = await staff_user(session, "field_crew", username="qty-crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=crew.id)
    headers = await wo_headers(factory, crew)
    for qty in (-1, 0, 10**9, "many"):
        _invalid(await client.post(f"/api/v1/tickets/{ticket.id}/writeback", headers=headers,
                                   json={"result": "已处理", "materials": [{"name": "密封圈", "qty": qty}]}))
    # the crew's mobile form
    await login(client, "qty-crew")
    for qty in ("nan", "inf", "1e999", "-2"):
        page = await client.post(f"/crew/tickets/{ticket.id}/writeback", files={  # multipart, as the form sends
            "result": (None, "已处理"), "material_name": (None, "密封圈"), "material_qty": (None, qty),
            "resolved": (None, "1")})
        assert page.status_code == 422 and "数量" in page.text, page.text[:300]


# ---------------------------------------------------------------- characters and numbers no database can hold


async def test_nul_surrogates_and_nan_are_refused_before_any_handler(client, factory) -> None:
    headers = await _headers(factory, "admin")
    _invalid(await client.get("/api/v1/kb/articles", params={"q": "燃气\x00"}, headers=headers))
    _invalid(await client.get("/api/v1/customers/%00", headers=headers))
    raw = {"Content-Type": "application/json", **headers}
    for body in ('{"text": "\\ud800"}', '{"text": "a\\u0000b"}', '{"text": "ok", "x": NaN}',
                 '{"text": "ok", "x": 1e999}', '{"text": "ok", "x": -Infinity}', '{"\\udfff": 1, "text": "ok"}'):
        _invalid(await client.post("/api/v1/bot/understand", content=body.encode(), headers=raw))
    # a valid pair of surrogates is just an emoji
    ok = await client.post("/api/v1/bot/understand", content='{"text": "\\ud83d\\udd25 燃气表"}'.encode(), headers=raw)
    assert ok.status_code == 200, ok.text
    # without a content type FastAPI still reads JSON, so the guard does too
    _invalid(await client.post("/api/v1/kb/articles/1/feedback", content=b'{"helpful": true, "x": NaN}'))
    # HTML forms: the page answers in Chinese, as a page
    page = await client.post("/login", data={"username": "admin\x00", "password": TEST_PASSWORD},
                             headers={"Accept": "text/html"})
    assert page.status_code == 422 and "无法保存的字符" in page.text and "<html" in page.text.lower()


async def test_nul_in_an_import_file(client, factory, tmp_path) -> None:
    """Where the guard cannot look (file contents) the database layer refuses the text, on both backends."""
    admin = await _headers(factory, "admin")
    path = write_csv(tmp_path / "kb.csv", ["标题", "问法", "答案"], [["燃气\x00表", "燃气表不走字", "请检查表前阀"]])
    response = await client.post("/api/v1/kb/import", headers=admin,
                                 files={"file": ("kb.csv", path.read_bytes(), "text/csv")})
    assert response.status_code == 422 and "无法保存的字符" in response.json()["error"]["message"], response.text


# ---------------------------------------------------------------- pages that parse ids by hand


async def test_pages_parse_ids_strictly(client, factory, session) -> None:
    dispatcher = await staff_user(session, "dispatcher", username="ids-dispatcher")
    ticket = await wo_ticket(session, "repair")
    await login(client, dispatcher.username)
    for query in (f"page={HUGE}", "page=²", f"team_id={HUGE}", "team_id=٣", f"team_id={INT4_PLUS_ONE}"):
        assert (await client.get(f"/tickets?{query}")).status_code == 200, query
    for customer_id in (HUGE, "²", INT4_PLUS_ONE):
        response = await client.get("/tickets/new/service-info", params={"service_type": "维修",
                                                                          "customer_id": customer_id})
        assert response.status_code == 200, customer_id
    for crew_id in (HUGE, "²", INT4_PLUS_ONE):
        board = await client.post(f"/dispatch/{ticket.id}/assign", data={"crew_id": crew_id})
        assert board.status_code == 200 and "请选择外勤人员" in board.text, crew_id
        detail = await client.post(f"/tickets/{ticket.id}/action", data={"action": "assign", "crew_id": crew_id})
        assert detail.status_code == 422 and "请选择外勤人员" in detail.text, crew_id
    # a refused create form re-renders with what was typed, however odd the customer id
    for customer_id in ("abc", "²", HUGE):
        form = await client.post("/tickets/new", data={"type": "no-such-type", "customer_id": customer_id,
                                                       "description": "x"})
        assert 400 <= form.status_code < 500, (customer_id, form.status_code)
    for path in (f"/tickets/{HUGE}", f"/customers/{INT4_PLUS_ONE}", f"/tickets/new?conversation_id={HUGE}"):
        response = await client.get(path)
        assert response.status_code == 422, path
