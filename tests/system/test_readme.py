"""The README says only what works: its page table matches the routes' access rules, every console is in
it, and channels or features that do not exist yet are only mentioned as planned."""

from __future__ import annotations

import re
from pathlib import Path

from gasdesk.auth.roles import ROLE_LABELS, Role
from gasdesk.web.navigation import CONSOLES, PUBLIC_PAGES, page_roles

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
EVERYONE = {"任何人", "居民（无需登录）"}
NOT_BUILT = re.compile(r"training course|培训课程", re.I)  # issue 16's extensions not built yet


def _page_table() -> dict[str, str]:
    rows = re.findall(r"^\| `(/[^`]*)` \| ([^|]+) \|", README, re.M)
    return {path: roles.strip() for path, roles in rows}


def test_page_table_lists_who_may_open_each_page_as_the_routes_say(app) -> None:
    table = _page_table()
    assert {c.href for c in CONSOLES} | {p.href for p in PUBLIC_PAGES} <= set(table), "a console is missing"
    by_label = {label: role for role, label in ROLE_LABELS.items()}
    rules = page_roles(app)
    for path, roles in table.items():
        expected = frozenset(Role) if roles in EVERYONE else frozenset(by_label[r] for r in roles.split("、"))
        assert rules[path] == expected, f"README says {path} is for {roles}"


def test_channels_and_features_not_built_yet_are_only_mentioned_as_planned() -> None:
    text = README.replace("班长/质检", "班长")  # the supervisor role's name, not a feature
    text = re.sub(r"\n> ?", "", text)  # a blockquote is one paragraph
    sentences = re.split(r"(?<=[.!?;])\s+|(?<=[。！？；])", text)
    claims = [s.strip() for s in sentences if NOT_BUILT.search(s) and not re.search(r"planned|规划", s, re.I)]
    assert claims == []
