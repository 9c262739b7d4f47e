"""AI sparring: recognising the trainee's steps in varied Chinese wordings (not the seeded phrases alone), the
persona's next line following what is done, and the score from the steps plus the quality sheet on the
transcript, with feedback."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from gasdesk import clock, llm
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.training import service
from gasdesk.training.scenarios import DEFAULT_SCENARIOS
from gasdesk.training.sparring import check_script, detect_steps, persona_reply
from tests.factories import staff_user

SCRIPTS = {code: check_script(body) for code, _, body in DEFAULT_SCENARIOS}
NO_GAS, LEAK, RESCHEDULE = (
    SCRIPTS["no_gas_after_topup"],
    SCRIPTS["gas_leak_report"],
    SCRIPTS["appointment_change"],
)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("实在不好意思，给您添麻烦了", ["apologise"]),
        ("阿姨您先别着急，我这就帮您查", ["apologise"]),
        ("非常抱歉让您久等了", ["apologise"]),
        ("麻烦说一下您家的详细住址", ["ask_address"]),
        ("您的用户编号是多少？", ["ask_address"]),
        ("您把IC卡拔下来重新插到表里试一下", ["card_guidance"]),
        ("充值以后要把卡放进燃气表读一下才行", ["card_guidance"]),
        ("我这边给您登记报修，让师傅下午上门看看", ["offer_repair"]),
        ("好的，我们安排维修人员过去", ["offer_repair"]),
        ("今天天气不错", []),
    ],
)
def test_no_gas_steps_in_other_words(text: str, steps: list[str]) -> None:
    assert detect_steps(NO_GAS, text) == steps


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("您先不要慌，马上把家里的门窗都打开通通风", ["calm", "ventilate"]),
        ("請您打開窗戶通風", ["ventilate"]),  # traditional characters, through the bot's normalize
        ("千万别碰任何电器开关，也别点火", ["no_switches"]),
        ("屋里不能开灯，也禁止使用明火", ["no_switches"]),
        ("把燃气表前面那个阀门关上", ["shut_valve"]),
        ("请您关闭燃气总阀", ["shut_valve"]),
        ("然后离开房间到楼下再给我们打电话", ["outdoors_call"]),
        ("去室外用手机联系我们", ["outdoors_call"]),
        ("您家住哪个小区几号楼？", ["ask_address"]),
    ],
)
def test_leak_steps_in_other_words(text: str, steps: list[str]) -> None:
    assert detect_steps(LEAK, text) == steps


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("完全理解，可以帮您调整时间", ["acknowledge"]),
        ("请问您预约时留的手机号是多少", ["verify"]),
        ("后天下午三点可以吗", ["offer_time"]),  # the bot's date and time slots
        ("您看下周一上午方便吗", ["offer_time"]),
        ("好的，已经给您改好了，下周一上午师傅上门", ["confirm"]),
    ],
)
def test_reschedule_steps_in_other_words(text: str, steps: list[str]) -> None:
    assert set(steps) <= set(detect_steps(RESCHEDULE, text))


def test_the_resident_calms_down_after_an_apology_and_gives_the_address_when_asked() -> None:
    # asked for the address before any apology: the resident snaps, but gives it
    snapped = persona_reply(NO_GAS, set(), ["ask_address"], set())
    assert "问地址有什么用" in snapped.text and "幸福里小区3号楼2单元501" in snapped.text
    # apologised first: calmer, then the address plainly
    calmed = persona_reply(NO_GAS, set(), ["apologise"], set())
    assert "不是冲你" in calmed.text
    address = persona_reply(NO_GAS, {"apologise"}, ["ask_address"], set(calmed.said))
    assert address.text.startswith("我家是幸福里小区")
    # nothing new done: the resident pushes towards the first missing step
    nudge = persona_reply(NO_GAS, {"apologise", "ask_address"}, [], {"calmed", "address"})
    assert "怎么弄才能有气" in nudge.text and not nudge.complete
    # a repair offered before the address is known: the resident points it out
    early = persona_reply(NO_GAS, {"apologise"}, ["offer_repair"], set())
    assert "连我家在哪都没问" in early.text
    done = persona_reply(NO_GAS, {"apologise", "ask_address", "card_guidance"}, ["offer_repair"], set())
    assert done.complete and NO_GAS.closing in done.text


async def _scenario(session, code: str):
    await service.do_install_default_scenarios(session, Actor.system("t", "test"))
    await commit(session)
    return next(s for s in await service.list_scenarios(session) if s.code == code)


async def test_a_full_leak_session_scores_steps_and_quality(session) -> None:
    trainee = await staff_user(session, "agent")
    scenario = await _scenario(session, "gas_leak_report")
    start = clock.utcnow()
    clock.set_now(start)
    sparring = await service.do_start_sparring(session, trainee, scenario)
    lines = [
        "您好，请您别慌，先打开门窗通风",
        "千万不要开关电器，也不要使用明火，关闭燃气表前的阀门",
        "然后马上到楼下室外等候",
        "请告诉我您的详细地址，我马上派抢修",
        "抢修师傅十五分钟内到，感谢您的配合，再见",
    ]
    replies = []
    for i, line in enumerate(lines):
        clock.set_now(start + timedelta(seconds=10 * (i + 1)))
        replies.append((await service.do_sparring_say(session, trainee, sparring, line)).text)
    await commit(session)
    assert replies[0] == "好，好，我尽量不慌…… 窗户我都打开了，味道还是有。"
    assert "向阳花园5号楼1单元302" in replies[3] and LEAK.closing in replies[3]
    finished = await service.do_finish_sparring(session, trainee, sparring)
    await commit(session)
    assert finished.step_score == 100.0
    fb = finished.feedback
    assert fb["missed"] == []
    # the quality sheet judged the transcript: greeting, closing, the leak safety script all pass
    statuses = {r["rule_id"]: r["status"] for r in fb["quality_results"]}
    assert statuses["greeting"] == statuses["closing"] == statuses["leak_safety"] == "pass"
    assert [r for r in fb["quality_results"] if r["status"] == "fail"] == [], fb["quality_results"]
    assert finished.quality_score == 100.0 and finished.score == 100.0
    actions = set(
        await session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.entity_type == "training_sparring", AuditEntry.entity_id == str(sparring.id)
            )
        )
    )
    assert actions == {"training.sparring_start", "training.sparring_turn", "training.sparring_finish"}


async def test_a_poor_session_lists_missed_steps_and_quality_findings(session) -> None:
    trainee = await staff_user(session, "agent")
    scenario = await _scenario(session, "no_gas_after_topup")
    sparring = await service.do_start_sparring(session, trainee, scenario)
    await service.do_sparring_say(session, trainee, sparring, "不知道，你自己看说明书")
    await service.do_sparring_say(session, trainee, sparring, "你家地址是哪里")
    finished = await service.do_finish_sparring(session, trainee, sparring)
    await commit(session)
    assert finished.feedback["missed"] == ["安抚致歉", "指导插卡写入充值", "提供报修或上门服务"]
    assert finished.step_score == 20.0
    quality = finished.feedback["quality"]
    assert "服务禁语：出现“不知道”“你自己看”" in quality
    assert any(q.startswith("开场问候") for q in quality)
    assert any(q.startswith("负面情绪及时安抚") for q in quality)  # 气死我了 answered without an apology
    assert finished.quality_score < 60 and finished.score == round(20 * 0.7 + finished.quality_score * 0.3, 1)
    with pytest.raises(service.Conflict):
        await service.do_sparring_say(session, trainee, sparring, "还在吗")


async def test_only_its_trainee_speaks_in_a_session(session) -> None:
    trainee, other = await staff_user(session, "agent"), await staff_user(session, "agent")
    scenario = await _scenario(session, "appointment_change")
    sparring = await service.do_start_sparring(session, trainee, scenario)
    await commit(session)
    with pytest.raises(service.NotFound):
        await service.access_sparring(session, other, sparring.id)
    with pytest.raises(service.NotFound):
        await service.do_sparring_say(session, other, sparring, "你好")


async def test_a_configured_llm_only_rewords_the_persona_and_its_failure_falls_back(
    session, monkeypatch
) -> None:
    seen: list[dict] = []
    failing = {"now": False}

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if failing["now"]:
            return httpx.Response(503)
        line = body["messages"][-1]["content"]
        return httpx.Response(200, json={"choices": [{"message": {"content": f"（换个说法）{line}"}}]})

    monkeypatch.setenv("GASDESK_LLM_BASE_URL", "http://llm.test/v1")
    reset_settings_cache()
    monkeypatch.setattr(llm, "_transport", httpx.MockTransport(answer))
    trainee = await staff_user(session, "agent")
    scenario = await _scenario(session, "gas_leak_report")
    sparring = await service.do_start_sparring(session, trainee, scenario)
    reply = await service.do_sparring_say(session, trainee, sparring, "请马上开窗通风")
    assert reply.text == "（换个说法）窗户我都打开了，味道还是有。"
    assert "王先生" in seen[0]["messages"][0]["content"]  # the persona's description goes with it
    failing["now"] = True
    reply = await service.do_sparring_say(session, trainee, sparring, "千万不要开关电器")
    assert reply.text == "明白，我不碰开关，灯也不开。"  # the script's words
    assert sparring.steps_done == ["ventilate", "no_switches"]
