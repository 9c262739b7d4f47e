"""No gas and heating not warm: announced outages first, then self-checks, then a one-click ticket with contact."""

from __future__ import annotations

from datetime import timedelta

from dialogue_kit import T0, tickets

from gasdesk.db import commit
from gasdesk.outages.service import do_announce_outage
from tests.factories import wo_actor


async def _outage(session, kind="gas", district="朝阳区", communities=None):
    outage = await do_announce_outage(session, wo_actor(), kind=kind, district=district,
                                      communities=communities or [], starts_at=T0 - timedelta(hours=1),
                                      ends_at=T0 + timedelta(hours=5), reason="管道施工")
    await commit(session)
    return outage


async def test_no_gas_outage_applies_for_the_verified_customer(session, factory, new_chat) -> None:
    customer = await factory.customer()  # 朝阳区幸福里小区
    await _outage(session, communities=["幸福里小区"])
    chat = await new_chat(customer.id)
    text = await chat.say("家里没气了")
    assert "查到您所在区域有停气公告" in text and "计划停气" in text and "管道施工" in text and "幸福里小区" in text
    text = await chat.press("知道了")
    assert await chat.flow() is None and await tickets() == []


async def test_no_gas_outage_elsewhere_does_not_apply(session, factory, new_chat) -> None:
    customer = await factory.customer()
    await _outage(session, communities=["别的小区"])
    await _outage(session, district="和平区")
    chat = await new_chat(customer.id)
    text = await chat.say("家里没气了")
    assert "计划停气" not in text and "表前阀" in text and "自闭阀" in text


async def test_no_gas_one_click_ticket_for_the_verified_customer(session, factory, new_chat) -> None:
    customer = await factory.customer(meter_type="ic_card")
    chat = await new_chat(customer.id)
    text = await chat.say("燃气灶打不着火，没气")
    assert "表前阀" in text and "IC卡表" in text and "余量" in text and "电池" in text and "自闭阀" in text
    assert chat.buttons() == ["已检查，还是没气", "恢复了"]
    text = await chat.press("已检查，还是没气")
    [ticket] = await tickets("no_gas")
    assert ticket.number in text and "分钟内" in text
    assert ticket.customer_id == customer.id and ticket.contact_phone == customer.phones[0].phone
    assert ticket.district == "朝阳区" and ticket.conversation_id == chat.conversation.id
    assert "打不着火" in ticket.description and await chat.flow() is None


async def test_no_gas_recovered_ends_it(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("家里没气了")
    text = await chat.say("恢复了")
    assert "太好了" in text and await chat.flow() is None and await tickets() == []


async def test_no_gas_anonymous_asks_area_phone_address_with_corrections(session, factory, new_chat) -> None:
    await _outage(session, district="和平区", communities=["别的小区"])
    chat = await new_chat()
    text = await chat.say("家里没气了")
    assert "哪个区、哪个小区" in text
    text = await chat.say("和平区幸福里小区")
    assert "计划停气" not in text and "表前阀" in text
    text = await chat.say("随便说点什么")
    assert "请点击下方按钮" in text
    await chat.press("已检查，还是没气")
    text = await chat.say("13800001111")
    assert "详细地址" in text
    text = await chat.say("电话写错了，是13900002222")  # a correction while the address is asked
    assert "详细地址" in text
    text = await chat.say("和平区幸福里小区3号楼2单元501")
    [ticket] = await tickets("no_gas")
    assert ticket.number in text and "139****2222" in text
    assert ticket.contact_phone == "13900002222" and ticket.address_text == "和平区幸福里小区3号楼2单元501"
    assert ticket.customer_id is None and ticket.district == "和平区"


async def test_no_gas_outage_in_the_mentioned_area_then_continue(session, factory, new_chat) -> None:
    await _outage(session, district="和平区")
    chat = await new_chat()
    text = await chat.say("和平区幸福里小区3号楼2单元501家里没气了")
    assert "和平区全区计划停气" in text
    text = await chat.press("继续排查")
    assert "表前阀" in text


async def test_heating_outage(session, factory, new_chat) -> None:
    customer = await factory.customer()
    await _outage(session, kind="heating")
    chat = await new_chat(customer.id)
    text = await chat.say("暖气不热")
    assert "计划停暖" in text and "管道施工" in text


async def test_heating_selfcheck_and_ticket_to_the_heating_team(session, factory, new_chat) -> None:
    customer = await factory.customer()
    await _outage(session, kind="gas")  # a gas outage is not a heating outage
    chat = await new_chat(customer.id)
    text = await chat.say("暖气不够热，屋里才16度")
    assert "放气" in text and "阀门" in text and "过滤器" in text and "邻居" in text and "18℃" in text
    assert "计划停" not in text
    text = await chat.press("已检查，还是不热")
    [ticket] = await tickets("repair")
    assert ticket.number in text and ticket.team_id == 3 and "暖气" in ticket.title
    assert "室内温度：16℃" in ticket.description and ticket.contact_phone == customer.phones[0].phone


async def test_heating_recovered(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("暖气不热")
    text = await chat.press("变热了")
    assert "太好了" in text and await tickets() == []
