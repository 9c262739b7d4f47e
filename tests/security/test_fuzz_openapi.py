"""Schemathesis over the whole OpenAPI document, in process, as every role and anonymously: no generated
request — valid, or deliberately invalid (wrong types, out-of-range numbers, malformed dates, odd strings) —
may get a 5xx answer or raise inside the app (schemathesis' ``not_a_server_error`` check).

Each role runs against its own freshly migrated database (the conftest gives one per test) seeded with real
rows, so small generated ids hit existing customers, conversations, tickets, articles and slots, and mutating
operations really run. Requests are generated once per operation (positive and negative generation mixed,
derandomised, so a run is reproducible) and replayed for each role: every operation gets ``FUZZ_EXAMPLES``
requests from one of the roles allowed to call it (the roles take turns) and a few from each other allowed
role; public operations are fuzzed in full anonymously, and the anonymous run also sends one request to every
other operation (a 401, however odd the input). The HTML pages, left out of /openapi.json, get the same from a
document built from their routes. ``GASDESK_FUZZ_EXAMPLES`` raises the count for a deeper run.

Generating the requests costs more than sending them (~25 s for /openapi.json), and, derandomised, gives the
same requests for the same document every time: they are kept in the temp dir under a digest of the document,
the count and the library versions (like the NLU model, tests/conftest.py), so the PostgreSQL pass and later
runs of an unchanged API send the same requests without generating them again. A changed document, count or
library generates afresh.

Only ``not_a_server_error`` is checked: schemathesis' conformance checks flag undocumented 4xx codes and
schema-valid requests the domain rejects (unknown ids, ``check_*`` rules), which are not bugs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import tempfile
import traceback
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET

from gasdesk import db
from gasdesk.auth.access import access_rules_of, iter_routes
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from tests.factories import Factory
from tests.security.fuzz_support import World, build_world

FUZZ_EXAMPLES = int(os.environ.get("GASDESK_FUZZ_EXAMPLES", "8"))
OTHER_ROLE_EXAMPLES = 3  # an operation's other allowed roles replay the first few requests
BASE_URL = "http://testserver"
# What httpx's ``build_request`` takes, out of the keyword arguments schemathesis serialises a case to.
REQUEST_KWARGS = {"method", "url", "params", "headers", "cookies", "json", "data", "files", "content"}

# Generated once per operation label and shared by every role's test (generation costs more than sending).
_CASES: dict[str, list[schemathesis.Case]] = {}
# The generated requests of each document, on disk: {operation label: [the fields of each case]}.
CASE_CACHE = Path(tempfile.gettempdir()) / "gasdesk-test-fuzz-cases"
_CASE_FIELDS = ("method", "path_parameters", "headers", "cookies", "query", "body", "media_type",
                "multipart_content_types")
_NO_BODY = "<gasdesk-fuzz-no-body>"


@dataclass
class Failure:
    operation: str
    error: str
    curl: str


def _access(app: Any) -> dict[tuple[str, str], tuple[Role, ...] | None]:
    """(METHOD, path) → the roles allowed (None: public), from the routes' own declarations."""
    table: dict[tuple[str, str], tuple[Role, ...] | None] = {}
    for route in iter_routes(app.routes):
        rules = [rule.roles for rule in access_rules_of(route) if rule.roles is not None]
        for method in getattr(route, "methods", None) or ():
            table[(method, route.path)] = tuple(r for r in Role if all(r in roles for roles in rules)) \
                if rules else None
    return table


def _examples(role: Role | None, allowed: tuple[Role, ...] | None, turn: int, others: int) -> int:
    if allowed is None:  # public: in full anonymously, lightly with a token (the user changes some answers)
        return FUZZ_EXAMPLES if role is None else others
    if role is None:
        return 1
    if role not in allowed or not allowed:  # refusals: the anonymous run above and tests/auth/test_route_access.py
        return 0
    return FUZZ_EXAMPLES if allowed[turn % len(allowed)] is role else others


def _pages_document(app: Any) -> dict[str, Any]:
    """An OpenAPI document of the HTML pages (left out of /openapi.json): their declared path, query and form
    parameters. (What a page reads from the request by hand is covered by tests/security/test_bad_input_http.py.)"""
    routes = []
    for route in iter_routes(app.routes):
        if isinstance(route, APIRoute) and not route.include_in_schema:
            page = copy.copy(route)
            page.include_in_schema = True
            routes.append(page)
    return get_openapi(title="gasdesk pages", version="1", routes=routes)


def _cache_file(document: dict[str, Any]) -> Path:
    key = json.dumps([document, FUZZ_EXAMPLES, version("schemathesis"), version("hypothesis")], sort_keys=True,
                     default=str)
    return CASE_CACHE / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pickle"


def _stored(case: schemathesis.Case) -> dict[str, Any]:
    fields = {name: getattr(case, name) for name in _CASE_FIELDS}
    fields["headers"] = dict(fields["headers"] or {})
    if fields["body"] is NOT_SET:
        fields["body"] = _NO_BODY
    return fields


def _load_cases(document: dict[str, Any], operations: list[Any]) -> None:
    """Cases this document's operations had in an earlier process, rebuilt on the operations of this one."""
    try:
        stored = pickle.loads(_cache_file(document).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return
    for operation in operations:
        if operation.label in stored and operation.label not in _CASES:
            _CASES[operation.label] = [
                operation.Case(**{**fields, "body": NOT_SET if fields["body"] == _NO_BODY else fields["body"]})
                for fields in stored[operation.label]]


def _save_cases(document: dict[str, Any], operations: list[Any]) -> None:
    stored = {op.label: [_stored(case) for case in _CASES[op.label]] for op in operations if op.label in _CASES}
    path = _cache_file(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # xdist workers may write the same file: whole or nothing
    partial.write_bytes(pickle.dumps(stored))
    partial.replace(path)


def _cases(operation: Any) -> list[schemathesis.Case]:
    if operation.label not in _CASES:
        found: list[schemathesis.Case] = []

        @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                              operation.as_strategy(GenerationMode.NEGATIVE)))
        def collect(case: schemathesis.Case) -> None:
            found.append(case)

        collect()
        _CASES[operation.label] = found
    return _CASES[operation.label]


class Fuzzer:
    def __init__(self, app: Any, role: Role | None, world: World, document: dict[str, Any] | None = None,
                 others: int = OTHER_ROLE_EXAMPLES) -> None:
        self.app, self.role, self.world = app, role, world
        self.document = document if document is not None else app.openapi()
        self.others = others  # requests for an operation from an allowed role whose turn it is not
        self.failures: list[Failure] = []
        self.sent = 0

    async def headers(self, client: httpx.AsyncClient, refused: bool) -> dict[str, str]:
        """Headers for the next operation. Anonymous uploads and downloads carry a real visitor token, so they
        get past it. The admin's fuzzing may deactivate, re-role or re-password our user, and any role may
        revoke its token: after a 401 the user is put back and gets a fresh token."""
        if self.role is None:
            return {"X-Visitor-Token": self.world.visitor_token}
        headers = self.world.headers(self.role)
        if not refused or (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200:
            return headers
        async with db.sessionmaker()() as session:
            user = await session.get(User, self.world.users[self.role].id)
            assert user is not None
            user.is_active, user.role, user.locked_until = True, self.role.value, None
            await session.commit()
            self.world.tokens[self.role] = await Factory(session).token(user)
        return self.world.headers(self.role)

    async def send(self, client: httpx.AsyncClient, operation: Any, case: schemathesis.Case,
                   headers: dict[str, str]) -> int | None:
        self.sent += 1
        kwargs = {k: v for k, v in case.as_transport_kwargs(base_url=BASE_URL, headers=headers).items()
                  if k in REQUEST_KWARGS and v not in (None, {})}
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        try:
            request = client.build_request(**kwargs)
            request.read()  # the check reads the request body back when it reports a failure
        except Exception:  # noqa: BLE001 - a request httpx cannot even build never reaches the app
            return None
        try:
            response = await client.send(request)
            case.validate_response(response, checks=[not_a_server_error])
            return response.status_code
        except Exception as exc:  # noqa: BLE001 - every failure is collected and reported at the end
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self.failures.append(Failure(operation.label, detail[:600], case.as_curl_command(headers=headers)))
            return None

    async def run(self) -> None:
        access = _access(self.app)
        schema = schemathesis.openapi.from_dict(self.document)
        operations = [result.ok() for result in schema.get_all_operations()]
        # Revoking the token we fuzz with would turn the rest into 401s: that operation goes last.
        operations.sort(key=lambda op: op.path.endswith("/auth/revoke"))
        _load_cases(self.document, operations)
        known = {op.label for op in operations if op.label in _CASES}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL) as client:
            refused = False
            for turn, operation in enumerate(operations):
                examples = _examples(self.role, access[(operation.method.upper(), operation.path)], turn,
                                     self.others)
                if not examples:
                    continue
                headers = await self.headers(client, refused)
                statuses = [await self.send(client, operation, case, headers)
                            for case in _cases(operation)[:examples]]
                refused = 401 in statuses
        if {op.label for op in operations if op.label in _CASES} - known:  # generated some: keep them all
            _save_cases(self.document, operations)


@pytest.mark.parametrize("role", [*Role, None], ids=[*(r.value for r in Role), "anonymous"])
async def test_no_generated_request_gets_a_server_error(app, role: Role | None, monkeypatch) -> None:
    from gasdesk.kb import api as kb_api

    # Anonymous votes count per client address: a limiter of its own keeps other tests unaffected.
    monkeypatch.setattr(kb_api, "feedback_limiter", kb_api._FeedbackLimiter())
    fuzzer = Fuzzer(app, role, await build_world())
    await fuzzer.run()
    assert fuzzer.sent > (20 if role is Role.wall else 50)  # the wall kiosk may open the wall's few routes only
    distinct = {(f.operation, f.error.splitlines()[0][:120]): f for f in fuzzer.failures}
    report = "\n\n".join(f"{f.operation}: {f.error}\n    {f.curl[:600]}" for f in distinct.values())
    assert not fuzzer.failures, f"{len(fuzzer.failures)} server errors in {fuzzer.sent} requests:\n{report}"


async def test_no_generated_page_request_gets_a_server_error(app, monkeypatch) -> None:
    """The same over the HTML pages, on one database: each page is fuzzed by the allowed role whose turn it is,
    and sent once anonymously."""
    from gasdesk.kb import api as kb_api

    monkeypatch.setattr(kb_api, "feedback_limiter", kb_api._FeedbackLimiter())
    world, document = await build_world(), _pages_document(app)
    assert len(document["paths"]) > 20
    failures, sent = [], 0
    for role in [*Role, None]:
        fuzzer = Fuzzer(app, role, world, document, others=0)
        await fuzzer.run()
        failures += fuzzer.failures
        sent += fuzzer.sent
    assert sent > 100
    distinct = {(f.operation, f.error.splitlines()[0][:120]): f for f in failures}
    report = "\n\n".join(f"{f.operation}: {f.error}\n    {f.curl[:600]}" for f in distinct.values())
    assert not failures, f"{len(failures)} server errors in {sent} requests:\n{report}"
