"""A believable demo utility: districts and communities, customers with accounts and meters,
branches with hours and holidays, and one user per role. Deterministic (fixed random seed)."""

from __future__ import annotations

import csv
import random
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

from gasdesk.appointments.service import do_generate_slots
from gasdesk.audit.service import Actor
from gasdesk.auth.models import User
from gasdesk.auth.service import do_create_user
from gasdesk.branches.models import ServiceBranch
from gasdesk.branches.service import do_save_branch, do_set_holiday
from gasdesk.clock import to_local, utcnow
from gasdesk.config import get_settings
from gasdesk.customers.importer import import_customers
from gasdesk.customers.models import Account, BillingBalance, UsageRecord
from gasdesk.customers.validation import id_card_check_digit
from gasdesk.db import transaction
from gasdesk.emergency.models import DutyAssignment
from gasdesk.emergency.service import do_add_duty
from gasdesk.errors import PermissionDenied
from gasdesk.kb.importer import load_demo_kb
from gasdesk.routing.models import SkillGroup
from gasdesk.routing.service import agent_group_ids, do_set_skills
from gasdesk.seed.training import seed_training_demo
from gasdesk.system.api import DEMO_LOGINS

DISTRICTS = {
    "和平区": ["幸福里小区", "南湖家园", "和平新村", "向阳花园"],
    "铁西区": ["兴华小区", "重工新村", "保工街小区", "滑翔家园"],
    "沈河区": ["五爱小区", "文萃花园", "方家栏小区", "万柳塘家园"],
    "皇姑区": ["塔湾小区", "北陵花园", "昆山家园", "明廉新村"],
    "浑南区": ["奥体公寓", "浑南新城", "白塔河家园", "全运村"],
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅海波建国志强淑珍凤兰文斌宇浩晨曦欣怡子涵梓萱雨桐"
BRANCHES = [
    ("和平区中心营业厅", "和平区", "和平区南京南街 128 号", "024-2341 6600"),
    ("铁西区营业厅", "铁西区", "铁西区兴华北街 56 号", "024-2581 3300"),
    ("沈河区营业厅", "沈河区", "沈河区青年大街 219 号", "024-2412 8800"),
    ("皇姑区营业厅", "皇姑区", "皇姑区黄河南大街 77 号", "024-8651 2200"),
    ("浑南区营业厅", "浑南区", "浑南区创新路 190 号", "024-2378 5500"),
]
WEEKDAY_HOURS = {"1": "08:30-17:00", "2": "08:30-17:00", "3": "08:30-17:00", "4": "08:30-17:00",
                 "5": "08:30-17:00", "6": "09:00-16:00", "7": ""}
# The 2026-2027 holiday schedule a Chinese utility publishes: closed days and 调休 working days.
HOLIDAYS = [
    (date(2027, 1, 1), "", "元旦"), (date(2027, 1, 2), "", "元旦"), (date(2027, 1, 3), "", "元旦"),
    *((date(2027, 2, d), "", "春节") for d in range(5, 13)),
    (date(2027, 2, 14), "08:30-17:00", "春节调休上班"),
    (date(2026, 12, 31), "08:30-15:00", "元旦前提前下班"),
]
DEMO_CUSTOMER = {"户号": "2103345678", "姓名": "张伟", "电话": "13800001234", "区": "和平区", "小区": "幸福里小区",
                 "楼栋": "3", "单元": "2", "室": "501", "业务": "燃气+热力", "表类型": "IC卡表", "标签": "老年人"}


@dataclass
class SeedResult:
    customers: int
    accounts: int
    branches: int
    logins: list[tuple[str, str, str]]


def _id_card(rng: random.Random) -> str:
    body = f"2101{rng.randint(0, 99):02d}{rng.randint(1950, 2002)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" \
           f"{rng.randint(0, 999):03d}"
    return body + id_card_check_digit(body)


def demo_rows(count: int, seed: int = 20261125) -> list[dict[str, str]]:
    """Deterministic demo CSV rows (also used by bench/import_customers.py for larger files)."""
    rng = random.Random(seed)
    rows = [dict(DEMO_CUSTOMER)]
    phones: set[str] = {DEMO_CUSTOMER["电话"]}
    for i in range(1, count):
        district = rng.choice(list(DISTRICTS))
        phone = ""
        while not phone or phone in phones:
            phone = f"1{rng.choice('3578')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"
        phones.add(phone)
        heating = rng.random() < 0.7
        commercial = rng.random() < 0.05
        rows.append({
            "户号": f"21{i + 10000000:08d}",
            "姓名": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
            "电话": phone,
            "身份证号": _id_card(rng) if rng.random() < 0.8 else "",
            "区": district, "小区": rng.choice(DISTRICTS[district]),
            "楼栋": str(rng.randint(1, 40)), "单元": str(rng.randint(1, 6)),
            "室": f"{rng.randint(1, 18)}{rng.randint(1, 4):02d}",
            "用户类型": "非居民" if commercial else "居民",
            "业务": "燃气+热力" if heating else "燃气",
            "表类型": rng.choice(["IC卡表", "IC卡表", "物联网智能表", "物联网智能表", "机械表"]),
            "表号": f"M{rng.randint(10**9, 10**10 - 1)}",
            "采暖面积": f"{rng.randint(45, 160)}" if heating else "",
            "标签": rng.choice(["", "", "", "老年人", "独居", "VIP", "重点关注"]),
        })
    return rows


def write_csv(rows: list[dict[str, str]], path: Path, encoding: str = "utf-8") -> None:
    header = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


async def seed_demo_slots(days: int = 14) -> int:
    """Bookable on-site slots in every demo district for the coming two weeks (existing ones are kept)."""
    first_day = to_local(utcnow() + timedelta(days=1)).date()
    made = 0
    async with transaction() as session:
        for district in DISTRICTS:
            made += await do_generate_slots(session, district=district, first_day=first_day, days=days,
                                            windows=[("09:00", "12:00"), ("13:30", "17:30")], capacity=6)
    return made


async def seed_demo_data(customers: int = 2400, force: bool = False) -> SeedResult | None:
    """Create the demo utility once; returns None when it already exists (unless ``force``).

    Refused in production: the demo logins and their passwords are published in the source code."""
    if get_settings().env == "production":
        raise PermissionDenied("生产环境禁止生成演示数据：演示账号的密码是公开的", code="demo_in_production")
    actor = Actor.system("seed-demo")
    await load_demo_kb(actor)  # idempotent: adds only the demo articles that are missing
    await seed_training_demo(actor)  # idempotent too: materials from those articles, a bank, an exam, scenarios
    async with transaction() as session:
        if not force and await session.scalar(select(User.id).where(User.username == "admin")):
            return None
        roles = {"admin": "admin", "supervisor": "supervisor", "agent1": "agent", "agent2": "agent",
                 "dispatcher": "dispatcher", "crew1": "field_crew", "wall": "wall"}
        names = {"admin": "系统管理员", "supervisor": "王班长", "agent1": "李晓雪", "agent2": "赵明",
                 "dispatcher": "孙调度", "crew1": "维修一班", "wall": "值班大屏"}
        for username, password, _label in DEMO_LOGINS:
            if not await session.scalar(select(User.id).where(User.username == username)):
                await do_create_user(session, actor, username=username, password=password, role=roles[username],
                                     display_name=names[username])
        skills = {"agent1": ["gas", "heating", "billing"], "agent2": ["gas", "billing", "complaint"],
                  "supervisor": ["gas", "heating", "billing", "complaint"]}
        groups = {g.code: g.id for g in await session.scalars(select(SkillGroup))}
        for username, codes in skills.items():
            user = await session.scalar(select(User).where(User.username == username))
            if user is not None and not await agent_group_ids(session, user.id):
                await do_set_skills(session, user, [groups[c] for c in codes if c in groups], max_concurrent=5)
        for name, district, address, phone in BRANCHES:
            if await session.scalar(select(ServiceBranch.id).where(ServiceBranch.name == name)):
                continue
            branch = await do_save_branch(session, actor, branch=None, name=name, district=district,
                                          address=address, phone=phone, weekly_hours=WEEKDAY_HOURS,
                                          services=["缴费", "开户", "过户", "更名", "销户", "报停", "IC卡补卡"])
            for day, hours, note in HOLIDAYS:
                await do_set_holiday(session, actor, branch, day, hours, note)
        # The duty list the emergency escalation paths name, for the coming month (gasdesk/emergency).
        if not await session.scalar(select(DutyAssignment.id).limit(1)):
            start = utcnow()
            for username, duty_role in (("supervisor", "shift_lead"), ("dispatcher", "repair_dispatch"),
                                        ("admin", "safety_lead")):
                user_id = await session.scalar(select(User.id).where(User.username == username))
                if user_id is not None:
                    await do_add_duty(session, actor, user_id=user_id, duty_role=duty_role, starts_at=start,
                                      ends_at=start + timedelta(days=30))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo_customers.csv"
        write_csv(demo_rows(customers), path)
        report = await import_customers(path, actor, error_path=Path(tmp) / "errors.csv")

    rng = random.Random(7)
    async with transaction() as session:
        existing = set(await session.scalars(select(BillingBalance.account_id)))
        accounts = [(a, g, h) for a, g, h in await session.execute(select(Account.id, Account.has_gas, Account.has_heating))
                    if a not in existing]
        now = utcnow()
        balances, usage = [], []
        for account_id, has_gas, has_heating in accounts:
            arrears = Decimal(rng.choice([0, 0, 0, 0, 0, 0, 35, 128, 412])).quantize(Decimal("0.01"))
            balances.append({
                "account_id": account_id, "balance": Decimal(rng.randint(0, 60000)) / 100, "arrears": arrears,
                "last_payment_at": now - timedelta(days=rng.randint(3, 120)),
                "last_payment_amount": Decimal(rng.choice([50, 100, 200, 300, 500])), "updated_at": now,
            })
            for months_back in range(1, 7):
                period = (now.replace(day=1) - timedelta(days=28 * months_back)).strftime("%Y-%m")
                if has_gas:
                    qty = Decimal(rng.randint(8, 40))
                    usage.append({"account_id": account_id, "period": period, "kind": "gas", "quantity": qty,
                                  "amount": (qty * Decimal("2.63")).quantize(Decimal("0.01"))})
                if has_heating and period[5:] in ("11", "12", "01", "02", "03"):
                    qty = Decimal(rng.randint(3, 9))
                    usage.append({"account_id": account_id, "period": period, "kind": "heating", "quantity": qty,
                                  "amount": (qty * Decimal("36.5")).quantize(Decimal("0.01"))})
        if balances:
            await session.execute(insert(BillingBalance), balances)
        if usage:
            await session.execute(insert(UsageRecord), usage)
    await seed_demo_slots()
    return SeedResult(customers=report.created_customers, accounts=report.created_accounts,
                      branches=len(BRANCHES), logins=DEMO_LOGINS)
