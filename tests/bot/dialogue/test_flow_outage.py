"""停气/停暖 questions answered from the published notices: the linked customer's address (down to the
building), or the area the resident gives; no notice → the no-gas self-check goes on as before."""

from __future__ import annotations

from datetime import timedelta

from dialogue_kit import T0, tickets

from gasdesk.db import commit
from gasdesk.outages.service import AreaSpec, check_outage, do_create_outage, do_publish_outage
from tests.factories import wo_actor


async def _notice(session, *areas: AreaSpec, kind: str = "gas", reason: str = "燃气管道抢修",
                  planned: bool = False) -> None:
    notice = await do_create_outage(session, wo_actor(), check_outage(
        kind=kind, planned=planned, areas=areas, starts_at=T0 - timedelta(hours=1), ends_at=T0 + timedelta(hours=4),
        expected_restore_at=T0 + timedelta(hours=3), reason=reason))
    await do_publish_outage(session, wo_actor(), notice)
    await commit(session)


def _home(building: str) -> dict[str, str]:
    return {"district": "和平区", "community": "幸福里小区", "building": building, "unit": "2", "room": "501"}


async def test_why_no_gas_for_a_linked_resident_in_the_building(session, factory, new_chat) -> None:
    customer = await factory.customer(address=_home("3"))
    await _notice(session, AreaSpec(district="和平区", community="幸福里小区", building="3"))
    chat = await new_chat(customer.id)
    text = await chat.say("为什么没气了")
    assert "停气公告" in text and "突发停气" in text and "燃气管道抢修" in text and "预计" in text
    await chat.press("知道了")
    assert await chat.flow() is None and await tickets() == []


async def test_a_notice_for_another_building_does_not_answer(session, factory, new_chat) -> None:
    customer = await factory.customer(address=_home("4"))
    await _notice(session, AreaSpec(district="和平区", community="幸福里小区", building="3"))
    chat = await new_chat(customer.id)
    text = await chat.say("我家没气")
    assert "公告" not in text and "表前阀" in text  # the self-check goes on


async def test_heating_question_from_an_anonymous_resident_giving_the_area(session, new_chat) -> None:
    await _notice(session, AreaSpec(district="和平区", community="幸福里小区"), kind="heating", reason="换热站检修",
                  planned=True)
    chat = await new_chat()
    text = await chat.say("怎么停暖了")
    assert "哪个区" in text
    text = await chat.say("和平区幸福里小区")
    assert "停暖公告" in text and "换热站检修" in text and "计划停暖" in text
    assert await chat.flow() is None


async def test_no_notice_for_the_area_offers_the_self_check(session, new_chat) -> None:
    await _notice(session, AreaSpec(district="和平区", community="幸福里小区"))
    chat = await new_chat()
    await chat.say("为什么停气了")
    text = await chat.say("朝阳区阳光花园")
    assert "没有查到" in text and any("没气" in b for b in chat.buttons())
