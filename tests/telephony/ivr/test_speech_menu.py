"""The speech menu through the real controller, IVR engine, bot understanding and domains: a caller double says
something, a real FunAsrRecognizer sends it to the fake FunASR server, which transcribes it as told; the stored
rows are what is asserted."""

from __future__ import annotations

import asyncio
import copy
import socket
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from gasdesk.conversations.models import Message
from gasdesk.errors import InvalidInput
from gasdesk.telephony import controller
from gasdesk.telephony.asr import FunAsrRecognizer
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT, check_script, script_problems
from gasdesk.tickets.models import Ticket
from tests.factories import desk_agent
from tests.telephony.asr.fake_funasr import FakeFunAsr, running_funasr
from tests.telephony.telephony_kit import FakeCaller, SilentRenderer, assert_consistent, call_rows

LEAK_SPEECH = bytes(i * 7 % 256 for i in range(9600))  # what the fake transcribes as a leak report
BALANCE_SPEECH = bytes(i * 11 % 256 for i in range(8000))
SPEECH_PROMPT = "请简单说出您要办理的业务"


pytestmark = pytest.mark.usefixtures("quick_queue")


@pytest.fixture
async def funasr() -> AsyncIterator[tuple[FakeFunAsr, FunAsrRecognizer]]:
    async with running_funasr() as (fake, url):
        fake.says(LEAK_SPEECH, "我家厨房有燃气味")
        fake.says(BALANCE_SPEECH, "查一下燃气费余额，手机号13912345678")
        yield fake, FunAsrRecognizer(url, timeout_s=3)


async def _call(caller: FakeCaller, prompts: SilentRenderer, recognizer: FunAsrRecognizer | None) -> None:
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts, recognizer=recognizer), timeout=10)


def _speech_events(rows) -> list[dict]:
    return [e.data for e in rows.events if e.kind == "speech"]


async def test_a_spoken_leak_report_makes_the_urgent_ticket_and_the_emergency_hand_off(
        session, factory, prompts, funasr) -> None:
    fake, recognizer = funasr
    await factory.customer(phones=["13900000001"])
    agent = await desk_agent(factory)
    caller = FakeCaller(utterances=[LEAK_SPEECH], caller="13900000001")

    await _call(caller, prompts, recognizer)

    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert [(v.node_id, v.outcome) for v in rows.visits] == [("speech", "digit"), ("leak", "next")]
    assert caller.ops[:2] == ["answer", "listen"] and SPEECH_PROMPT in caller.heard[0]
    assert bytes(fake.audio) == LEAK_SPEECH and fake.starts[-1]["audio_fs"] == 8000
    assert _speech_events(rows) == [{"node": "speech", "intent": "gas_leak", "confidence": 1.0, "audio_s": 0.6}]
    assert all("燃气味" not in str(e.data) for e in rows.events)  # the words never go into the call's events
    assert rows.conversation.handoff_reason == "emergency" and rows.conversation.priority >= 10
    assert rows.call.agent_id == agent.id
    ticket = await session.scalar(select(Ticket).where(Ticket.conversation_id == rows.call.conversation_id))
    assert (ticket.type, ticket.priority, ticket.channel) == ("gas_leak", "urgent", "voice")
    said = await session.scalar(select(Message).where(Message.conversation_id == rows.call.conversation_id,
                                                      Message.sender_type == "resident"))
    assert said.text == "我家厨房有燃气味" and said.payload["intent"] == "gas_leak"


async def test_a_spoken_balance_question_goes_to_the_balance_with_the_number_redacted(
        session, factory, prompts, funasr) -> None:
    _, recognizer = funasr
    await factory.customer(phones=["13800000009"], account_no="2100000077")
    caller = FakeCaller(utterances=[BALANCE_SPEECH], caller="13800000009")

    await _call(caller, prompts, recognizer)

    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert rows.path[:4] == ["speech", "id_balance", "balance", "after_info"]
    assert any("户号尾号0077，账户余额" in text for text in caller.heard)
    event = _speech_events(rows)[0]
    assert event["intent"] == "balance_query" and 0.5 <= event["confidence"] <= 1
    said = await session.scalar(select(Message).where(Message.conversation_id == rows.call.conversation_id,
                                                      Message.sender_type == "resident"))
    assert said.text == "查一下燃气费余额，手机号[手机号]" and "13912345678" not in str(said.payload)


async def test_silence_goes_to_the_key_menu_without_asking_the_recogniser(session, factory, prompts, funasr) -> None:
    fake, recognizer = funasr
    caller = FakeCaller(utterances=[b""], inputs=["2"])
    await _call(caller, prompts, recognizer)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert [(v.node_id, v.outcome) for v in rows.visits][:3] == [("speech", "timeout"), ("main", "digit"),
                                                                 ("outages", "next")]
    assert fake.connections == 0 and _speech_events(rows) == []


async def test_a_key_pressed_during_the_speech_prompt_is_the_menu_choice(session, factory, prompts, funasr) -> None:
    fake, recognizer = funasr
    caller = FakeCaller(utterances=["2"])  # presses 2 (停气通知) while the speech prompt plays
    await _call(caller, prompts, recognizer)
    rows = await call_rows(caller.info.call_ref)
    assert rows.path[:3] == ["speech", "main", "outages"]
    assert {"node": "main", "digits": "2"} in [e.data for e in rows.events if e.kind == "dtmf"]
    assert fake.connections == 0


async def test_unclear_speech_goes_to_the_key_menu(session, factory, prompts, funasr) -> None:
    fake, recognizer = funasr
    weather = bytes(range(200)) * 20
    fake.says(weather, "今天天气怎么样")
    caller = FakeCaller(utterances=[weather], inputs=["2"])
    await _call(caller, prompts, recognizer)
    rows = await call_rows(caller.info.call_ref)
    assert [(v.node_id, v.outcome) for v in rows.visits][:2] == [("speech", "invalid"), ("main", "digit")]
    assert _speech_events(rows)[0]["intent"] == "out_of_scope"


async def test_a_recogniser_that_is_down_means_keys_and_no_crash(session, factory, prompts) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caller = FakeCaller(utterances=[LEAK_SPEECH], inputs=["2"])
    await _call(caller, prompts, FunAsrRecognizer(f"ws://127.0.0.1:{port}", timeout_s=1))
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    assert [(v.node_id, v.outcome) for v in rows.visits][:3] == [("speech", "next"), ("main", "digit"),
                                                                 ("outages", "next")]
    assert _speech_events(rows) == [{"node": "speech", "error": "asr_unavailable", "audio_s": 0.6}]


async def test_without_a_recogniser_the_speech_menu_is_not_there(session, factory, prompts) -> None:
    caller = FakeCaller(inputs=["2"])
    await _call(caller, prompts, None)
    rows = await call_rows(caller.info.call_ref)
    assert rows.path[:2] == ["main", "outages"] and "listen" not in caller.ops
    assert not any(SPEECH_PROMPT in text for text in caller.heard)


@pytest.mark.no_database
@pytest.mark.parametrize(("change", "expected"), [
    ({"intents": {"balance_query": "id_balance"}}, "必须为燃气泄漏"),
    ({"intents": {"gas_leak": "leak", "weather": "main"}}, "未知的意图：weather"),
    ({"intents": {"gas_leak": "nowhere"}}, "指向不存在的节点“nowhere”"),
    ({"fallback": "speech"}, "备用节点不能是另一个语音菜单"),
    ({"silence_s": 9}, "nodes.speech.silence_s：数值过大"),
    ({"min_confidence": 2}, "nodes.speech.min_confidence：数值过大"),
])
def test_speech_menu_problems_are_named(change: dict, expected: str) -> None:
    body = copy.deepcopy(DEFAULT_SCRIPT)
    body["nodes"]["speech"].update(change)
    problems = script_problems(body)
    assert any(expected in p for p in problems), problems
    with pytest.raises(InvalidInput):
        check_script(body)


@pytest.mark.no_database
def test_the_default_script_starts_with_the_speech_menu_falling_back_to_keys() -> None:
    script = check_script(DEFAULT_SCRIPT)
    speech = script.nodes[script.start]
    assert speech.kind == "speech_menu" and speech.fallback == "main"
    assert speech.intents["gas_leak"] == "leak" and script.nodes["leak"].kind == "emergency"
    assert {script.nodes[n].kind for n in speech.intents.values()} <= {"emergency", "outage_notices", "identify",
                                                                         "hours"}
