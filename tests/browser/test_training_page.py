"""智能培训 in a real browser: a trainee takes the demo exam on /training (countdown shown, answers clicked and
typed, handed in) and gets the score; then spars with the gas-leak resident (htmx chat) and gets a score with
feedback."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.seed.training import seed_training_demo
from gasdesk.training.models import ExamAttempt, Question, SparringSession
from tests.browser.conftest import login_as, screenshot
from tests.factories import staff_user

pytestmark = pytest.mark.asyncio(loop_scope="session")
SHORT_ANSWERS = {
    "请写出接到燃气泄漏报告时的三条安全提示。": "开窗通风，不要开关电器，关闭阀门，到室外打电话",
    "居民充值后没气，坐席应如何指导？请写出要点。": "把卡插入燃气表，看余量显示，不行就报修派师傅",
}


async def test_a_trainee_passes_the_exam_and_spars_with_a_score(live_server, browser, session) -> None:
    trainee = await staff_user(session, "agent", display_name="培训学员")
    await seed_training_demo()
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await login_as(page, live_server, trainee.username)
    await page.goto(f"{live_server}/training")
    assert await page.locator("#training-exams tbody tr").count() == 1
    assert await page.locator(".scenario").count() == 3
    await screenshot(page, "training-home")
    await page.click("#training-exams .exam-start")
    await page.wait_for_selector("#exam-form")
    countdown = await page.inner_text("#exam-countdown")
    assert countdown.startswith(("14:", "15:"))  # a 15-minute exam, ticking

    keys = {q.id: q for q in await session.scalars(select(Question))}
    fieldsets = page.locator("fieldset.question")
    assert await fieldsets.count() == 8
    for i in range(8):
        fieldset = fieldsets.nth(i)
        question = keys[int(await fieldset.get_attribute("data-question"))]
        name = f"q{question.id}"
        if question.kind == "single":
            await fieldset.locator(f"input[name={name}][value='{question.key['option']}']").check()
        elif question.kind == "multiple":
            for option in question.key["options"]:
                await fieldset.locator(f"input[name={name}][value='{option}']").check()
        elif question.kind == "true_false":
            await fieldset.locator(
                f"input[name={name}][value='{str(question.key['value']).lower()}']"
            ).check()
        else:
            await fieldset.locator("textarea").fill(SHORT_ANSWERS[question.prompt])
    await page.click("#exam-submit")
    await page.wait_for_selector("#exam-result")
    assert await page.inner_text("#exam-score") == "100.0"
    assert await page.inner_text("#exam-verdict") == "通过"
    await screenshot(page, "training-exam-result")
    attempt = await session.scalar(select(ExamAttempt))
    assert attempt is not None and attempt.user_id == trainee.id and attempt.status == "submitted"

    # AI陪练: the gas-leak resident
    await page.goto(f"{live_server}/training")
    await page.click(".scenario[data-code=gas_leak_report] button")
    await page.wait_for_selector("#sparring-form")
    assert "煤气味" in await page.inner_text("#sparring-log")
    lines = [
        "您好，请您别慌，马上打开门窗通风",
        "千万不要开关电器，也别用明火，请关闭阀门",
        "然后到楼下室外等我们",
        "请问您家的详细地址是？",
        "抢修人员马上到，感谢您的配合，再见",
    ]
    for n, line in enumerate(lines, start=1):
        await page.fill("#sparring-text", line)
        await page.press("#sparring-text", "Enter")
        await page.wait_for_function(
            "n => document.querySelectorAll('#sparring-log .bubble.persona').length >= n", arg=n + 1
        )
    log = await page.inner_text("#sparring-log")
    assert "窗户我都打开了" in log and "向阳花园5号楼1单元302" in log
    assert "6 / 6" in await page.inner_text("#sparring-progress")
    await page.click("#sparring-finish")
    await page.wait_for_selector("#sparring-result")
    score = float(await page.inner_text("#sparring-score"))
    stored = await session.scalar(select(SparringSession))
    assert stored is not None and stored.score == score and stored.step_score == 100.0
    assert score >= 90
    await screenshot(page, "training-sparring-result")
