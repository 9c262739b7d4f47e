"""The audit page speaks Chinese: actions, objects and sources by name, and each change as
"field: before → after" instead of raw JSON with English codes."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest

from gasdesk.audit.display import ACTION_LABELS, action_label, describe_changes
from gasdesk.audit.service import Actor
from gasdesk.auth.service import access_user, do_update_user
from gasdesk.db import commit
from gasdesk.tickets.lifecycle import TRANSITIONS
from tests.factories import wo_ticket

GASDESK = Path(__file__).resolve().parents[2] / "gasdesk"
ADMIN = Actor(None, "审计测试", "cli")


def _visible(page: str) -> str:
    """The text a person reads: no tags, no attributes (codes may stay in title= and option values)."""
    body = page.split("<main>", 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _recorded_actions() -> set[str]:
    """Every audit action code the code base can write: literal arguments of record_audit and the
    importer's rows; ``f"ticket.{action}"`` stands for each ticket transition."""
    codes: set[str] = set()
    for path in GASDESK.rglob("*.py"):
        tree = ast.parse(path.read_text())
        constants = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                     for t in n.targets if isinstance(t, ast.Name)}
        # A table of codes (``SOFTPHONE_AUDIT[action]``): each of its string values.
        tables = {t.id: [v.value for v in n.value.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                  for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict)
                  for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "record_audit":
                arg = node.args[2]
                if isinstance(arg, ast.JoinedStr) and ast.unparse(arg) == "f'ticket.{action}'":
                    codes |= {f"ticket.{a}" for a in TRANSITIONS}
                    continue
                values = [n.value for n in ast.walk(arg) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                values += [constants[n.id] for n in ast.walk(arg) if isinstance(n, ast.Name) and n.id in constants]
                if isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Name):
                    values += tables.get(arg.value.id, [])
                assert values, f"{path}: record_audit with an action the test cannot read: {ast.unparse(arg)}"
                codes |= set(values)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (isinstance(key, ast.Constant) and key.value == "action" and isinstance(value, ast.Constant)
                            and "." in str(value.value)):
                        codes.add(value.value)
    return codes


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_every_audit_action_has_a_chinese_label() -> None:
    codes = _recorded_actions()
    assert {"user.create", "ticket.assign", "config.kb_article", "customer.import_create"} <= codes
    missing = sorted(code for code in codes if code not in ACTION_LABELS)
    assert missing == [], f"add these to gasdesk/audit/display.py ACTION_LABELS: {missing}"
    # An action added without a label still reads as Chinese object type plus code, never blank.
    assert action_label("ticket.escalate") == "工单：ticket.escalate"


def test_changes_read_as_fields_with_before_and_after() -> None:
    changes = {"before": {"role": "agent", "is_active": True}, "after": {"role": "dispatcher", "is_active": False,
                                                                         "password": "(changed)"}}
    assert [(c.field, c.before, c.after) for c in describe_changes(changes, "user")] == [
        ("角色", "坐席", "调度"), ("启用", "是", "否"), ("密码", None, "已修改")]
    created = describe_changes({"before": None, "after": {"type": "repair", "priority": "urgent", "status": "new",
                                                           "crew_id": None, "customer_id": 7}}, "ticket")
    assert [(c.field, c.before, c.after) for c in created] == [
        ("类型", None, "维修"), ("优先级", None, "紧急"), ("状态", None, "新建"), ("外勤人员", None, "（空）"),
        ("客户", None, "#7")]
    kb = describe_changes({"before": {"channels": ["webchat", "agent"], "status": "draft"},
                           "after": {"channels": [], "status": "published"}}, "config")
    assert [(c.field, c.before, c.after) for c in kb] == [("渠道", "网页聊天、坐席", "（空）"), ("状态", "草稿", "已发布")]


async def test_audit_page_shows_labels_and_a_readable_diff(factory, client, session) -> None:
    crew = await factory.user("field_crew", username="auditcrew")
    target = await factory.user("agent", username="auditagent")
    await do_update_user(session, ADMIN, await access_user(session, target.id), role="dispatcher",
                         password="a-brand-new-password")
    await commit(session)
    await wo_ticket(session, "repair", status="assigned", crew_id=crew.id, channel="webchat",
                    description="厨房燃气灶打不着火")
    await factory.customer(name="钱七")
    headers = {**await factory.headers("admin"), "Accept": "text/html"}

    response = await client.get("/admin/audit", headers=headers)
    assert response.status_code == 200
    text = _visible(response.text)
    for label in ["新建用户", "修改用户", "新建工单", "工单派单", "新建客户", "开户", "签发接口令牌", "命令行", "用户 #"]:
        assert label in text, label
    assert re.search(r"角色\s*：\s*坐席\s*→\s*调度", text), text
    assert re.search(r"密码\s*：\s*已修改", text)
    assert re.search(r"状态\s*：\s*新建\s*→\s*已派单", text)
    assert re.search(r"姓名\s*：\s*钱七", text)
    # No raw JSON and no English action codes for people to decode.
    assert '{"' not in text and "&#34;" not in response.text.split("<main>", 1)[1]
    assert re.search(r"\b(user|ticket|customer|account|auth)\.[a-z_]+\b", text) is None, text
    # The code stays available to filter by.
    filtered = await client.get("/admin/audit", headers=headers, params={"action": "user.update"})
    assert "共 1 条" in filtered.text and '<option value="user.update" selected>修改用户</option>' in filtered.text
