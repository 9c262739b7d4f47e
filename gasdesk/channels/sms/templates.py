"""SMS templates: what we send, how it reads, and the checks its variables must pass.

The providers send only templates approved in their console; ours mirror them: ``provider_code`` is the
console's code/id (Aliyun ``SMS_…``, Tencent a number), ``body`` the approved text with ``{name}``
placeholders (for previews, the outbox page and logs of the log provider — the provider renders the real
message), ``variables`` the placeholders in the order Tencent's positional ``{1}``, ``{2}``… follow.

Rules for variable values (``check_template_params``), the strictest of the two providers' where they differ:

- exactly the template's variables: none missing, none extra;
- each a non-empty string of at most 35 characters (Aliyun's cap per variable);
- no line breaks or other control characters (they break the approved layout, and both providers refuse
  them in most variable types);
- no links (``http://``, ``https://``, ``www.``) except in the variables the template declares in
  ``link_variables`` — the providers audit links in variables, so only templates approved with a link take one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gasdesk.channels.sms.providers.base import SmsTemplateRef
from gasdesk.errors import InvalidInput

MAX_VARIABLE_CHARS = 35
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_LINK = re.compile(r"(?i)(https?://|www\.)")


@dataclass(frozen=True)
class SmsTemplate:
    """One message template. ``sign_name`` overrides ``GASDESK_SMS_SIGN_NAME`` for this template."""

    key: str
    provider_code: str
    body: str
    variables: tuple[str, ...]
    sign_name: str | None = None
    link_variables: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        placeholders = _PLACEHOLDER.findall(self.body)
        if sorted(set(placeholders)) != sorted(self.variables) or len(set(self.variables)) != len(self.variables):
            raise ValueError(f"template {self.key}: body placeholders {placeholders} != variables {self.variables}")
        if not set(self.link_variables) <= set(self.variables):
            raise ValueError(f"template {self.key}: link variables must be variables")

    @property
    def ref(self) -> SmsTemplateRef:
        """What a provider needs to send it."""
        return SmsTemplateRef(code=self.provider_code, variables=self.variables, sign_name=self.sign_name)


def check_template_params(template: SmsTemplate, params: dict[str, str]) -> dict[str, str]:
    """The values, checked against the rules above; ``InvalidInput`` (code ``invalid_sms_params``) otherwise.
    Messages name the variable, never quote its value."""
    missing = [name for name in template.variables if name not in params]
    if missing:
        raise InvalidInput(f"短信模板 {template.key} 缺少变量：{'、'.join(missing)}", code="invalid_sms_params")
    extra = sorted(set(params) - set(template.variables))
    if extra:
        raise InvalidInput(f"短信模板 {template.key} 没有变量：{'、'.join(extra)}", code="invalid_sms_params")
    checked = {}
    for name in template.variables:
        value = params[name]
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"短信变量 {name} 不能为空", code="invalid_sms_params")
        if len(value) > MAX_VARIABLE_CHARS:
            raise InvalidInput(f"短信变量 {name} 过长（最多 {MAX_VARIABLE_CHARS} 个字）", code="invalid_sms_params")
        if _CONTROL.search(value):
            raise InvalidInput(f"短信变量 {name} 不能包含换行或控制字符", code="invalid_sms_params")
        if name not in template.link_variables and _LINK.search(value):
            raise InvalidInput(f"短信变量 {name} 不能包含链接", code="invalid_sms_params")
        checked[name] = value
    return checked


def render_preview(template: SmsTemplate, params: dict[str, str], *, sign_name: str | None = None) -> str:
    """The text as the resident will read it (``【sign】`` first when a sign name is given). A variable without
    a value stays as its ``{name}`` placeholder, so a preview of a half-filled form still reads."""
    text = _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), template.body)
    sign = template.sign_name or sign_name
    return f"【{sign}】{text}" if sign else text


# ------------------------------------------------------------------ chat replies by SMS

CHAT_REPLY = "chat_reply"
CHAT_REPLY_LONG = "chat_reply_long"
CHAT_REPLY_PARTS = ("part1", "part2", "part3", "part4")
# The most a reply carries: four variables of at most 35 characters (about three SMS segments with the
# template's fixed text and the sign).
CHAT_REPLY_MAX_CHARS = MAX_VARIABLE_CHARS * len(CHAT_REPLY_PARTS)
CHAT_REPLY_TRUNCATED = "…"
_LINK_WORD = re.compile(r"(?i)(?:https?://|www\.)\S+")
_SPACES = re.compile(r"[\s\x00-\x1f\x7f\u2028\u2029]+")


def sms_chat_text(text: str) -> str:
    """A chat message as one line an SMS variable may carry: line breaks and control characters become one
    space, links become “[链接]” (the providers refuse links in variables not approved as links; the resident
    can open them in the web chat)."""
    return _SPACES.sub(" ", _LINK_WORD.sub("[链接]", text or "")).strip()


def chat_reply_params(text: str) -> tuple[str, dict[str, str]]:
    """The template and variables that carry an agent's or the bot's reply to a resident writing by SMS.

    The providers only send approved templates and cap each variable at 35 characters, so a reply is fitted
    into one of two templates (both approved once with their fixed text):

    - up to 35 characters (after ``sms_chat_text``): ``chat_reply`` with the single variable ``text``;
    - longer: ``chat_reply_long`` with ``part1``…``part4``, the text cut into four consecutive pieces of
      nearly equal length (each 9–35 characters, none empty: the providers refuse empty variables); the
      template body places them side by side, so the resident reads the text unchanged;
    - beyond 140 characters the text is cut to 139 and ends with “…” (one message per reply, so a delivery
      receipt and a retry concern the whole reply; agents are told to keep SMS replies short).
    """
    line = sms_chat_text(text)
    if not line:
        line = "（空白消息）"
    if len(line) <= MAX_VARIABLE_CHARS:
        return CHAT_REPLY, {"text": line}
    if len(line) > CHAT_REPLY_MAX_CHARS:
        line = line[: CHAT_REPLY_MAX_CHARS - len(CHAT_REPLY_TRUNCATED)] + CHAT_REPLY_TRUNCATED
    count = len(CHAT_REPLY_PARTS)
    size, extra = divmod(len(line), count)
    parts: dict[str, str] = {}
    start = 0
    for index, name in enumerate(CHAT_REPLY_PARTS):
        end = start + size + (1 if index < extra else 0)
        parts[name] = line[start:end]
        start = end
    return CHAT_REPLY_LONG, parts


# The built-in catalogue for the seed's notices. The provider codes are placeholders: an admin replaces each
# with the code/id the provider's console gave the approved template (the bodies are the texts to submit).
DEFAULT_TEMPLATES: dict[str, SmsTemplate] = {t.key: t for t in (
    SmsTemplate(
        key="appointment_confirmed", provider_code="SMS_000001",
        body="您预约的{service}已确认，上门时间{time}。如需改约请致电{hotline}。",
        variables=("service", "time", "hotline"), description="预约确认"),
    SmsTemplate(
        key="appointment_reminder", provider_code="SMS_000002",
        body="温馨提醒：您预约的{service}将于{time}上门，请保持电话畅通并确保家中有人。如需改约请致电{hotline}。",
        variables=("service", "time", "hotline"), description="上门前提醒"),
    SmsTemplate(
        key="ticket_progress", provider_code="SMS_000003",
        body="您的工单{ticket_no}当前进度：{status}。如有疑问请致电{hotline}。",
        variables=("ticket_no", "status", "hotline"), description="工单进度"),
    SmsTemplate(
        key="followup_invite", provider_code="SMS_000004",
        body="您的{service}已完成，请回复数字1-5为本次服务评分（5为非常满意，1为非常不满意）。感谢您的支持！",
        variables=("service",), description="回访邀请（回复 1–5）"),
    SmsTemplate(
        key="outage_notice", provider_code="SMS_000005",
        body="停气通知：因{reason}，{area}将于{start}至{end}暂停供气。恢复供气前请关闭燃气阀门，"
             "恢复后如需协助请致电{hotline}。",
        variables=("reason", "area", "start", "end", "hotline"), description="停气通知"),
    SmsTemplate(
        key="heating_notice", provider_code="SMS_000013",
        body="停暖通知：因{reason}，{area}将于{start}至{end}暂停供暖。恢复供暖后如需协助请致电{hotline}。",
        variables=("reason", "area", "start", "end", "hotline"), description="停暖通知"),
    SmsTemplate(
        key="outage_restored", provider_code="SMS_000014",
        body="恢复通知：{area}已于{time}恢复{service}，感谢您的理解。如有异常请致电{hotline}。",
        variables=("area", "time", "service", "hotline"), description="恢复供气/供暖通知"),
    SmsTemplate(
        key="guidance", provider_code="SMS_000006",
        body="办理{service}所需材料清单请查看：{link}。如有疑问请致电{hotline}。",
        variables=("service", "link", "hotline"), link_variables=("link",), description="办事指引（材料清单链接）"),
    # Chat on SMS: see ``chat_reply_params`` for how a reply is fitted into these.
    SmsTemplate(
        key=CHAT_REPLY, provider_code="SMS_000007", body="客服回复：{text}（直接回复本短信可继续咨询）",
        variables=("text",), description="会话回复（短）"),
    SmsTemplate(
        key=CHAT_REPLY_LONG, provider_code="SMS_000008",
        body="客服回复：" + "".join(f"{{{name}}}" for name in CHAT_REPLY_PARTS) + "（直接回复本短信可继续咨询）",
        variables=CHAT_REPLY_PARTS, description="会话回复（长，分段填入）"),
    SmsTemplate(
        key="chat_reply_waiting", provider_code="SMS_000009",
        body="您在微信公众号的咨询已有回复，请进入公众号查看。", variables=(),
        description="微信回复无法送达时的短信提醒"),
    SmsTemplate(
        key="opt_out_confirmed", provider_code="SMS_000010",
        body="您已退订通知短信，此后不再收到预约、工单等通知（紧急停气通知除外）。回复“恢复订阅”可重新接收。",
        variables=(), description="退订确认"),
    SmsTemplate(
        key="opt_in_confirmed", provider_code="SMS_000011",
        body="您已恢复接收通知短信。回复TD可退订。", variables=(), description="恢复订阅确认"),
    # To staff on an emergency's escalation path (gasdesk/emergency); never subject to opt-out or quiet hours.
    SmsTemplate(
        key="emergency_alert", provider_code="SMS_000012",
        body="紧急通知：{level}紧急事件{event}，{title}。请立即处置，回复QR确认接手。",
        variables=("level", "event", "title"), description="紧急事件升级通知（值班人员）"),
)}


def get_template(key: str) -> SmsTemplate:
    """A built-in template by key; ``InvalidInput`` for an unknown key."""
    try:
        return DEFAULT_TEMPLATES[key]
    except KeyError:
        raise InvalidInput(f"没有短信模板 {key}", code="unknown_sms_template") from None


# ------------------------------------------------------------------ the template actually sent


@dataclass(frozen=True)
class SmsNotice:
    """A template as it goes out: the built-in one, or an admin's ``NoticeTemplate`` row overriding it.

    ``variables`` are our parameter names; ``provider_variables`` the names the provider's approved template
    uses for them, in the provider's order (Tencent's ``{1}``, ``{2}``… are positional, so any names in the
    right order do; Aliyun's ``TemplateParam`` is keyed by these names)."""

    key: str
    provider_code: str
    body: str
    variables: tuple[str, ...]
    provider_variables: tuple[str, ...]
    template: SmsTemplate
    enabled: bool = True
    configured: bool = False  # an admin's row, not the built-in placeholder code

    @property
    def ref(self) -> SmsTemplateRef:
        return SmsTemplateRef(code=self.provider_code, variables=self.provider_variables,
                              sign_name=self.template.sign_name)

    def provider_params(self, params: dict[str, str]) -> dict[str, str]:
        """Our checked values under the provider's names."""
        return {provider: params[ours] for provider, ours in zip(self.provider_variables, self.variables,
                                                                  strict=True)}

    def preview(self, params: dict[str, str], *, sign_name: str | None = None) -> str:
        text = _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), self.body)
        sign = self.template.sign_name or sign_name
        return f"【{sign}】{text}" if sign else text


def resolve_notice(key: str, *, provider_template_id: str | None = None, fields: dict[str, str] | None = None,
                   body: str | None = None, enabled: bool = True) -> SmsNotice:
    """The template ``key`` as sent: the built-in one, with an admin's row (its provider template id, its
    ``fields`` = provider variable → our parameter, in the provider's order, and its body) over it. Empty
    ``fields`` keep the built-in variable names; an empty body keeps the built-in text."""
    template = get_template(key)
    if provider_template_id is None:
        return SmsNotice(key=key, provider_code=template.provider_code, body=template.body,
                         variables=template.variables, provider_variables=template.variables, template=template)
    mapping = dict(fields or {}) or {name: name for name in template.variables}
    return SmsNotice(key=key, provider_code=provider_template_id, body=body or template.body,
                     variables=tuple(mapping.values()), provider_variables=tuple(mapping),
                     template=template, enabled=enabled, configured=True)
