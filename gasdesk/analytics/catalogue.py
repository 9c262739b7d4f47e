"""The figures the reports show, each computed from the buckets of one or two fact kinds.

``how``: ``count`` (how many facts of ``kind``), ``total`` (the sum of their values), ``mean`` (sum / count of
``kind``) or ``ratio`` (count of ``kind`` / count of ``of``, where ``of`` may name several kinds to add up;
as a percentage when ``unit`` is "%").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

How = Literal["count", "total", "mean", "ratio"]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    how: How
    kind: str
    of: tuple[str, ...] = ()
    better: Literal["higher", "lower", "neither"] = "neither"

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every fact kind the figure reads."""
        return (self.kind, *self.of)


def _m(name: str, label: str, unit: str, how: How, kind: str, of: tuple[str, ...] = (),
       better: Literal["higher", "lower", "neither"] = "neither") -> Metric:
    return Metric(name, label, unit, how, kind, of, better)


CATALOGUE: dict[str, Metric] = {m.name: m for m in [
    _m("contacts", "进线量", "次", "count", "contact.started"),
    _m("bot_turns", "机器人应答轮次", "次", "count", "bot.turn"),
    _m("bot_answered", "机器人答复", "次", "count", "bot.answered"),
    _m("ai_handled", "AI 独立承接", "次", "count", "conversation.bot_only", better="higher"),
    _m("ai_rate", "AI 承接率", "%", "ratio", "conversation.bot_only", ("conversation.closed",), "higher"),
    _m("handoffs", "转人工", "次", "count", "conversation.handoff"),
    _m("transfer_rate", "转人工率", "%", "ratio", "conversation.handoff", ("contact.started",), "lower"),
    _m("kb_hits", "知识库命中", "次", "count", "kb.hit", better="higher"),
    _m("kb_misses", "知识库未命中", "次", "count", "kb.miss", better="lower"),
    _m("kb_hit_rate", "知识库命中率", "%", "ratio", "kb.hit", ("kb.hit", "kb.miss"), "higher"),
    _m("kb_answer_rate", "知识库接待率", "%", "ratio", "kb.hit", ("bot.turn",), "higher"),
    _m("kb_helpful", "有帮助", "次", "count", "kb.helpful", better="higher"),
    _m("kb_not_helpful", "没帮助", "次", "count", "kb.not_helpful", better="lower"),
    _m("queued", "排队", "次", "count", "conversation.queued"),
    _m("accepted", "坐席接线", "次", "count", "conversation.accepted", better="higher"),
    _m("avg_wait_s", "平均排队时长", "秒", "mean", "conversation.accepted", better="lower"),
    _m("handled", "人工处理量", "次", "count", "conversation.handled"),
    _m("avg_handle_s", "平均处理时长", "秒", "mean", "conversation.handled", better="lower"),
    _m("handle_time_s", "处理总时长", "秒", "total", "conversation.handled"),
    _m("abandoned", "排队放弃", "次", "count", "conversation.abandoned", better="lower"),
    _m("abandon_rate", "排队放弃率", "%", "ratio", "conversation.abandoned", ("conversation.queued",), "lower"),
    _m("csat", "满意度评分", "分", "mean", "conversation.rated", better="higher"),
    _m("ratings", "评价数", "次", "count", "conversation.rated"),
    _m("tickets_created", "新建工单", "件", "count", "ticket.created"),
    _m("tickets_dispatched", "派单", "件", "count", "ticket.dispatched"),
    _m("tickets_resolved", "办结工单", "件", "count", "ticket.resolved", better="higher"),
    _m("tickets_closed", "关闭工单", "件", "count", "ticket.closed"),
    _m("avg_resolve_s", "平均办结时长", "秒", "mean", "ticket.resolved", better="lower"),
    _m("sla_compliance", "SLA 达标率", "%", "ratio", "ticket.resolved_in_sla", ("ticket.resolved",), "higher"),
    _m("sla_at_risk", "SLA 预警", "件", "count", "sla.at_risk", better="lower"),
    _m("sla_breached", "SLA 超时", "件", "count", "sla.breached", better="lower"),
    _m("followups", "回访完成", "次", "count", "followup.answered"),
    _m("followup_score", "回访满意度", "分", "mean", "followup.answered", better="higher"),
    _m("followup_solved_rate", "回访解决率", "%", "ratio", "followup.solved", ("followup.answered",), "higher"),
    _m("calls_answered", "热线接通", "通", "count", "call.answered", better="higher"),
    _m("calls_abandoned", "热线放弃", "通", "count", "call.abandoned", better="lower"),
    _m("call_abandon_rate", "热线放弃率", "%", "ratio", "call.abandoned", ("call.answered", "call.abandoned"),
       "lower"),
    _m("avg_talk_s", "平均通话时长", "秒", "mean", "call.answered"),
    _m("qa_scored", "质检量", "次", "count", "qa.scored"),
    _m("qa_score", "质检平均分", "分", "mean", "qa.scored", better="higher"),
]}


def metric(name: str) -> Metric:
    """The catalogue's figure ``name``, or a plain count of the fact kind ``name`` (e.g. ``kb.miss``)."""
    found = CATALOGUE.get(name)
    if found is not None:
        return found
    return Metric(name, name, "次", "count", name)


def figure(m: Metric, sums: dict[str, tuple[int, float]]) -> float | None:
    """The figure from ``sums`` (kind → (count, total)); None when it has no base (a ratio of nothing)."""
    count, total = sums.get(m.kind, (0, 0.0))
    if m.how == "count":
        return float(count)
    if m.how == "total":
        return float(total)
    if m.how == "mean":
        return total / count if count else None
    base = sum(sums.get(kind, (0, 0.0))[0] for kind in m.of)
    if not base:
        return None
    share = count / base
    return share * 100 if m.unit == "%" else share
