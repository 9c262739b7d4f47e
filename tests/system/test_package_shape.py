"""The package's shape (docs/architecture.md, "Layout by domain"): every domain keeps the same files, request
models live in schemas.py, templates and static files are found rather than listed, and the import graph has
no cycles (a local import may not hide one)."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from starlette.routing import Mount

import gasdesk
from gasdesk.web import app as app_module
from gasdesk.web.templating import TEMPLATE_DIRS

GASDESK = Path(gasdesk.__file__).resolve().parent
# Alembic revisions are loaded by file path, never imported by the package.
NOT_MODULES = ("migrations/versions/",)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(GASDESK.rglob("*.py")):
        rel = path.relative_to(GASDESK.parent)
        if any(part in rel.as_posix() for part in NOT_MODULES):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at the top or inside functions and classes; not those under
    ``if TYPE_CHECKING:`` (they never run)."""

    def walk(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield from walk(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            return
        for child in ast.iter_child_nodes(node):
            yield from walk(child)

    yield from walk(tree)


def _resolve(name: str) -> str | None:
    """The gasdesk module an imported name lives in (``gasdesk.tickets.service`` for
    ``from gasdesk.tickets import service`` and for ``from gasdesk.tickets.service import do_x``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module → the gasdesk modules it imports (anywhere in the module: a local import cannot hide a cycle)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                target = _resolve(name) if name.startswith("gasdesk") else None
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_the_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    cycles = []
    # Report every cycle, not just the first: remove one edge of each found and look again.
    while (cycle := find_cycle(graph)) is not None and len(cycles) < 20:
        cycles.append(" → ".join(cycle))
        graph[cycle[-2]].discard(cycle[-1])
    assert cycles == [], "import cycles (break them, don't hide them in a local import):\n" + "\n".join(cycles)


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_cycle_finder_reports_the_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_the_jobs_queue_knows_no_domain() -> None:
    """Domains register nothing by being imported, and the queue imports no domain to find their handlers:
    the app factory and the worker entry point (gasdesk/worker.py) register them."""
    infrastructure = {"gasdesk.clock", "gasdesk.config", "gasdesk.db", "gasdesk.errors", "gasdesk.fields"}
    graph = import_graph()
    queue = ("gasdesk.jobs.queue", "gasdesk.jobs.models")
    reached = {target for module, targets in graph.items() if module in queue for target in targets}
    assert {t for t in reached if not t.startswith(("gasdesk.jobs", "gasdesk.security"))} <= infrastructure
    # The queue's admin page and API (gasdesk/jobs/service.py, api.py, pages.py) are staff pages like any other:
    # they also use sign-in, roles, the audit trail and the web layer, and still no domain that has jobs.
    staff_pages = infrastructure | {"gasdesk.audit.service", "gasdesk.auth.access", "gasdesk.auth.models",
                                    "gasdesk.auth.roles", "gasdesk.schemas", "gasdesk.web.templating"}
    reached = {target for module, targets in graph.items() if module.startswith("gasdesk.jobs") for target in targets}
    assert {t for t in reached if not t.startswith(("gasdesk.jobs", "gasdesk.security"))} <= staff_pages


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_local_imports_state_their_reason() -> None:
    """Imports sit at the top of modules (ruff PLC0415); the few kept inside a function say why on the line.
    The CLI is exempt (each command imports what it needs, so ``gasdesk --help`` starts fast)."""
    unexplained = []
    for module, path in MODULES.items():
        if module == "gasdesk.cli":
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        top = {id(node) for node in tree.body}
        for node in _imports(tree):
            if id(node) in top:
                continue
            line = lines[node.lineno - 1]
            if not re.search(r"# noqa: [A-Z0-9, ]*PLC0415\s*[-—]\s*\S", line):
                unexplained.append(f"{module}:{node.lineno}: {line.strip()}")
    assert unexplained == []


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_no_build_scripts_in_the_package() -> None:
    """Scripts that build shipped data (scripts/generate_nlu_training_data.py) live outside the package."""
    runnable = [module for module, path in MODULES.items()
                if module != "gasdesk.cli" and '__name__ == "__main__"' in path.read_text(encoding="utf-8")]
    assert runnable == []
    assert not list((GASDESK / "bot" / "nlu" / "data").glob("*.py"))


# ---------------------------------------------------------------- same files in every domain

ROUTE_MODULES = [m for m in MODULES if m.rpartition(".")[2] in ("api", "pages") or m.endswith("socket")]


@pytest.mark.parametrize("module", ROUTE_MODULES)
def test_api_and_pages_define_no_request_models(module: str) -> None:
    """Request and response models live in the domain's schemas.py; api.py and pages.py only route."""
    loaded = importlib.import_module(module)
    own_models = [name for name, value in vars(loaded).items()
                  if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module]
    assert own_models == []


def test_pages_live_in_their_domain() -> None:
    """The appointment calendar, the webhook admin and the audit page are served by their own domain."""
    from gasdesk.appointments.pages import router as appointments
    from gasdesk.audit.pages import router as audit
    from gasdesk.webhooks.pages import router as webhooks

    def paths(router) -> set[str]:
        return {route.path for route in router.routes}

    assert {"/appointments/calendar", "/appointments/calendar/generate"} <= paths(appointments)
    assert "/admin/webhooks" in paths(webhooks)
    assert "/admin/audit" in paths(audit)
    assert not (GASDESK / "tickets" / "config_api.py").exists()


# ---------------------------------------------------------------- templates and static files, discovered


def _folders(kind: str) -> list[Path]:
    return sorted(p for p in GASDESK.rglob(kind) if p.is_dir() and (p.parent / "__init__.py").is_file())


def test_every_templates_folder_is_searched(app) -> None:
    searched = {Path(d).resolve() for d in TEMPLATE_DIRS}
    assert set(_folders("templates")) <= searched


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_template_names_are_unique() -> None:
    """All folders form one search path: a second template of the same name would never be found."""
    seen: dict[str, Path] = {}
    clashes = []
    for folder in _folders("templates"):
        for template in folder.rglob("*.html"):
            name = template.relative_to(folder).as_posix()
            if name in seen:
                clashes.append(f"{name}: {seen[name]} and {template}")
            seen[name] = template
    assert clashes == []


def test_every_static_folder_is_mounted(app) -> None:
    mounted = {route.path: Path(route.app.directory).resolve() for route in app.routes
               if isinstance(route, Mount) and route.path.startswith("/static")}
    expected = {f"/static/{folder.parent.name}": folder for folder in _folders("static")
                if folder.parent.name != "web"}
    expected["/static"] = GASDESK / "web" / "static"
    assert mounted == expected


def test_a_new_domains_folders_are_found_without_a_list(tmp_path, monkeypatch) -> None:
    """Discovery, not a hand-kept list: a new package (nested too) gets its templates searched and its static
    files served at /static/<package>; a name that would shadow the shared /static is refused."""
    root = tmp_path / "gasdesk"
    for package in ("web", "meters", "channels", "channels/wechat", "plain"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").touch()
    for folder in ("web/static/vendor", "web/templates", "meters/templates", "meters/static",
                   "channels/wechat/static", "plain/static_notes"):
        (root / folder).mkdir(parents=True)
    monkeypatch.setattr(app_module, "GASDESK_DIR", root)
    monkeypatch.setattr(app_module, "WEB_DIR", root / "web")
    assert app_module.domain_template_dirs() == [root / "meters" / "templates"]
    assert app_module.domain_static_mounts() == {"/static/wechat": root / "channels" / "wechat" / "static",
                                                 "/static/meters": root / "meters" / "static"}
    (root / "vendor" / "static").mkdir(parents=True)
    (root / "vendor" / "__init__.py").touch()
    with pytest.raises(RuntimeError, match="/static/vendor"):
        app_module.domain_static_mounts()


STATIC_URL = re.compile(r"""["'(](/static/[A-Za-z0-9_./-]+\.(?:css|js|svg|png))""")


async def test_every_static_url_in_templates_and_scripts_is_served(client) -> None:
    """Templates, scripts and bot replies name their static files by URL: each one is served."""
    urls = set()
    for path in GASDESK.rglob("*"):
        if path.suffix in (".html", ".js", ".py") and "vendor" not in path.parts:
            urls.update(STATIC_URL.findall(path.read_text(encoding="utf-8")))
    assert "/static/conversations/agent.js" in urls  # the agent console's assets, by their package's name
    missing = [url for url in sorted(urls) if (await client.get(url)).status_code != 200]
    assert missing == []
