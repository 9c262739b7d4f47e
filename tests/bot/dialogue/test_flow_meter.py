"""Meter guidance: type from the message, the verified customer's account, or asked; topic from the message or
asked; corrections replace earlier values."""

from __future__ import annotations

from gasdesk.bot.dialogue.meter import GUIDES, TOPICS, TYPES, guide_text


def test_every_type_and_topic_has_steps() -> None:
    for meter_type in TYPES:
        for topic in TOPICS:
            assert len(GUIDES[(meter_type, topic)]) >= 2
            assert guide_text(meter_type, topic).startswith(f"【{meter_type}")


async def test_type_and_topic_in_one_message(session, new_chat) -> None:
    chat = await new_chat()
    text = await chat.say("IC卡表怎么换电池")
    assert "【IC卡表 · 换电池/电量低】" in text and "正负极" in text and "插一下燃气卡" in text
    assert await chat.flow() is None and "预约维修" in chat.buttons()


async def test_type_from_the_account_then_topic_asked(session, factory, new_chat) -> None:
    customer = await factory.customer(meter_type="smart")
    chat = await new_chat(customer.id)
    text = await chat.say("燃气表怎么用")
    assert "您家登记的是物联网智能表" in text
    text = await chat.press("查看余量")
    assert "【物联网智能表 · 查看余量/读数】" in text and "按一下表上的按键" in text


async def test_asks_type_reprompts_and_a_correction_replaces_it(session, new_chat) -> None:
    chat = await new_chat()
    text = await chat.say("自闭阀跳了怎么复位")
    assert "哪种燃气表" in text and chat.buttons() == ["IC卡表", "物联网智能表", "机械表"]
    text = await chat.say("不清楚")
    assert "需要插卡充值的是 IC卡表" in text and await chat.flow() == "meter_guidance"
    text = await chat.press("机械表")
    assert "【机械表 · 自闭阀关了怎么复位】" in text and "复位提杆" in text


async def test_correction_of_type_while_topic_is_asked(session, new_chat) -> None:
    chat = await new_chat()
    text = await chat.say("我家是IC卡表")
    assert "请问遇到了什么问题" in text and "IC卡表" in text
    text = await chat.say("不对，是机械表，想问电池")
    assert "【机械表 · 换电池/电量低】" in text and "不需要电池" in text


async def test_guide_comes_with_its_picture(session, new_chat) -> None:
    from pathlib import Path

    from sqlalchemy import select

    import gasdesk.channels.webchat as webchat
    from gasdesk.bot.dialogue.meter import GUIDE_IMAGES
    from gasdesk.conversations.models import Message

    chat = await new_chat()
    await chat.say("IC卡表怎么换电池")
    session.expire_all()
    cards = [m for m in await session.scalars(select(Message).where(Message.content_type == "card"))
             if (m.payload or {}).get("card", {}).get("kind") == "guide"]
    assert len(cards) == 1 and "【IC卡表 · 换电池/电量低】" in cards[0].text
    image = cards[0].payload["card"]["image"]
    assert image == GUIDE_IMAGES["电池"]
    for url in GUIDE_IMAGES.values():  # every picture ships with the widget's static files
        svg = Path(webchat.__file__).parent / "static" / url.removeprefix("/static/webchat/")
        assert svg.read_text(encoding="utf-8").startswith("<svg")
