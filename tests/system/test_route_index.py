"""The route index (gasdesk/web/route_index.py): a request walks only the routes its path could match, and
answers exactly as the whole route table would."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match, Router

from gasdesk.auth.access import iter_routes
from gasdesk.web.route_index import RouteIndex, install_route_index, literal_start, request_keys

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def scope_for(path: str, method: str = "GET", kind: str = "http") -> dict[str, object]:
    return {"type": kind, "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [], "path_params": {}}


def sample_path(template: str) -> str:
    """A concrete path the route ``template`` matches: every parameter filled with a plausible value."""
    return re.sub(r"\{[^}:]+(:([a-z]+))?\}", lambda m: "a/b" if m.group(2) == "path" else "7", template)


def the_index(app: FastAPI) -> RouteIndex:
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    return index


def test_literal_start_stops_at_the_first_parameter_and_at_the_depth() -> None:
    assert literal_start("/api/v1/tickets/{id}") == ("api", "v1", "tickets")
    assert literal_start("/api/v1/reports/{key}/export") == ("api", "v1", "reports")
    assert literal_start("/api/{version}/x") == ("api",)
    assert literal_start("/{slug}") == ()
    assert literal_start("/files/{name}.pdf") == ("files",)
    assert literal_start("/wall") == ("wall",)
    assert literal_start("/") == ("",)
    assert literal_start("/a/b/c/d/e") == ("a", "b", "c")


def test_request_keys_are_every_start_of_the_path() -> None:
    assert request_keys("/api/v1/tickets/5") == [(), ("api",), ("api", "v1"), ("api", "v1", "tickets")]
    assert request_keys("/") == [(), ("",)]
    assert request_keys("/wall") == [(), ("wall",)]


def test_the_app_matches_through_the_index(app: FastAPI) -> None:
    assert isinstance(app.router.middleware_stack, RouteIndex)


def test_a_route_left_out_of_a_walk_cannot_match_its_path(app: FastAPI) -> None:
    """For every route of the app (and paths that match none), every top-level entry of the table that the
    index leaves out of the walk answers NONE for that path and any method: the walk finds what the whole
    table would. This is the index's whole promise, checked through the routes' own ``matches``."""
    index = the_index(app)
    paths = {sample_path(route.path) for route in iter_routes(app.routes) if hasattr(route, "path")}
    paths |= {p + "/" for p in list(paths)}  # trailing-slash variants: the redirect case
    paths |= {"/", "/nope", "/api", "/api/v1", "/api/v1/nope/7", "//", "/api//v1/tickets", "/static/x.css",
              "/API/v1/tickets", "/api/v1/tickets/7/nope/deeper"}
    assert len(paths) > 300
    walked_less = 0
    for path in sorted(paths):
        walked = {id(route) for route in index.shard_for(path).routes}
        left_out = [route for route in app.router.routes if id(route) not in walked]
        walked_less += bool(left_out)
        for route in left_out:
            for method in METHODS:
                match, _ = route.matches(scope_for(path, method))
                assert match == Match.NONE, (path, method, route)
            match, _ = route.matches(scope_for(path, kind="websocket"))
            assert match == Match.NONE, (path, "websocket", route)
    assert walked_less == len(paths)  # every walk left something out
    assert len(index.shard_for("/api/v1/reports/overview/export").routes) < len(app.router.routes) // 4


async def test_answers_are_those_of_the_whole_table(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A matched route, a wrong method, a trailing-slash redirect, an unknown path and a static file answer as
    before the index: the last three fall through to the whole table."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.post("/healthz")).status_code == 405
    redirected = await client.get("/healthz/", follow_redirects=False)
    assert redirected.status_code == 307 and redirected.headers["location"].endswith("/healthz")
    missing = await client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "http_404"
    assert (await client.get("/static/no-such-file.css")).status_code == 404


def test_url_for_sees_the_whole_table() -> None:
    """Pages link to other domains' routes with ``url_for``: the router in the request is the whole table,
    not the walk's part of it."""
    local = FastAPI()

    @local.get("/pages/link")
    def link(request: Request) -> dict[str, str]:
        return {"href": str(request.url_for("health"))}

    @local.get("/other/health", name="health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    assert install_route_index(local.router)
    with TestClient(local) as http:
        assert http.get("/pages/link").json() == {"href": "http://testserver/other/health"}


def test_routes_added_after_the_first_request_are_found() -> None:
    local = FastAPI()

    @local.get("/first")
    def first() -> dict[str, int]:
        return {"n": 1}

    assert install_route_index(local.router)
    with TestClient(local) as http:
        assert http.get("/first").json() == {"n": 1}
        assert http.get("/later").status_code == 404

        @local.get("/later")
        def later() -> dict[str, int]:
            return {"n": 2}

        assert http.get("/later").json() == {"n": 2}


def test_a_router_with_middleware_of_its_own_is_left_alone() -> None:
    router = Router(middleware=[Middleware(GZipMiddleware)])
    assert install_route_index(router) is False
    assert not isinstance(router.middleware_stack, RouteIndex)


@pytest.mark.parametrize("prefix", ["/mounted", ""])
def test_a_router_included_with_a_prefix_is_walked_for_every_path(prefix: str) -> None:
    """An include-time prefix is not in the routes' own paths: such a router is in every walk."""
    inner = APIRouter()

    @inner.get("/thing")
    def thing() -> dict[str, str]:
        return {"at": "thing"}

    local = FastAPI()
    local.include_router(inner, prefix=prefix)
    assert install_route_index(local.router)
    with TestClient(local) as http:
        assert http.get(f"{prefix}/thing").json() == {"at": "thing"}
        assert http.get("/elsewhere").status_code == 404
