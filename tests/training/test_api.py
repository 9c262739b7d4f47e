"""Training over REST: who may see what. A trainee sees their own attempts only, never an answer key before
handing in, no results table and no bank; supervisors see all. Late answers get a clear 409; materials come
from the knowledge base or an upload."""

from __future__ import annotations

from datetime import timedelta

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.kb.service import check_article, do_create_article
from gasdesk.training import service
from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn
from tests.factories import staff_user

ACTOR = Actor.system("training-test", "test")


async def _exam(session) -> tuple[int, int]:
    bank = await service.do_create_bank(session, ACTOR, BankIn(name="题库"))
    await service.do_add_question(
        session,
        ACTOR,
        bank,
        QuestionIn(kind="single", prompt="选乙", options=["甲", "乙"], correct=[1], explanation="乙是对的"),
    )
    await service.do_add_question(
        session, ACTOR, bank, QuestionIn(kind="short_answer", prompt="怎么办", keywords=["开窗", "关阀"])
    )
    exam = await service.do_create_exam(
        session,
        ACTOR,
        ExamIn(bank_id=bank.id, title="考试", question_count=2, time_limit_min=10, pass_mark=60),
    )
    await commit(session)
    return bank.id, exam.id


async def _auth(factory, role: str):
    user = await staff_user(factory.session, role)  # a cached password hash: argon2 per user is slow
    return user, {"Authorization": f"Bearer {await factory.token(user)}"}


async def test_a_trainee_never_sees_keys_before_handing_in_nor_anyone_elses_results(
    client, factory, session
) -> None:
    bank_id, exam_id = await _exam(session)
    _, alice = await _auth(factory, "agent")
    _, bob = await _auth(factory, "agent")
    _, boss = await _auth(factory, "supervisor")

    started = await client.post(f"/api/v1/training/exams/{exam_id}/attempts", headers=alice)
    assert started.status_code == 201, started.text
    paper = started.json()
    assert paper["review"] is None and paper["status"] == "open" and 590 <= paper["seconds_left"] <= 600
    assert len(paper["questions"]) == 2
    assert all(set(q) == {"id", "kind", "prompt", "options", "points"} for q in paper["questions"])
    assert "乙是对的" not in started.text and "关阀" not in started.text and '"key"' not in started.text
    again = await client.get(f"/api/v1/training/attempts/{paper['id']}", headers=alice)
    assert again.json()["review"] is None and "关阀" not in again.text
    # the bank with its keys is for managers only
    assert (await client.get(f"/api/v1/training/banks/{bank_id}/questions", headers=alice)).status_code == 403
    keys = await client.get(f"/api/v1/training/banks/{bank_id}/questions", headers=boss)
    assert keys.status_code == 200 and {q["prompt"]: q["key"] for q in keys.json()}["怎么办"] == {
        "keywords": ["开窗", "关阀"]
    }

    # another trainee can neither read nor answer Alice's attempt, nor see the results table
    assert (await client.get(f"/api/v1/training/attempts/{paper['id']}", headers=bob)).status_code == 404
    assert (
        await client.put(
            f"/api/v1/training/attempts/{paper['id']}/answers", headers=bob, json={"answers": {}}
        )
    ).status_code == 404
    assert (await client.get(f"/api/v1/training/exams/{exam_id}/results", headers=bob)).status_code == 403

    ids = {q["prompt"]: str(q["id"]) for q in paper["questions"]}
    saved = await client.put(
        f"/api/v1/training/attempts/{paper['id']}/answers", headers=alice, json={"answers": {ids["选乙"]: 1}}
    )
    assert saved.status_code == 200 and saved.json()["answers"] == {ids["选乙"]: 1}
    stranger = await client.put(
        f"/api/v1/training/attempts/{paper['id']}/answers", headers=alice, json={"answers": {"999999": 1}}
    )
    assert stranger.status_code == 422
    done = await client.post(
        f"/api/v1/training/attempts/{paper['id']}/submit",
        headers=alice,
        json={"answers": {ids["怎么办"]: "先开窗通风"}},
    )
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["score"] == 75.0 and result["passed"] is True and result["status"] == "submitted"
    review = {r["question"]["prompt"]: r for r in result["review"]}
    assert (
        review["选乙"]["question"]["key"] == {"option": 1}
        and review["选乙"]["question"]["explanation"] == "乙是对的"
    )
    assert review["怎么办"]["earned"] == 0.5

    mine = await client.get("/api/v1/training/attempts/mine", headers=bob)
    assert mine.status_code == 200 and mine.json() == []
    table = await client.get(f"/api/v1/training/exams/{exam_id}/results", headers=boss)
    assert [(r["attempt_id"], r["score"], r["passed"]) for r in table.json()] == [(paper["id"], 75.0, True)]
    assert (await client.get(f"/api/v1/training/attempts/{paper['id']}", headers=boss)).status_code == 200


async def test_late_answers_get_a_clear_409_and_the_attempt_is_closed(client, factory, session) -> None:
    _, exam_id = await _exam(session)
    _, alice = await _auth(factory, "agent")
    start = clock.utcnow()
    clock.set_now(start)
    paper = (await client.post(f"/api/v1/training/exams/{exam_id}/attempts", headers=alice)).json()
    clock.set_now(start + timedelta(minutes=11))
    late = await client.put(
        f"/api/v1/training/attempts/{paper['id']}/answers",
        headers=alice,
        json={"answers": {str(paper["questions"][0]["id"]): 1}},
    )
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["code"] == "attempt_expired" and "考试时间已到" in error["message"]
    closed = (await client.get(f"/api/v1/training/attempts/{paper['id']}", headers=alice)).json()
    assert closed["status"] == "expired" and closed["score"] == 0.0 and closed["answers"] == {}
    assert closed["review"] is not None  # closed: now the keys may be shown


async def test_sparring_sessions_are_private_to_their_trainee(client, factory, session) -> None:
    await service.do_install_default_scenarios(session, ACTOR)
    await commit(session)
    _, alice = await _auth(factory, "agent")
    _, bob = await _auth(factory, "dispatcher")
    _, boss = await _auth(factory, "supervisor")
    scenarios = (await client.get("/api/v1/training/scenarios", headers=alice)).json()
    assert {s["code"] for s in scenarios} == {"no_gas_after_topup", "gas_leak_report", "appointment_change"}
    leak = next(s for s in scenarios if s["code"] == "gas_leak_report")
    started = await client.post("/api/v1/training/sparring", headers=alice, json={"scenario_id": leak["id"]})
    assert started.status_code == 201 and started.json()["turns"][0]["sender"] == "persona"
    sid = started.json()["id"]
    said = await client.post(
        f"/api/v1/training/sparring/{sid}/turns", headers=alice, json={"text": "您好，请马上开窗通风"}
    )
    assert (
        said.json()["steps_done"] == ["ventilate"]
        and said.json()["turns"][-1]["text"] == "窗户我都打开了，味道还是有。"
    )
    assert (await client.get(f"/api/v1/training/sparring/{sid}", headers=bob)).status_code == 404
    assert (
        await client.post(f"/api/v1/training/sparring/{sid}/turns", headers=bob, json={"text": "你好"})
    ).status_code == 404
    assert (await client.post(f"/api/v1/training/sparring/{sid}/finish", headers=boss)).status_code == 404
    finished = await client.post(f"/api/v1/training/sparring/{sid}/finish", headers=alice)
    body = finished.json()
    assert (
        body["status"] == "finished"
        and body["step_score"] == 20.0
        and "询问详细地址" in body["feedback"]["missed"]
    )
    assert (await client.get(f"/api/v1/training/sparring/{sid}", headers=boss)).json()["score"] == body[
        "score"
    ]


async def test_materials_from_the_knowledge_base_and_from_an_upload(client, factory, session) -> None:
    article = await do_create_article(
        session,
        ACTOR,
        check_article(
            title="闻到燃气味怎么办",
            questions=["漏气了"],
            answer="**立即开窗通风**，不要开关电器。",
            category="安全用气",
        ),
        status="published",
    )
    await commit(session)
    _, boss = await _auth(factory, "supervisor")
    _, alice = await _auth(factory, "agent")
    assert (
        await client.post("/api/v1/training/materials", headers=alice, json={"kb_article_id": article.id})
    ).status_code == 403
    made = await client.post("/api/v1/training/materials", headers=boss, json={"kb_article_id": article.id})
    assert made.status_code == 201 and made.json()["body"] == "**立即开窗通风**，不要开关电器。"
    uploaded = await client.post(
        "/api/v1/training/materials/upload",
        headers=boss,
        data={"title": "安检话术"},
        files={"file": ("话术.txt", "入户安检先出示工作证。".encode("gb18030"), "text/plain")},
    )
    assert uploaded.status_code == 201, uploaded.text
    material = uploaded.json()
    assert material["body"] == "入户安检先出示工作证。" and material["file_url"]
    download = await client.get(material["file_url"], headers=alice)
    assert download.status_code == 200 and download.content == "入户安检先出示工作证。".encode("gb18030")
    refused = await client.post(
        "/api/v1/training/materials/upload",
        headers=boss,
        files={"file": ("photo.png", b"\x89PNG\r\n\x1a\n0000", "image/png")},
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "file_type"
    listed = await client.get("/api/v1/training/materials", headers=alice)
    assert [m["title"] for m in listed.json()] == ["安检话术", "闻到燃气味怎么办"]
