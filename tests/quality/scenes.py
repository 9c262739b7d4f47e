"""Scenes for quality inspection: closed conversations with hand-written transcripts at exact times, and a
team with its own scoring sheet. Importable (tests/quality's ``desk`` fixture and the browser test of the QA
pages both build their scenes here)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk import clock
from gasdesk.auth.models import User
from gasdesk.conversations.models import Conversation, Message
from gasdesk.db import commit
from gasdesk.quality.service import do_save_sheet
from gasdesk.tickets.models import Team, TeamMember
from tests.factories import staff_user, wo_actor

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Beijing
_visitors = itertools.count(1)

# The sheet the hand-scored transcripts are scored with (weights sum to 100).
TEST_SHEET: dict[str, Any] = {
    "name": "热线一组评分表",
    "rules": [
        {"id": "greeting", "kind": "greeting", "label": "开场问候", "weight": 10,
         "params": {"phrases": ["您好", "很高兴为您服务"], "first_replies": 1}},
        {"id": "closing", "kind": "closing", "label": "结束语", "weight": 10,
         "params": {"phrases": ["感谢", "再见", "还有其他问题吗"], "last_replies": 2}},
        {"id": "forbidden", "kind": "forbidden_words", "label": "服务禁语", "weight": 15,
         "params": {"words": [{"word": "不知道", "penalty": 10}, {"word": "不归我们管", "penalty": 20},
                              {"word": "你自己看", "penalty": 10}]}},
        {"id": "leak_safety", "kind": "disclosure", "label": "燃气泄漏安全提示", "weight": 15,
         "params": {"intents": ["gas_leak"], "phrases": ["开窗通风", "关闭阀门", "不要开关电器"],
                    "script": "gas_leak_safety"}},
        {"id": "first_response", "kind": "first_response", "label": "首次响应", "weight": 10, "params": {"max_s": 30}},
        {"id": "avg_response", "kind": "avg_response", "label": "平均响应", "weight": 10, "params": {"max_s": 60}},
        {"id": "silence", "kind": "long_silence", "label": "长时间未回复", "weight": 6, "params": {"max_s": 120}},
        {"id": "hold", "kind": "long_hold", "label": "通话保持", "weight": 4, "params": {"max_s": 60}},
        {"id": "transfer", "kind": "transfer_explained", "label": "转接说明", "weight": 5,
         "params": {"phrases": ["转接", "同事"]}},
        {"id": "unresolved", "kind": "closed_unresolved", "label": "未解决即结束", "weight": 5,
         "params": {"ticket_types": ["complaint", "consultation"]}},
        {"id": "negative", "kind": "negative_unanswered", "label": "负面情绪安抚", "weight": 10,
         "params": {"words": ["投诉", "太差", "不满意", "生气", "垃圾"], "acknowledge": ["抱歉", "对不起", "理解"]}},
    ],
    "sampling": {"complaint_intents": ["complaint"], "below": 80, "rate_percent": 5},
}


@dataclass
class Desk:
    session: AsyncSession
    team: Team
    agent: User

    async def transcript(self, lines: list[tuple[int, str, str]], *, accept_s: int | None = 0,
                         channel: str = "webchat", intent: str | None = None, agent: User | None = None,
                         close_after_s: int = 5) -> Conversation:
        """A closed conversation: ``lines`` are (seconds after T0, sender, text); a sender ``system:<event>``
        is a system message with that event. The agent accepted at ``accept_s``."""
        agent = agent or self.agent
        last = max(s for s, _, _ in lines) if lines else 0
        conversation = Conversation(
            channel=channel, state="closed", visitor_id=f"v_qa{next(_visitors)}", agent_id=agent.id,
            created_at=T0 - timedelta(seconds=30),
            accepted_at=T0 + timedelta(seconds=accept_s) if accept_s is not None else None,
            closed_at=T0 + timedelta(seconds=last + close_after_s), closed_by="agent", last_seq=len(lines),
            handoff_summary={"intent": intent, "confidence": 0.9, "slots": {}} if intent else None)
        self.session.add(conversation)
        await self.session.flush()
        for seq, (offset, sender, text) in enumerate(lines, start=1):
            event = sender.partition(":")[2] or None
            sender = sender.partition(":")[0]
            self.session.add(Message(
                conversation_id=conversation.id, seq=seq, sender_type=sender, text=text,
                sender_user_id=agent.id if sender == "agent" else None,
                sender_name=agent.display_name if sender == "agent" else None,
                payload={"event": event} if event else None, created_at=T0 + timedelta(seconds=offset)))
        await commit(self.session)
        return conversation


async def open_desk(session: AsyncSession) -> Desk:
    """An agent in a team whose active sheet is TEST_SHEET; the clock at T0 (committed)."""
    clock.set_now(T0)
    agent = await staff_user(session, "agent", display_name="小王")
    team = Team(code="hotline1", name="热线一组", kind="dispatch", districts=[])
    session.add(team)
    await session.flush()
    session.add(TeamMember(team_id=team.id, user_id=agent.id))
    await do_save_sheet(session, wo_actor(), team_id=team.id, body=TEST_SHEET, note="测试", activate=True)
    await commit(session)
    return Desk(session, team, agent)
