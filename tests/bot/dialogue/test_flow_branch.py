"""Branch information: district named, from the verified customer's address, or asked with buttons; today's
hours, open-now and the holiday schedule of the next 30 days."""

from __future__ import annotations

from datetime import date, datetime

from dialogue_kit import SHANGHAI

from gasdesk import clock
from gasdesk.branches.service import do_save_branch, do_set_holiday
from gasdesk.db import commit
from tests.factories import wo_actor

WEEK = {"1": "08:30-17:00", "2": "08:30-17:00", "3": "08:30-17:00", "4": "08:30-17:00", "5": "08:30-17:00",
        "6": "09:00-16:00", "7": ""}


async def _branches(session):
    chaoyang = await do_save_branch(session, wo_actor(), branch=None, name="朝阳营业厅", district="朝阳区",
                                    address="朝阳区建设路88号", phone="024-88880001", weekly_hours=WEEK)
    heping = await do_save_branch(session, wo_actor(), branch=None, name="和平营业厅", district="和平区",
                                  address="和平区南京街12号", phone="024-88880002", weekly_hours=WEEK)
    await do_set_holiday(session, wo_actor(), chaoyang, date(2026, 12, 12), "09:00-12:00", "调休上班")
    await do_set_holiday(session, wo_actor(), chaoyang, date(2027, 1, 1), "", "元旦")
    await do_set_holiday(session, wo_actor(), chaoyang, date(2027, 2, 17), "", "春节")  # beyond 30 days
    await commit(session)
    return chaoyang, heping


async def test_named_district_with_hours_open_now_and_holidays(session, factory, new_chat) -> None:
    await _branches(session)
    chat = await new_chat()
    text = await chat.say("朝阳区营业厅几点开门")
    assert "朝阳营业厅" in text and "朝阳区建设路88号" in text and "024-88880001" in text
    assert "今天营业时间 08:30-17:00，现在正在营业" in text
    assert "周一至周五 08:30-17:00；周六 09:00-16:00；周日休息" in text
    assert "12月12日（周六）营业时间调整为 09:00-12:00（调休上班）" in text and "01月01日（周五）休息（元旦）" in text
    assert "春节" not in text and "和平营业厅" not in text
    assert "和平区营业厅" in chat.buttons() and await chat.flow() is None


async def test_closed_now_in_the_evening(session, factory, new_chat) -> None:
    await _branches(session)
    clock.set_now(datetime(2026, 12, 7, 19, 0, tzinfo=SHANGHAI))
    chat = await new_chat()
    text = await chat.say("和平区营业厅在哪")
    assert "和平营业厅" in text and "现在不在营业时间" in text


async def test_verified_customer_address_and_a_named_district_wins(session, factory, new_chat) -> None:
    await _branches(session)
    customer = await factory.customer()  # lives in 朝阳区
    chat = await new_chat(customer.id)
    text = await chat.say("营业厅在哪")
    assert "根据您的地址" in text and "朝阳营业厅" in text
    text = await chat.say("那和平区的营业厅在哪里")
    assert "和平营业厅" in text and "朝阳营业厅" not in text


async def test_asks_with_buttons_reprompts_and_takes_a_correction(session, factory, new_chat) -> None:
    await _branches(session)
    chat = await new_chat()
    text = await chat.say("营业厅在哪")
    assert "请问您在哪个区" in text and sorted(chat.buttons()) == sorted(["朝阳区", "和平区"])
    text = await chat.say("不知道啊")
    assert "没能识别" in text and await chat.flow() == "branch"
    text = await chat.say("朝阳区，说错了，和平区")
    assert "和平营业厅" in text and "朝阳营业厅" not in text


async def test_button_and_a_district_without_branch(session, factory, new_chat) -> None:
    await _branches(session)
    chat = await new_chat()
    await chat.say("营业厅在哪")
    text = await chat.press("朝阳区")
    assert "朝阳营业厅" in text
    chat2 = await new_chat()
    text = await chat2.say("沈北新区有营业厅吗")
    assert "沈北新区暂时没有营业厅" in text and "朝阳营业厅" in text and "和平营业厅" in text
