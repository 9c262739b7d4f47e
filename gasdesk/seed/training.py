"""Demo training data: materials from the demo knowledge base, one question bank of every question kind, one
exam, and the built-in sparring scenarios. Idempotent (by the bank's name, the exam's title and the
materials' titles), so an existing demo install gets it on the next seed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.db import transaction
from gasdesk.kb.models import KbArticle
from gasdesk.training.models import Exam, QuestionBank, TrainingMaterial
from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn
from gasdesk.training.service import (
    do_add_question,
    do_create_bank,
    do_create_exam,
    do_create_material_from_kb,
    do_install_default_scenarios,
)

DEMO_BANK = "燃气客服基础知识"
DEMO_EXAM = "新员工上岗考试"
DEMO_MATERIALS = ("闻到燃气味怎么办", "IC卡表缴费后需要插卡", "家里没气了自查步骤", "居民阶梯气价标准")
DEMO_QUESTIONS: tuple[dict[str, Any], ...] = (
    {
        "kind": "single",
        "prompt": "居民来电说闻到燃气味，坐席首先应该提醒居民做什么？",
        "options": ["打开抽油烟机排气", "开窗通风，不要开关电器", "开灯检查漏气位置", "等维修人员上门再处理"],
        "correct": [1],
        "explanation": "开关电器和抽油烟机都可能产生电火花，应先开窗通风并关闭阀门。",
    },
    {
        "kind": "single",
        "prompt": "IC卡表用户在手机上充值成功后仍然没气，最常见的原因是？",
        "options": ["燃气公司停气", "没有把卡插入燃气表写入充值", "燃气表坏了", "充值金额不够"],
        "correct": [1],
        "explanation": "线上充值写入卡中后，需要把卡插入燃气表，表才会增加气量。",
    },
    {
        "kind": "single",
        "prompt": "居民对服务不满意、情绪激动时，坐席第一句话最合适的是？",
        "options": [
            "这不归我们管",
            "您先别激动，听我说",
            "非常抱歉给您带来不便，我马上帮您处理",
            "您自己看一下说明书",
        ],
        "correct": [2],
    },
    {
        "kind": "multiple",
        "prompt": "燃气泄漏时，应提醒居民做到哪些？（多选）",
        "options": ["开窗通风", "关闭燃气表前阀门", "在室内拨打电话报修", "不要开关电器、不用明火"],
        "correct": [0, 1, 3],
        "explanation": "打电话要到室外，室内使用手机或座机也可能产生火花。",
    },
    {
        "kind": "multiple",
        "prompt": "改约上门服务时，坐席需要核实哪些信息？（多选）",
        "options": ["户号或地址", "联系电话", "居民的工作单位", "原预约时间"],
        "correct": [0, 1, 3],
    },
    {
        "kind": "true_false",
        "prompt": "IC卡表显示余量为零时会自动关阀，充值插卡后即可恢复供气。",
        "value": True,
    },
    {
        "kind": "true_false",
        "prompt": "居民可以自行挪动燃气表的位置，只需事后告知燃气公司。",
        "value": False,
        "explanation": "燃气表和管道改动必须由燃气公司专业人员施工。",
    },
    {"kind": "true_false", "prompt": "结束通话前询问“还有其他问题吗”属于规范的结束语。", "value": True},
    {
        "kind": "short_answer",
        "prompt": "请写出接到燃气泄漏报告时的三条安全提示。",
        "keywords": ["开窗|通风", "电器|开关|明火", "阀门|关阀", "室外|外面|楼下"],
        "points": 2,
        "explanation": "开窗通风、不要开关电器和使用明火、关闭阀门、到室外拨打电话。",
    },
    {
        "kind": "short_answer",
        "prompt": "居民充值后没气，坐席应如何指导？请写出要点。",
        "keywords": ["插卡|插入", "余量|数字|显示", "报修|上门|师傅"],
        "points": 2,
    },
)


async def seed_training_demo(actor: Actor | None = None) -> dict[str, int]:
    """The demo training data that is missing; how many of each were added."""
    actor = actor or Actor.system("seed-demo")
    added = {"materials": 0, "questions": 0, "exams": 0, "scenarios": 0}
    async with transaction() as session:
        have = set(await session.scalars(select(TrainingMaterial.title)))
        for title in DEMO_MATERIALS:
            article_id = await session.scalar(select(KbArticle.id).where(KbArticle.title == title))
            if article_id is not None and title not in have:
                await do_create_material_from_kb(session, actor, article_id)
                added["materials"] += 1
        bank = await session.scalar(select(QuestionBank).where(QuestionBank.name == DEMO_BANK))
        if bank is None:
            bank = await do_create_bank(
                session, actor, BankIn(name=DEMO_BANK, description="安全用气、缴费与服务规范")
            )
            for question in DEMO_QUESTIONS:
                await do_add_question(session, actor, bank, QuestionIn.model_validate(question))
                added["questions"] += 1
        if not await session.scalar(select(Exam.id).where(Exam.title == DEMO_EXAM)):
            await do_create_exam(
                session,
                actor,
                ExamIn(bank_id=bank.id, title=DEMO_EXAM, question_count=8, time_limit_min=15, pass_mark=60),
            )
            added["exams"] += 1
        added["scenarios"] = await do_install_default_scenarios(session, actor)
    return added
