"""The IVR script as data: the default script is valid, and every kind of mistake is named in Chinese."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gasdesk.errors import InvalidInput
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT, MAX_PROMPT, check_script, script_problems

pytestmark = pytest.mark.no_database


def _edited(**nodes: Any) -> dict[str, Any]:
    body = copy.deepcopy(DEFAULT_SCRIPT)
    for name, node in nodes.items():
        if node is None:
            body["nodes"].pop(name)
        else:
            body["nodes"][name] = node
    return body


def test_the_default_script_is_valid_and_has_the_seed_menu() -> None:
    script = check_script(DEFAULT_SCRIPT)
    main = script.nodes[script.start]
    assert main.kind == "speech_menu" and main.fallback == "main"
    main = script.nodes[main.fallback]
    assert main.kind == "menu"
    targets = {digit: script.nodes[name].kind for digit, name in main.options.items()}
    assert targets == {"1": "emergency", "2": "outage_notices", "3": "identify", "4": "identify", "0": "hours"}


@pytest.mark.parametrize(("body", "expected"), [
    ({**DEFAULT_SCRIPT, "start": "nowhere"}, "起始节点“nowhere”不存在"),
    (_edited(bye={"kind": "hangup", "prompt": "再见"}, sms_guide={"kind": "sms_link", "next": "gone"}),
     "节点“sms_guide”指向不存在的节点“gone”"),
    (_edited(orphan={"kind": "say", "prompt": "没人来", "next": "bye"}), "无法从起始节点到达：orphan"),
    (_edited(bye={"kind": "say", "prompt": "再见", "next": "loop"}, loop={"kind": "say", "prompt": "又来", "next": "bye"}),
     "构成无需来电人按键的循环"),
    (_edited(main={**DEFAULT_SCRIPT["nodes"]["main"], "options": {"12": "leak", "1": "leak", "2": "outages",
                                                                   "3": "id_balance", "4": "id_progress",
                                                                   "0": "office_hours"}}),
     "菜单按键只能是 0-9、* 或 # 中的一个：12"),
    (_edited(main={**DEFAULT_SCRIPT["nodes"]["main"], "timeout_s": 120}), "nodes.main.timeout_s：数值过大"),
    (_edited(main={**DEFAULT_SCRIPT["nodes"]["main"], "retries": 9}), "nodes.main.retries：数值过大"),
    (_edited(bye={"kind": "hangup", "prompt": "长" * (MAX_PROMPT + 1)}), "nodes.bye.prompt：文字过长"),
    (_edited(bye={"kind": "teleport"}), "nodes.bye：未知的节点类型"),
    (_edited(bye={"kind": "hangup", "colour": "red"}), "nodes.bye.colour：不认识的字段"),
    (_edited(Bad={"kind": "hangup"}), "节点名“Bad”无效"),
    ([1, 2], "脚本应为 JSON 对象"),
])
def test_problems_are_named_in_chinese(body: Any, expected: str) -> None:
    problems = script_problems(body)
    assert any(expected in p for p in problems), problems
    with pytest.raises(InvalidInput) as caught:
        check_script(body)
    assert caught.value.code == "invalid_ivr_script"
    assert caught.value.details["problems"] == problems


def test_a_loop_through_a_menu_is_the_callers_choice() -> None:
    # after_info → main → outages → after_info: every turn waits for a key, so it is allowed
    assert script_problems(DEFAULT_SCRIPT) == []
