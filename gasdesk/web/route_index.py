"""An index of the app's route table by the literal start of each path, so a request is matched only against
the routers that could take it.

Why: FastAPI (0.16x) keeps every included router as a branch and matches a request by walking all of them and
every route in each: with ~60 domain routers that walk cost 0.4–0.7 ms of the event loop's time on every
request, more than the rest of a small API call (docs/performance.md). Here the top-level routes are grouped by
the literal segments their paths start with (``/api/v1/reports/{key}`` → ``api``, ``v1``, ``reports``); a
request walks, in the table's own order, only the groups its path starts with, plus the routes whose paths start
with a parameter. A route left out cannot match that path, so whatever the walk finds is what the whole table
would have found. When the walk finds nothing (a 404, a trailing-slash redirect, a low-priority route) the whole
table answers as before.

Anything this module does not understand (a router included with a prefix, a host route, a router with its own
middleware) is kept in every walk, or the index is not installed at all: it only ever makes matching cheaper.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

# Literal segments indexed per path: /api/v1/<domain> tells the domains apart.
DEPTH = 3
Key = tuple[str, ...]


def literal_start(path: str, depth: int = DEPTH) -> Key:
    """The first ``depth`` whole segments of a route ``path`` before its first parameter:
    ``/api/v1/tickets/{id}`` → ``("api", "v1", "tickets")``, ``/{slug}`` → ``()``."""
    key: list[str] = []
    for segment in path.split("/")[1:depth + 1]:
        if "{" in segment:
            break
        key.append(segment)
    return tuple(key)


def request_keys(path: str, depth: int = DEPTH) -> list[Key]:
    """Every key a request ``path`` could be indexed under: its first 0, 1, … ``depth`` segments."""
    segments = path.split("/")[1:depth + 1]
    return [tuple(segments[:n]) for n in range(len(segments) + 1)]


def has_low_priority_routes(router: Any) -> bool:
    """Whether ``router`` or a router included in it has low-priority (frontend) routes, which FastAPI
    matches after the trailing-slash redirect: a shard cannot keep that order, so the index stays out."""
    if getattr(router, "_low_priority_routes", None):
        return True
    return any(has_low_priority_routes(route.original_router) for route in router.routes
               if getattr(route, "original_router", None) is not None)


def route_paths(route: Any) -> list[str] | None:
    """The full paths ``route`` (a top-level entry of the table) can match, or None when they are not known
    for sure — such a route is walked for every request."""
    router = getattr(route, "original_router", None)
    if router is None:
        path = getattr(route, "path", None)
        return [path] if isinstance(path, str) and path.startswith("/") else None
    if getattr(getattr(route, "include_context", None), "prefix", None):
        return None  # an include-time prefix: not in the routes' own paths
    paths: list[str] = []
    for inner in router.routes:
        found = route_paths(inner)
        if found is None:
            return None
        paths.extend(found)
    return paths


class RouteIndex:
    """The router's matching, through the index: ``router.middleware_stack`` (see ``install_route_index``)."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._built_for: tuple[int, int] | None = None
        self._index: dict[Key, list[int]] = {}
        self._shards: dict[tuple[Key, ...], Router] = {}
        self._whole = False

    def _build(self) -> None:
        routes = self._router.routes
        self._index, self._shards = {}, {}
        self._whole = has_low_priority_routes(self._router)
        for position, route in enumerate(routes):
            paths = route_paths(route)
            keys = {()} if paths is None else {literal_start(path) for path in paths}
            for key in keys:
                self._index.setdefault(key, []).append(position)
        self._built_for = (id(routes), len(routes))

    def shard_for(self, path: str) -> Router:
        """A copy of the router that walks only the routes ``path`` could match, in the table's order; it hands
        a request it cannot place to the whole router. The whole router where the index cannot be used."""
        routes = self._router.routes
        if self._built_for != (id(routes), len(routes)):
            self._build()  # routes added after the first request (tests do)
        if self._whole:
            return self._router
        keys = tuple(key for key in request_keys(path) if key in self._index)
        shard = self._shards.get(keys)
        if shard is None:
            positions = sorted({position for key in keys for position in self._index[key]})
            shard = copy.copy(self._router)
            shard.routes = [routes[position] for position in positions]
            shard.redirect_slashes = False  # the whole router redirects, knowing every route
            if hasattr(shard, "_low_priority_routes"):
                shard._low_priority_routes = []
            shard.default = self._router.app
            self._shards[keys] = shard  # bounded: one per combination of the index's own keys
        return shard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._router.app(scope, receive, send)
            return
        scope.setdefault("router", self._router)  # url_for and friends see the whole table
        await self.shard_for(get_route_path(scope)).app(scope, receive, send)


def install_route_index(router: Router) -> bool:
    """Match ``router``'s requests through a ``RouteIndex``; not when the router has middleware of its own
    (the index sits where that middleware would). Returns whether it was installed."""
    if router.middleware_stack != router.app:
        return False
    router.middleware_stack = RouteIndex(router)
    return True
