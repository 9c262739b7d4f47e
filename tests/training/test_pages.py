"""Training pages: the managers' pages (bank with keys, a question added through the form, an exam's results
table) and what trainees may open; a late hand-in through the exam form is refused with the reason shown."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from gasdesk import clock
from gasdesk.training.models import ExamAttempt, Question
from gasdesk.training.service import list_exams
from tests.factories import login, staff_user


async def test_managers_build_a_bank_and_see_results(client, session, app) -> None:
    from gasdesk.seed.training import seed_training_demo

    await seed_training_demo()
    boss = await staff_user(session, "supervisor", display_name="王班长")
    await login(client, boss.username)
    admin = await client.get("/admin/training")
    assert admin.status_code == 200 and "燃气客服基础知识" in admin.text and "闻到燃气味" in admin.text
    bank_id = await session.scalar(select(Question.bank_id).limit(1))
    added = await client.post(
        f"/admin/training/banks/{bank_id}/questions",
        data={
            "kind": "multiple",
            "prompt": "哪些属于安全提示？",
            "options": "开窗通风\n开灯检查\n关闭阀门",
            "correct": "1，3",
        },
    )
    assert added.status_code == 303
    row = await session.scalar(select(Question).where(Question.prompt == "哪些属于安全提示？"))
    assert (
        row is not None
        and row.key == {"options": [0, 2]}
        and row.options == ["开窗通风", "开灯检查", "关闭阀门"]
    )
    bank = await client.get(f"/admin/training/banks/{bank_id}")
    assert "哪些属于安全提示？" in bank.text and "关键词：开窗/通风" in bank.text
    bad = await client.post(
        f"/admin/training/banks/{bank_id}/questions",
        data={"kind": "single", "prompt": "x", "options": "甲\n乙", "correct": "1,2"},
    )
    assert bad.status_code == 422 and "单选题只能有一个正确选项" in bad.text
    exam = (await list_exams(session))[0]
    results = await client.get(f"/admin/training/exams/{exam.id}/results")
    assert results.status_code == 200 and "还没有人参加" in results.text


async def test_a_trainee_cannot_open_the_managers_pages_and_a_late_form_is_refused(client, session) -> None:
    from gasdesk.seed.training import seed_training_demo

    await seed_training_demo()
    trainee = await staff_user(session, "agent")
    await login(client, trainee.username)
    home = await client.get("/training")
    assert home.status_code == 200 and "新员工上岗考试" in home.text and "开始陪练" in home.text
    assert (await client.get("/admin/training")).status_code == 403
    exam = (await list_exams(session))[0]
    start = clock.utcnow()
    clock.set_now(start)
    started = await client.post(f"/training/exams/{exam.id}/start")
    assert started.status_code == 303
    paper = await client.get(started.headers["location"])
    assert 'id="exam-countdown" data-seconds="900"' in paper.text
    assert "正确答案" not in paper.text and "解析" not in paper.text  # no keys while answering
    attempt = await session.scalar(select(ExamAttempt))
    clock.set_now(start + timedelta(minutes=16))
    late = await client.post(f"/training/attempts/{attempt.id}/submit", data={})
    assert late.status_code == 409 and "考试时间已到" in late.text and "超时自动交卷" in late.text
    assert "正确答案" in late.text  # closed now: the review with keys


async def test_the_upload_form_works_from_the_page(client, session) -> None:
    boss = await staff_user(session, "admin")
    await login(client, boss.username)
    token = client.headers.pop("X-CSRF-Token")  # a plain HTML form sends its token as a field, not a header
    page = await client.get("/admin/training", headers={"Accept": "text/html"})
    form = re.search(
        r'<form[^>]*action="/admin/training/materials/upload"[^>]*enctype="multipart/form-data"[^>]*>'
        r"(.*?)</form>",
        page.text,
        re.S,
    )
    assert form is not None and f'name="csrf_token" value="{token}"' in form.group(1)
    sent = await client.post(
        "/admin/training/materials/upload",
        data={"csrf_token": token, "title": "安检须知"},
        files={"file": ("须知.txt", "入户先出示工作证".encode(), "text/plain")},
    )
    assert sent.status_code == 303
    material = (await client.get("/training")).text
    assert "安检须知" in material
    shown = await client.get("/training/materials/1")
    assert "入户先出示工作证" in shown.text and "下载文档" in shown.text
