"""The hotline's IVR as data: a script of named nodes, validated before it can be stored or run.

A script is JSON (``{"start": "main", "nodes": {...}, "prompts": {...}}``) that admins edit; ``check_script``
turns it into a :class:`Script` or raises ``InvalidInput`` listing every problem in Chinese. Checks beyond
the field types: the start node and every referenced node exist, every node is reachable, menu keys are
single DTMF digits, timeouts/retries/text lengths are bounded, and no loop runs without the caller choosing
(a loop of ``say`` nodes would keep a line busy forever).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gasdesk.bot.nlu.intents import GAS_LEAK, INTENTS
from gasdesk.errors import InvalidInput

NODE_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DTMF_KEYS = "0123456789*#"
MAX_PROMPT = 600  # characters: about a minute of speech
MAX_NODES = 100

Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT)]
OptionalPrompt = Annotated[str, Field(max_length=MAX_PROMPT)]
NodeRef = Annotated[str, Field(min_length=1, max_length=40)]
Timeout = Annotated[float, Field(ge=1, le=30)]
Retries = Annotated[int, Field(ge=0, le=5)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def targets(self) -> list[str]:
        """The nodes this one can go to."""
        return [v for k, v in self.__dict__.items() if k in TARGET_FIELDS and isinstance(v, str) and v]

    @property
    def waits_for_caller(self) -> bool:
        """Whether leaving this node takes the caller's input (a loop through it is the caller's choice)."""
        return False


TARGET_FIELDS = frozenset({"next", "on_fail", "open", "closed", "ok", "unidentified", "offer_node", "unavailable"})


class MenuNode(_Node):
    kind: Literal["menu"]
    prompt: Prompt
    options: dict[str, NodeRef] = Field(min_length=1, max_length=len(DTMF_KEYS))
    timeout_s: Timeout = 6
    retries: Retries = 2
    invalid_prompt: OptionalPrompt = "您的输入有误。"
    on_fail: NodeRef

    @field_validator("options")
    @classmethod
    def _digits(cls, options: dict[str, str]) -> dict[str, str]:
        bad = [key for key in options if len(key) != 1 or key not in DTMF_KEYS]
        if bad:
            raise ValueError(f"菜单按键只能是 0-9、* 或 # 中的一个：{'、'.join(bad)}")
        return options

    def targets(self) -> list[str]:
        return [*self.options.values(), self.on_fail]

    @property
    def waits_for_caller(self) -> bool:
        return True


class SayNode(_Node):
    kind: Literal["say"]
    prompt: Prompt
    next: NodeRef


class HoursNode(_Node):
    """Open or closed now: the skill group's working hours (``group``, a skill-group code), and, when
    ``branch_id`` names a service branch, that branch's hours with its holiday schedule."""

    kind: Literal["hours"]
    group: Annotated[str, Field(max_length=40)] = ""
    branch_id: Annotated[int, Field(ge=1)] | None = None
    open: NodeRef
    closed: NodeRef


class EmergencyNode(_Node):
    """Gas leak: the emergency ticket, the alert to everyone on duty and the hand-off at emergency priority
    happen on entering; then the safety instructions play while the call waits first in the queue."""

    kind: Literal["emergency"]
    prompt: Prompt


class OutageNoticesNode(_Node):
    kind: Literal["outage_notices"]
    intro: OptionalPrompt = "您所在区域近期的停气停暖通知如下："
    none_prompt: Prompt = "您所在区域目前没有停气停暖计划。"
    unknown_area_prompt: Prompt = "暂未查到您的地址。近期全市停气停暖通知如下："
    next: NodeRef


class IdentifyNode(_Node):
    """户号 by DTMF (ended by #), then the last four digits of the registered phone: the same check as the
    web chat and the bot (attempt limits included). Passes at once when the call already has its customer
    (the calling number is on file)."""

    kind: Literal["identify"]
    account_prompt: Prompt = "请输入您的户号，以井号键结束。"
    last4_prompt: Prompt = "请输入户主预留手机号的后四位。"
    failed_prompt: Prompt = "户号或手机号后四位不匹配。"
    timeout_s: Timeout = 10
    retries: Retries = 2
    ok: NodeRef
    on_fail: NodeRef

    @property
    def waits_for_caller(self) -> bool:
        return True


class BalanceNode(_Node):
    kind: Literal["balance"]
    next: NodeRef
    unidentified: NodeRef


class ProgressNode(_Node):
    kind: Literal["progress"]
    none_prompt: Prompt = "没有查到您近期的工单或预约。"
    next: NodeRef
    unidentified: NodeRef


class SmsLinkNode(_Node):
    """Queue an SMS with the web chat / WeChat guide link to the calling mobile number (高峰错峰提示)."""

    kind: Literal["sms_link"]
    sent_prompt: Prompt = "短信已发送到您的手机，请按短信中的链接自助办理。"
    failed_prompt: Prompt = "抱歉，无法向您的号码发送短信。"
    next: NodeRef


class QueueNode(_Node):
    """To a person: the ACD queue of skill group ``group`` (empty: the hand-off rules decide, as for a chat's
    转人工). When the expected wait is at least ``hint_over_s`` (unset: above the peak threshold,
    ``peak_wait_threshold_s``), the caller hears it and may press ``offer_digit`` to go to ``offer_node`` (an
    SMS link) instead of waiting, or ``callback_digit`` to book a callback to the calling mobile: the call's
    conversation keeps its place in the queue, the caller hears ``callback_prompt`` and the call ends."""

    kind: Literal["queue"]
    group: Annotated[str, Field(max_length=40)] = ""
    prompt: OptionalPrompt = "正在为您转接人工客服，请稍候。"
    hint_over_s: Annotated[int | None, Field(ge=0, le=3600)] = None
    hint_prompt: OptionalPrompt = ("当前排队人数较多，您前面还有{waiting}位，预计等待约{minutes}分钟。"
                                   "按1 收短信链接自助办理，不用等待；按2 预约回拨，保留您的排队位置；继续等待请不要挂机。")
    offer_digit: Literal["", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"] = "1"
    callback_digit: Literal["", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"] = "2"
    callback_prompt: OptionalPrompt = ("已为您预约回拨，排队位置已为您保留，您前面还有{ahead}位。"
                                       "轮到您时客服将回拨您的来电号码，请保持电话畅通。再见。")
    offer_node: Annotated[str, Field(max_length=40)] = ""
    hint_timeout_s: Timeout = 5
    unavailable: NodeRef  # nobody can take the call (no agent online, queue full, after hours)


class SpeechMenuNode(_Node):
    """Ask the caller to say what they need; the recognised text goes through the bot's understanding and
    ``intents`` maps its intent to a node. Everything else goes to ``fallback`` (a DTMF menu): speech
    recognition off (then the prompt is not even played), nothing said, a key pressed instead (already
    buffered for the menu), the recogniser failing, an intent not in ``intents``, or a confidence below
    ``min_confidence`` (a possible gas leak always counts, whatever the confidence)."""

    kind: Literal["speech_menu"]
    prompt: Prompt = "请简单说出您要办理的业务，例如：燃气泄漏、停气、查余额；也可以直接按键。"
    intents: dict[str, NodeRef] = Field(min_length=1, max_length=len(INTENTS))
    fallback: NodeRef
    max_s: Timeout = 8
    silence_s: Annotated[float, Field(ge=0.3, le=3)] = 0.8
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.5

    @field_validator("intents")
    @classmethod
    def _known_intents(cls, intents: dict[str, str]) -> dict[str, str]:
        unknown = [name for name in intents if name not in INTENTS]
        if unknown:
            raise ValueError(f"未知的意图：{'、'.join(unknown)}")
        if GAS_LEAK not in intents:
            raise ValueError("语音菜单必须为燃气泄漏（gas_leak）指定去向")
        return intents

    def targets(self) -> list[str]:
        return [*self.intents.values(), self.fallback]


class HangupNode(_Node):
    kind: Literal["hangup"]
    prompt: OptionalPrompt = "感谢您的来电，再见。"


Node = Annotated[MenuNode | SayNode | HoursNode | EmergencyNode | OutageNoticesNode | IdentifyNode | BalanceNode
                 | ProgressNode | SmsLinkNode | QueueNode | HangupNode | SpeechMenuNode, Field(discriminator="kind")]


class Prompts(BaseModel):
    """Prompts outside any node: waiting in the queue, overflow, and hand-off to an agent."""

    model_config = ConfigDict(extra="forbid")

    wait: Prompt = "坐席正忙，请您耐心等待，我们将尽快为您接通。"
    connecting: Prompt = "正在为您接通客服人员。"
    queue_timeout: Prompt = "抱歉，当前等待时间过长。我们已记录您的来电，稍后会尽快与您联系。"
    overflow: Prompt = "您好，当前线路繁忙，请稍后再拨。燃气泄漏等紧急情况请拨打 119。"


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: NodeRef
    nodes: dict[str, Node] = Field(min_length=1, max_length=MAX_NODES)
    prompts: Prompts = Prompts()


def _graph_problems(script: Script) -> list[str]:
    problems = [f"节点名“{name}”无效：须以小写字母开头，只含小写字母、数字、下划线，最长 40 个字符"
                for name in script.nodes if not NODE_ID_RE.match(name)]
    if script.start not in script.nodes:
        problems.append(f"起始节点“{script.start}”不存在")
    for name, node in script.nodes.items():
        for target in node.targets():
            if target not in script.nodes:
                problems.append(f"节点“{name}”指向不存在的节点“{target}”")
        if isinstance(node, QueueNode) and node.offer_node and not node.offer_digit:
            problems.append(f"节点“{name}”设置了短信分流节点，但没有设置按键")
        if isinstance(node, QueueNode) and node.offer_node and node.callback_digit == node.offer_digit:
            problems.append(f"节点“{name}”的预约回拨按键与短信分流按键相同")
        if isinstance(node, SpeechMenuNode) and isinstance(script.nodes.get(node.fallback), SpeechMenuNode):
            # With recognition off a speech menu passes straight to its fallback: that must take keys.
            problems.append(f"语音菜单“{name}”的备用节点不能是另一个语音菜单")
    if problems:
        return problems
    seen, stack = {script.start}, [script.start]
    while stack:
        for target in script.nodes[stack.pop()].targets():
            if target not in seen:
                seen.add(target)
                stack.append(target)
    unreachable = [name for name in script.nodes if name not in seen]
    if unreachable:
        problems.append(f"以下节点无法从起始节点到达：{'、'.join(unreachable)}")
    loop = _loop_without_choice(script)
    if loop:
        problems.append(f"节点 {' → '.join(loop)} 构成无需来电人按键的循环")
    return problems


def _loop_without_choice(script: Script) -> list[str] | None:
    """A cycle through nodes none of which waits for the caller, as [a, b, …, a], or None."""
    auto = {name: [t for t in node.targets() if not script.nodes[t].waits_for_caller]
            for name, node in script.nodes.items() if not node.waits_for_caller}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in auto.get(name, []):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(auto):
        if name not in state and (found := visit(name)):
            return found
    return None


_PYDANTIC_MESSAGES = {
    "missing": "缺少必填项", "extra_forbidden": "不认识的字段", "string_too_long": "文字过长",
    "string_too_short": "不能为空", "greater_than_equal": "数值过小", "less_than_equal": "数值过大",
    "union_tag_invalid": "未知的节点类型", "union_tag_not_found": "缺少节点类型 kind", "literal_error": "取值无效",
    "int_parsing": "应为整数", "float_parsing": "应为数字", "string_type": "应为文字", "dict_type": "应为对象",
    "too_short": "至少需要一项", "too_long": "项数过多", "model_type": "应为对象", "int_type": "应为整数",
    "float_type": "应为数字",
}


def _chinese(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"] if part not in NODE_KINDS) or "脚本"
    if error["type"] == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        message = _PYDANTIC_MESSAGES.get(error["type"], error["msg"])
    return f"{where}：{message}"


NODE_KINDS = ("menu", "say", "hours", "emergency", "outage_notices", "identify", "balance", "progress", "sms_link",
              "queue", "hangup", "speech_menu")


def script_problems(body: Any) -> list[str]:
    """Every problem of a script body, in Chinese; [] when it can run."""
    if not isinstance(body, dict):
        return ["脚本应为 JSON 对象"]
    try:
        script = Script.model_validate(body)
    except ValidationError as exc:
        return [_chinese(error) for error in exc.errors()]
    return _graph_problems(script)


def check_script(body: Any) -> Script:
    """The script, validated; ``InvalidInput`` (code ``invalid_ivr_script``) lists every problem."""
    problems = script_problems(body)
    if problems:
        raise InvalidInput("语音导航脚本有误：" + "；".join(problems[:20]), code="invalid_ivr_script",
                           details={"problems": problems[:50]})
    return Script.model_validate(body)


# ---------------------------------------------------------------- prompt keys (recorded prompts)

# The fixed prompts of each node kind, by field: what an admin may replace with a recording. Prompts built at
# call time (the queue's hint with the wait, outage notices, balances) are always synthesised.
PROMPT_FIELDS: dict[str, tuple[str, ...]] = {
    "menu": ("prompt", "invalid_prompt"), "say": ("prompt",), "emergency": ("prompt",),
    "outage_notices": ("none_prompt",), "identify": ("account_prompt", "last4_prompt", "failed_prompt"),
    "progress": ("none_prompt",), "sms_link": ("sent_prompt", "failed_prompt"), "queue": ("prompt",),
    "hangup": ("prompt",), "speech_menu": ("prompt",),
}
FIELD_LABELS = {
    "prompt": "提示语", "invalid_prompt": "输入有误", "none_prompt": "无结果", "account_prompt": "请输入户号",
    "last4_prompt": "请输入手机后四位", "failed_prompt": "失败", "sent_prompt": "已发送",
    "wait": "排队等待", "connecting": "正在接通", "queue_timeout": "等待超时", "overflow": "线路繁忙",
}
SCRIPT_PROMPTS = "prompts"  # the key prefix of the prompts outside any node (Script.prompts)


def prompt_key(node_id: str, field: str) -> str:
    """The stable key of a node's fixed prompt (``main.prompt``; ``prompts.wait`` for the script-wide ones):
    a recording uploaded under it plays instead of the synthesised text, as long as the node keeps its name."""
    return f"{node_id}.{field}"


@dataclass(frozen=True)
class PromptSlot:
    """One fixed prompt of a script: its key, the text the TTS reads when no recording is uploaded, and where
    it is used (``node`` is None for the script-wide prompts)."""

    key: str
    text: str
    node: str | None
    field: str
    label: str


def prompt_slots(script: Script) -> list[PromptSlot]:
    """Every fixed, non-empty prompt of the script in node order, then the script-wide ones."""
    slots = []
    for node_id, node in script.nodes.items():
        for name in PROMPT_FIELDS.get(node.kind, ()):
            text = getattr(node, name)
            if text:
                slots.append(PromptSlot(prompt_key(node_id, name), text, node_id, name, FIELD_LABELS[name]))
    for name, text in script.prompts.model_dump().items():
        slots.append(PromptSlot(prompt_key(SCRIPT_PROMPTS, name), text, None, name, FIELD_LABELS[name]))
    return slots


SAFETY_PROMPT = (
    "燃气泄漏紧急提示：请不要开关任何电器，不要使用明火，不要在室内打电话；立即打开门窗通风，关闭燃气表前阀门，"
    "迅速离开到室外安全地点。我们已生成紧急抢修工单并通知值班人员，正在为您优先转接人工，请不要挂机。"
)

# One script serves both set-ups: it starts at the speech menu, which the engine passes straight to its
# fallback ("main", the DTMF menu) without a word or a record when no speech recogniser is configured.
DEFAULT_SCRIPT: dict[str, Any] = {
    "start": "speech",
    "nodes": {
        "speech": {
            "kind": "speech_menu",
            "prompt": "您好，欢迎致电燃气服务热线。请简单说出您要办理的业务，例如：燃气泄漏、停气、查余额；"
                      "也可以直接按键。",
            "intents": {"gas_leak": "leak", "outage_query": "outages", "no_gas": "outages",
                        "balance_query": "id_balance", "account_number_query": "id_balance",
                        "appointment_progress": "id_progress", "human_agent": "office_hours",
                        "complaint": "office_hours"},
            "fallback": "main",
        },
        "main": {
            "kind": "menu",
            "prompt": "您好，欢迎致电燃气服务热线。燃气泄漏请按1；停气停暖通知请按2；查询余额或户号请按3；"
                      "查询预约和维修进度请按4；人工服务请按0。",
            "options": {"1": "leak", "2": "outages", "3": "id_balance", "4": "id_progress", "0": "office_hours"},
            "timeout_s": 6, "retries": 2, "invalid_prompt": "您的输入有误。", "on_fail": "office_hours",
        },
        "leak": {"kind": "emergency", "prompt": SAFETY_PROMPT},
        "outages": {"kind": "outage_notices", "next": "after_info"},
        "id_balance": {"kind": "identify", "ok": "balance", "on_fail": "office_hours"},
        "balance": {"kind": "balance", "next": "after_info", "unidentified": "id_balance"},
        "id_progress": {"kind": "identify", "ok": "progress", "on_fail": "office_hours"},
        "progress": {"kind": "progress", "next": "after_info", "unidentified": "id_progress"},
        "after_info": {
            "kind": "menu", "prompt": "返回主菜单请按9，人工服务请按0，结束通话请直接挂机。",
            "options": {"9": "main", "0": "office_hours"}, "timeout_s": 5, "retries": 1, "on_fail": "bye",
        },
        "office_hours": {"kind": "hours", "group": "gas", "open": "to_agent", "closed": "closed"},
        "to_agent": {"kind": "queue", "offer_node": "sms_guide", "unavailable": "busy"},
        "sms_guide": {"kind": "sms_link", "next": "bye"},
        "closed": {"kind": "say", "prompt": "现在是非工作时间，您可以通过微信公众号或网页在线客服留言，我们会尽快处理。",
                   "next": "sms_offer"},
        "busy": {"kind": "say", "prompt": "抱歉，目前人工客服全忙。", "next": "sms_offer"},
        "sms_offer": {
            "kind": "menu", "prompt": "按1 收短信链接自助办理；结束通话请直接挂机。",
            "options": {"1": "sms_guide"}, "timeout_s": 5, "retries": 0, "on_fail": "bye",
        },
        "bye": {"kind": "hangup", "prompt": "感谢您的来电，再见。"},
    },
}
