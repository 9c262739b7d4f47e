"""QA scores against hand-scored transcripts.

Each transcript below was scored by hand against TEST_SHEET (tests/quality/scenes.py): per rule
pass (its weight) / fail (0; forbidden words: weight minus the penalties, floored at 0) / na (left out), the
total = 100 × earned ÷ the weights that apply, one decimal. The expected tables are written out, not computed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from gasdesk.bot.dialogue.emergency import SAFETY_INSTRUCTIONS
from gasdesk.db import commit, transaction
from gasdesk.quality import service as quality_service
from gasdesk.quality.models import QualityScore
from gasdesk.quality.rules import DEFAULT_SHEET, Facts, SheetBody, Turn, loosely_contains, score_contact
from gasdesk.quality.service import do_score_conversation, score_closed_contacts
from gasdesk.telephony.models import Call, CallEvent
from tests.factories import bot_conversation, wo_ticket
from tests.quality.scenes import T0, TEST_SHEET


def _table(row: QualityScore) -> dict[str, tuple[str, float]]:
    return {r["rule_id"]: (r["status"], r["earned"]) for r in row.results}


def _evidence(row: QualityScore, rule_id: str) -> list[dict]:
    return next(r["evidence"] for r in row.results if r["rule_id"] == rule_id)


async def _score(desk, conversation) -> QualityScore:
    row = await do_score_conversation(desk.session, conversation)
    assert row is not None
    await commit(desk.session)
    return row


async def test_good_service_scores_full_marks(desk) -> None:
    conversation = await desk.transcript([
        (0, "resident", "我想查一下上个月的燃气费"),
        (2, "bot", "正在为您转接人工客服，请稍候"),
        (10, "system:agent_joined", "客服 小王 为您服务，请问有什么可以帮您？"),
        (20, "agent", "您好，很高兴为您服务。请提供一下您的户号。"),
        (40, "resident", "2103345678"),
        (70, "agent", "查到了，您上月燃气费 128.5 元，已按时扣款。"),
        (90, "resident", "好的，明白了"),
        (110, "agent", "请问还有其他问题吗？"),
        (120, "resident", "没有了"),
        (130, "agent", "感谢您的咨询，再见！"),
    ], accept_s=10, intent="bill_query")
    row = await _score(desk, conversation)
    assert _table(row) == {
        "greeting": ("pass", 10), "closing": ("pass", 10), "forbidden": ("pass", 15), "leak_safety": ("na", 0),
        "first_response": ("pass", 10), "avg_response": ("pass", 10), "silence": ("pass", 6), "hold": ("na", 0),
        "transfer": ("na", 0), "unresolved": ("pass", 5), "negative": ("na", 0)}
    assert row.score == row.auto_score == 100.0  # 66 of 66
    assert _evidence(row, "greeting") == [{"seq": 4, "phrase": "您好"}]
    assert _evidence(row, "closing") == [{"seq": 8, "phrase": "还有其他问题吗"}]
    assert _evidence(row, "first_response") == [{"seq": 4, "seconds": 10}]
    assert _evidence(row, "avg_response") == [{"seconds": 20.0, "replies": 3}]  # (30 + 20 + 10) / 3
    assert (row.agent_id, row.team_id, row.channel) == (desk.agent.id, desk.team.id, "webchat")


async def test_missing_greeting_and_closing(desk) -> None:
    conversation = await desk.transcript([
        (0, "resident", "燃气灶打不着火，想约师傅"),
        (15, "agent", "户号多少？"),
        (30, "resident", "2103345678"),
        (50, "agent", "已经帮您登记了，明天师傅上门。"),
        (60, "resident", "好的"),
        (65, "agent", "嗯。"),
    ], accept_s=5)
    row = await _score(desk, conversation)
    assert _table(row) == {
        "greeting": ("fail", 0), "closing": ("fail", 0), "forbidden": ("pass", 15), "leak_safety": ("na", 0),
        "first_response": ("pass", 10), "avg_response": ("pass", 10), "silence": ("pass", 6), "hold": ("na", 0),
        "transfer": ("na", 0), "unresolved": ("pass", 5), "negative": ("na", 0)}
    assert row.score == 69.7  # 46 / 66
    assert _evidence(row, "greeting") == [{"seq": 2}]
    assert _evidence(row, "closing") == [{"seq": 4}, {"seq": 6}]
    assert row.sample_reason == "low_score" and row.review_status == "pending"


async def test_forbidden_words_deduct_their_penalties(desk) -> None:
    conversation = await desk.transcript([
        (5, "agent", "您好，请讲。"),
        (10, "resident", "我家暖气不热，怎么回事？"),
        (30, "agent", "这个我不知道，不归我们管，你自己看说明书。"),
        (40, "resident", "那我该找谁？"),
        (60, "agent", "请拨打热力公司电话。感谢您的来电，再见。"),
    ])
    row = await _score(desk, conversation)
    assert _table(row) == {
        "greeting": ("pass", 10), "closing": ("pass", 10), "forbidden": ("fail", 0), "leak_safety": ("na", 0),
        "first_response": ("pass", 10), "avg_response": ("pass", 10), "silence": ("pass", 6), "hold": ("na", 0),
        "transfer": ("na", 0), "unresolved": ("pass", 5), "negative": ("na", 0)}
    assert row.score == 77.3  # 51 / 66: the penalties (10 + 20 + 10) exceed the rule's 15
    assert _evidence(row, "forbidden") == [{"seq": 3, "phrase": "不知道", "penalty": 10},
                                           {"seq": 3, "phrase": "不归我们管", "penalty": 20},
                                           {"seq": 3, "phrase": "你自己看", "penalty": 10}]
    assert row.sample_reason == "low_score"


async def test_leak_conversation_without_the_safety_script(desk) -> None:
    conversation = await desk.transcript([
        (5, "agent", "您好，很高兴为您服务。"),
        (10, "resident", "我家厨房有很大的煤气味，怎么办"),
        (25, "agent", "请您马上打开窗户，我们派人过去。"),
        (35, "resident", "好的"),
        (45, "agent", "已为您生成抢修工单，感谢您的来电。"),
    ])
    # The agent filed a leak ticket from the chat: the conversation is a leak conversation. The ticket is still
    # open at the close, but leaks are not among the sheet's "settle in the contact" types.
    await wo_ticket(desk.session, "gas_leak", priority="urgent", title="燃气泄漏", conversation_id=conversation.id)
    row = await _score(desk, conversation)
    assert _table(row) == {
        "greeting": ("pass", 10), "closing": ("pass", 10), "forbidden": ("pass", 15), "leak_safety": ("fail", 0),
        "first_response": ("pass", 10), "avg_response": ("pass", 10), "silence": ("pass", 6), "hold": ("na", 0),
        "transfer": ("na", 0), "unresolved": ("pass", 5), "negative": ("na", 0)}
    assert row.score == 81.5  # 66 / 81
    assert _evidence(row, "leak_safety") == [{"phrase": "开窗通风", "missing": True},
                                             {"phrase": "关闭阀门", "missing": True},
                                             {"phrase": "不要开关电器", "missing": True}]


async def test_leak_conversation_with_the_bots_safety_script_passes(desk) -> None:
    conversation = await desk.transcript([
        (0, "resident", "家里好大煤气味"),
        (1, "bot", SAFETY_INSTRUCTIONS),
        (10, "agent", "您好，抢修人员已出发。"),
        (20, "resident", "好的"),
        (30, "agent", "感谢您的配合，再见。"),
    ], accept_s=5, intent="gas_leak")
    row = await _score(desk, conversation)
    assert _table(row)["leak_safety"] == ("pass", 15)
    assert _evidence(row, "leak_safety") == [{"seq": 2, "phrase": "gas_leak_safety"}]


def test_the_default_key_phrases_are_found_in_the_bots_safety_text() -> None:
    """The leak rule's key phrases match the text the bot sends (gasdesk/bot/dialogue/emergency.py), loosely:
    开窗通风 in 打开门窗通风, 关闭阀门 in 关闭燃气表前阀门, 不要开关电器 in 不要开关任何电器."""
    rule = next(r for r in DEFAULT_SHEET["rules"] if r["kind"] == "disclosure")
    assert rule["params"]["phrases"] == ["开窗通风", "关闭阀门", "不要开关电器"]
    assert all(loosely_contains(SAFETY_INSTRUCTIONS, p) for p in rule["params"]["phrases"])
    assert loosely_contains("请马上开窗通风，关闭阀门，不要开关电器。", "开窗通风")
    assert not loosely_contains("请您马上打开窗户。", "开窗通风")
    assert not loosely_contains("关闭了。阀门在哪", "关闭阀门")  # not across sentences


async def test_slow_first_response_and_a_long_silence(desk) -> None:
    conversation = await desk.transcript([
        (75, "agent", "您好，让您久等了。"),
        (80, "resident", "我想改一下联系电话"),
        (230, "agent", "好的，已经帮您修改了。"),
        (240, "resident", "谢谢"),
        (250, "agent", "不客气，感谢您的耐心，再见。"),
    ])
    row = await _score(desk, conversation)
    assert _table(row) == {
        "greeting": ("pass", 10), "closing": ("pass", 10), "forbidden": ("pass", 15), "leak_safety": ("na", 0),
        "first_response": ("fail", 0), "avg_response": ("fail", 0), "silence": ("fail", 0), "hold": ("na", 0),
        "transfer": ("na", 0), "unresolved": ("pass", 5), "negative": ("na", 0)}
    assert row.score == 60.6  # 40 / 66
    assert _evidence(row, "first_response") == [{"seq": 1, "seconds": 75}]
    assert _evidence(row, "avg_response") == [{"seconds": 80.0, "replies": 2}]  # (150 + 10) / 2
    assert _evidence(row, "silence") == [{"seq": 2, "seconds": 150}]


async def test_negative_sentiment_ignored_and_question_left_open(desk) -> None:
    conversation = await desk.transcript([
        (0, "resident", "你们的服务太差了，我要投诉！"),
        (20, "agent", "您好，请问您的户号是多少？"),
        (30, "resident", "2103345678"),
        (40, "agent", "已记录您的问题。"),
        (50, "resident", "什么时候能处理？"),
    ], accept_s=10, intent="complaint")
    ticket = await wo_ticket(desk.session, "complaint", title="服务投诉", conversation_id=conversation.id)
    row = await _score(desk, conversation)
    assert _table(row) == {
        "greeting": ("pass", 10), "closing": ("fail", 0), "forbidden": ("pass", 15), "leak_safety": ("na", 0),
        "first_response": ("pass", 10), "avg_response": ("pass", 10), "silence": ("pass", 6), "hold": ("na", 0),
        "transfer": ("na", 0), "unresolved": ("fail", 0), "negative": ("fail", 0)}
    assert row.score == 67.1  # 51 / 76
    # Evidence points at the resident's messages by number only: their words are not copied.
    assert _evidence(row, "negative") == [{"seq": 1}]
    assert _evidence(row, "unresolved") == [{"ticket_id": ticket.id}, {"seq": 5}]
    assert "太差" not in str(row.results) and "什么时候" not in str(row.results)
    assert row.sample_reason == "complaint"  # complaints go to review before low scores


async def test_a_call_is_scored_on_holds_and_tickets_only(desk) -> None:
    conversation = await desk.transcript([(0, "system:call_ended", "通话结束：来电人挂机，通话时长 200 秒")],
                                         channel="voice", accept_s=0)
    call = Call(conversation_id=conversation.id, backend="sip", call_ref="qa-call-1", state="ended",
                started_at=T0 - timedelta(seconds=30), connected_at=T0, ended_at=T0 + timedelta(seconds=200),
                agent_id=desk.agent.id)
    desk.session.add(call)
    await desk.session.flush()
    for kind, offset in (("held", 20), ("unheld", 50), ("held", 80), ("unheld", 170)):
        desk.session.add(CallEvent(call_id=call.id, kind=kind, at=T0 + timedelta(seconds=offset), data={}))
    await commit(desk.session)
    row = await _score(desk, conversation)
    table = _table(row)
    assert table["hold"] == ("fail", 0) and table["unresolved"] == ("pass", 5)
    assert {k for k, (status, _) in table.items() if status == "na"} == {
        "greeting", "closing", "forbidden", "leak_safety", "first_response", "avg_response", "silence", "transfer",
        "negative"}
    assert _evidence(row, "hold") == [{"hold": 2, "seconds": 90}]  # the first hold (30 s) was short
    assert row.score == 55.6  # 5 / 9
    assert row.call_id == call.id


def test_transfer_needs_an_explanation_first() -> None:
    sheet = SheetBody.model_validate(TEST_SHEET)
    at = T0

    def facts(before_transfer: str) -> Facts:
        return Facts(channel="webchat", accepted_at=at, closed_at=at + timedelta(seconds=60), turns=[
            Turn(1, "agent", "您好", at), Turn(2, "resident", "我要办过户", at + timedelta(seconds=5)),
            Turn(3, "agent", before_transfer, at + timedelta(seconds=10)),
            Turn(4, "system", "正在为您转接其他客服，请稍候", at + timedelta(seconds=11), event="transfer")])

    explained = {r.rule_id: r for r in score_contact(sheet, facts("过户需要营业厅同事办理，我帮您转接。")).results}
    silent = {r.rule_id: r for r in score_contact(sheet, facts("好的。")).results}
    assert (explained["transfer"].status, explained["transfer"].earned) == ("pass", 5)
    assert (silent["transfer"].status, silent["transfer"].evidence) == ("fail", [{"seq": 4}])


async def test_the_scan_scores_each_closed_contact_with_people_once(desk) -> None:
    scored = await desk.transcript([(5, "agent", "您好"), (10, "resident", "谢谢")])
    bot_only = await bot_conversation(desk.session)  # never reached people: not inspected
    bot_only.state, bot_only.closed_at = "closed", T0
    await commit(desk.session)
    assert await score_closed_contacts(desk.session) == 1
    await commit(desk.session)
    assert await score_closed_contacts(desk.session) == 0  # idempotent
    assert await do_score_conversation(desk.session, scored) is None
    rows = list(await desk.session.scalars(select(QualityScore.conversation_id)))
    assert rows == [scored.id]
    assert await desk.session.scalar(select(func.count()).select_from(QualityScore)) == 1


async def test_the_scan_commits_each_score_and_stops_at_its_time_budget(desk, monkeypatch) -> None:
    chats = [await desk.transcript([(5, "agent", "您好"), (10 + n, "resident", "谢谢")]) for n in range(3)]
    monkeypatch.setattr(quality_service, "SCAN_BUDGET_S", 0.0)  # the budget is spent after the first score
    assert await score_closed_contacts(desk.session) == 1
    # committed by the scan itself: another connection sees the score (the caller's session has not committed)
    async with transaction() as other:
        assert list(await other.scalars(select(QualityScore.conversation_id))) == [chats[0].id]
    assert await score_closed_contacts(desk.session) == 1  # the rest waits for the next runs, oldest first
    assert await score_closed_contacts(desk.session) == 1
    assert await score_closed_contacts(desk.session) == 0
    async with transaction() as other:
        assert set(await other.scalars(select(QualityScore.conversation_id))) == {c.id for c in chats}



async def test_agents_in_no_team_get_the_default_sheet(desk, factory) -> None:
    loner = await factory.user("agent")
    conversation = await desk.transcript([(5, "agent", "您好，很高兴为您服务"), (10, "resident", "好")], agent=loner)
    row = await _score(desk, conversation)
    assert row.team_id is None
    assert [r["rule_id"] for r in row.results] == [r["id"] for r in DEFAULT_SHEET["rules"]]
