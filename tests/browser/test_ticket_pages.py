"""Work-order pages in a real browser: the dispatcher board, the crew's phone page, the ticket detail
history, list filters with saved views, the appointment calendar and guidance-only services."""

from __future__ import annotations

import struct
import zlib
from datetime import timedelta

import pytest

from gasdesk.audit.service import Actor
from gasdesk.clock import to_local, utcnow
from gasdesk.db import commit
from gasdesk.tickets import service
from gasdesk.tickets.schemas import TicketCreate
from tests.browser.conftest import login_as, screenshot
from tests.factories import staff_user

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

SYSTEM = Actor.system("test", "test")



async def _ticket(session, **fields):
    data = {"type": "repair", "description": "厨房燃气表后阀门漏气", "district": "朝阳区",
            "address_text": "朝阳区幸福里小区3号楼2单元501室", "contact_name": "刘芳", "contact_phone": "13912345678",
            **fields}
    ticket = await service.do_create_ticket(session, SYSTEM, TicketCreate(**data))
    await commit(session)
    return ticket


async def _act(session, ticket, action: str, **kwargs):
    await session.refresh(ticket, ["events"])
    await service.do_ticket_action(session, SYSTEM, ticket, action, **kwargs)
    await commit(session)


def _png() -> bytes:
    """A valid 2×2 PNG (the upload check reads the magic bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x0b\x6e\x4f" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def test_dispatcher_assigns_new_ticket_from_board(live_server, browser, factory, session) -> None:
    dispatcher = await staff_user(session, "dispatcher", display_name="调度小李")
    await staff_user(session, "field_crew", display_name="王师傅")
    normal = await _ticket(session)
    urgent = await _ticket(session, type="gas_leak", description="楼道有煤气味")

    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await login_as(page, live_server, dispatcher.username)
    await page.goto(live_server + "/dispatch")
    new_column = page.locator("section[data-status=new]")
    await new_column.locator(f"[data-ticket='{normal.number}']").wait_for()
    numbers = await new_column.locator("article.tcard").evaluate_all("els => els.map(e => e.dataset.ticket)")
    assert numbers.index(urgent.number) < numbers.index(normal.number)  # unassigned urgent first
    assert "已超时" not in await new_column.inner_text() and "响应剩余" in await new_column.inner_text()
    await screenshot(page, "dispatch-board-before")

    card = new_column.locator(f"[data-ticket='{normal.number}']")
    await card.locator("select[name=crew_id]").select_option(label="王师傅")
    await card.locator("button:has-text('派单')").click()
    await page.wait_for_selector(f"text=工单 {normal.number} 已派给 王师傅")
    assigned = page.locator(f"section[data-status=assigned] [data-ticket='{normal.number}']")
    await assigned.wait_for()
    assert "外勤：王师傅" in await assigned.inner_text()
    assert await page.locator(f"section[data-status=new] [data-ticket='{normal.number}']").count() == 0
    assert page.url.endswith("/dispatch")  # no reload: htmx swapped the board
    await screenshot(page, "dispatch-board-assigned")


async def test_crew_marks_arrival_and_writes_back_on_phone(live_server, browser, factory, session, tmp_path) -> None:
    crew = await staff_user(session, "field_crew", display_name="王师傅")
    ticket = await _ticket(session)
    await _act(session, ticket, "assign", crew_id=crew.id)
    other = await _ticket(session, description="别人的工单")  # not assigned to this crew: not listed

    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await login_as(page, live_server, crew.username)
    await page.goto(live_server + "/crew")
    card = page.locator(f"[data-ticket='{ticket.number}']")
    await card.wait_for()
    assert await page.locator(f"[data-ticket='{other.number}']").count() == 0
    assert await card.locator("a[href='tel:13912345678']").count() == 1
    assert "朝阳区幸福里小区3号楼2单元501室" in await card.inner_text()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    await screenshot(page, "crew-mobile-list")

    await card.locator("text=打开工单").click()
    await page.click("#arrive")
    await page.wait_for_selector("text=已记录到达现场")
    assert await page.inner_text("#crew-status") == "处理中"
    assert await page.get_attribute("input[name=photos]", "capture") is not None
    photo = tmp_path / "valve.png"
    photo.write_bytes(_png())
    await page.fill("textarea[name=result]", "更换表后阀门一个，检测无泄漏")
    await page.fill("input[name=material_name]", "表后阀门")
    await page.fill("input[name=material_qty]", "1")
    await page.click("[data-add-material]")
    await page.locator("input[name=material_name]").nth(1).fill("燃气软管")
    await page.locator("input[name=material_qty]").nth(1).fill("2")
    await page.set_input_files("input[name=photos]", str(photo))
    await page.fill("input[name=signature_name]", "刘芳")
    assert await page.is_checked("input[name=resolved]")
    await screenshot(page, "crew-mobile-writeback-form")
    await page.click("#submit-writeback")
    await page.wait_for_selector("text=结果已回写")
    assert await page.inner_text("#crew-status") == "已解决"
    result = await page.inner_text("#crew-result")
    assert "表后阀门 × 1" in result and "燃气软管 × 2" in result and "刘芳" in result
    assert await page.locator("#crew-result img").count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await screenshot(page, "crew-mobile-resolved")
    await page.goto(live_server + "/crew")
    assert await page.locator(f"[data-ticket='{ticket.number}']").count() == 0  # resolved: off the list
    await context.close()


async def test_ticket_detail_shows_history_in_order_and_chinese_errors(live_server, browser, factory, session) -> None:
    supervisor = await staff_user(session, "supervisor", display_name="质检老周")
    crew = await staff_user(session, "field_crew", display_name="王师傅")
    customer = await factory.customer(name="刘芳", phones=["13912345678"])
    ticket = await _ticket(session, customer_id=customer.id)
    await _act(session, ticket, "assign", crew_id=crew.id, note="就近派单")
    await _act(session, ticket, "start", note="到达现场")
    await _act(session, ticket, "resolve", note="已更换阀门")

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await login_as(page, live_server, supervisor.username)
    await page.goto(f"{live_server}/tickets/{ticket.id}")
    actions = await page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.action)")
    assert actions == ["create", "assign", "start", "resolve"]
    timeline = await page.inner_text("#timeline")
    assert "新建 → 已派单" in timeline and "已派单 → 处理中" in timeline and "就近派单" in timeline
    first_at = to_local(ticket.created_at).strftime("%Y-%m-%d %H:%M")  # type: ignore[union-attr]
    assert first_at in timeline  # Asia/Shanghai
    assert await page.locator(f"a[href='/customers/{customer.id}']").count() == 1
    assert await page.locator("form[data-action=close]").count() == 1  # resolved → close / reopen
    assert await page.locator("form[data-action=reopen]").count() == 1

    # Someone else closes it meanwhile: reopening still works, but a stale close answers 409 in Chinese.
    await _act(session, ticket, "close")
    await page.click("form[data-action=close] button")
    await page.wait_for_selector("#action-error")
    assert "不能关闭" in await page.inner_text("#action-error")
    await page.fill("form[data-action=reopen] textarea[name=note]", "居民反映仍有异味")
    await page.click("form[data-action=reopen] button")
    await page.wait_for_selector("text=操作成功")
    assert await page.inner_text("#ticket-status") == "重新打开"
    actions = await page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.action)")
    assert actions == ["create", "assign", "start", "resolve", "close", "reopen"]
    assert "居民反映仍有异味" in await page.inner_text("#timeline")
    await screenshot(page, "ticket-detail-history")


async def test_list_filters_by_status_and_reapplies_saved_view(live_server, browser, factory, session) -> None:
    agent = await staff_user(session, "agent", display_name="坐席小赵")
    crew = await staff_user(session, "field_crew", display_name="王师傅")
    fresh = await _ticket(session, description="新的报修")
    assigned = await _ticket(session, type="no_gas", description="家里没气了", district="和平区")
    await _act(session, assigned, "assign", crew_id=crew.id)
    cancelled = await _ticket(session, type="consultation", description="咨询")
    await _act(session, cancelled, "cancel", note="重复工单")

    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await login_as(page, live_server, agent.username)
    await page.goto(live_server + "/tickets")
    results = page.locator("#ticket-results")
    for t in (fresh, assigned, cancelled):
        await results.locator(f"text={t.number}").wait_for()
    await page.check("input[name=status][value=assigned]")
    await page.wait_for_function(
        f"() => !document.querySelector('#ticket-results').innerText.includes('{fresh.number}')")
    text = await results.inner_text()
    assert assigned.number in text and cancelled.number not in text and "共 1 条" in text
    assert "status=assigned" in page.url  # the filters are in the address, so reload and back work
    await page.fill("input[name=view_name]", "已派单工单")
    await page.click("button:has-text('保存视图')")
    await page.wait_for_selector("#saved-views a:has-text('已派单工单')")
    await screenshot(page, "ticket-list-filtered")

    await page.goto(live_server + "/tickets")
    await results.locator(f"text={fresh.number}").wait_for()
    await page.click("#saved-views a:has-text('已派单工单')")
    await page.wait_for_selector("text=共 1 条")
    assert await page.is_checked("input[name=status][value=assigned]")
    text = await results.inner_text()
    assert assigned.number in text and fresh.number not in text
    # search by number narrows further, without reloading
    await page.uncheck("input[name=status][value=assigned]")
    await page.fill("#q", cancelled.number)
    await page.wait_for_function(
        f"() => document.querySelector('#ticket-results').innerText.includes('{cancelled.number}')"
        f" && !document.querySelector('#ticket-results').innerText.includes('{fresh.number}')")
    await screenshot(page, "ticket-list-saved-view")


async def test_calendar_shows_booking_and_generates_slots(live_server, browser, factory, session) -> None:
    from gasdesk.appointments.service import book_appointment, do_generate_slots

    dispatcher = await staff_user(session, "dispatcher", display_name="调度小李")
    customer = await factory.customer(name="刘芳")  # 朝阳区
    today = to_local(utcnow()).date()  # type: ignore[union-attr]
    first_day = today + timedelta(days=7 - today.weekday())  # next Monday: the three days share one week
    await do_generate_slots(session, district="朝阳区", first_day=first_day, days=3,
                            windows=[("09:00", "12:00"), ("14:00", "17:00")], capacity=4)
    await commit(session)
    from sqlalchemy import select

    from gasdesk.appointments.models import AppointmentSlot

    slot = await session.scalar(select(AppointmentSlot).where(AppointmentSlot.district == "朝阳区")
                                .order_by(AppointmentSlot.start))
    booking = await book_appointment(session, SYSTEM, customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(session)

    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await login_as(page, live_server, dispatcher.username)
    await page.goto(f"{live_server}/appointments/calendar?district=朝阳区&week={first_day.isoformat()}")
    cell = page.locator(f"td[data-slot='{slot.id}']")
    await cell.wait_for()
    assert "1/4" in await cell.inner_text()
    await cell.locator(f"a:has-text('{booking.ticket.number}')").wait_for()
    assert await page.locator("table.calendar td[data-slot]").count() == 6
    await screenshot(page, "appointment-calendar")

    await page.fill("form[action='/appointments/calendar/generate'] input[name=district]", "和平区")
    await page.fill("form[action='/appointments/calendar/generate'] input[name=days]", "2")
    await page.click("form[action='/appointments/calendar/generate'] button")
    await page.wait_for_selector("text=已生成 4 个时段")
    assert await page.locator("table.calendar td[data-slot]").count() >= 2
    assert await page.locator("select[name=district] option").all_inner_texts() == ["和平区", "朝阳区"]


async def test_new_ticket_shows_guidance_and_books_a_slot(live_server, browser, factory, session) -> None:
    from gasdesk.appointments.service import do_generate_slots

    agent = await staff_user(session, "agent", display_name="坐席小赵")
    customer = await factory.customer(name="刘芳", phones=["13912345678"], account_no="2109876543")
    await do_generate_slots(session, district="朝阳区",
                            first_day=(to_local(utcnow() + timedelta(days=1))).date(),  # type: ignore[union-attr]
                            days=2, windows=[("09:00", "12:00")], capacity=2)
    await commit(session)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await login_as(page, live_server, agent.username)
    await page.goto(live_server + "/tickets/new")
    await page.select_option("select[name=service_type]", "阀管改造")
    await page.wait_for_selector("#guidance")
    guidance = await page.inner_text("#guidance")
    assert "不支持在线预约" in guidance and "办理地点" in guidance
    assert await page.locator("input[name=slot_id]").count() == 0  # guidance instead of booking
    await screenshot(page, "ticket-new-guidance")

    await page.fill("input[name=customer_q]", "2109876543")
    await page.click("button:has-text('查找客户')")
    await page.click("[data-pick-customer]")
    await page.wait_for_selector("text=已选择：刘芳")
    await page.select_option("select[name=type]", "service_appointment")
    await page.select_option("select[name=service_type]", "安检")
    await page.wait_for_selector("input[name=slot_id][value]:not([value=''])")
    await page.locator("input[name=slot_id]:not([value=''])").first.check()
    await page.fill("textarea[name=description]", "居民要求年度入户安检")
    await page.click("button:has-text('提交工单')")
    await page.wait_for_selector("text=工单已创建")
    body = await page.inner_text("main")
    assert "预约时段" in body and "已预约" in body and "刘芳" in body and "13912345678" in body
    assert await page.locator(f"a[href='/customers/{customer.id}']").count() == 1
    await screenshot(page, "ticket-new-booked")


async def test_admin_adds_webhook_sees_secret_once_and_delivery_log(live_server, browser, factory, session) -> None:
    admin = await staff_user(session, "admin", display_name="管理员")
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await login_as(page, live_server, admin.username)
    await page.goto(live_server + "/admin/webhooks")
    await page.fill("input[name=url]", "ftp://bad.example")
    await page.click("button:has-text('添加')")
    await page.wait_for_selector("text=Webhook 地址必须以 http:// 或 https:// 开头")
    await page.fill("input[name=url]", "http://127.0.0.1:9/hook")  # the server's own network: refused
    await page.click("button:has-text('添加')")
    await page.wait_for_selector("text=回环地址")
    await page.fill("input[name=name]", "工单系统")
    await page.fill("input[name=url]", "https://erp.invalid/hook")
    await page.click("button:has-text('添加')")
    secret = await page.inner_text("#webhook-secret")
    assert secret.startswith("whsec_")
    ticket = await _ticket(session)  # queues a ticket.created delivery
    await page.goto(live_server + "/admin/webhooks")
    assert secret not in await page.inner_text("body")  # shown once only
    body = await page.inner_text("body")
    assert "工单系统" in body and "ticket.created" in body and ("待发送" in body or "失败" in body)
    assert ticket.id
    await screenshot(page, "admin-webhooks")


async def test_new_ticket_prefills_from_left_message_and_conversation(live_server, browser, factory, session) -> None:
    from gasdesk.conversations.models import LeftMessage
    from tests.factories import bot_conversation

    supervisor = await staff_user(session, "supervisor", display_name="班长老周")
    left = LeftMessage(name="陈静", phone="13800001234", content="晚上家里暖气不热，明天上午请来看看", reason="after_hours",
                       status="open", created_at=utcnow())
    session.add(left)
    await commit(session)
    conversation = await bot_conversation(session)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await login_as(page, live_server, supervisor.username)
    await page.goto(f"{live_server}/tickets/new?conversation_id={conversation.id}")
    await page.wait_for_selector(f"text=已根据会话 #{conversation.id} 预填")
    assert await page.input_value("input[name=conversation_id]") == str(conversation.id)

    await page.goto(f"{live_server}/tickets/new?left_message_id={left.id}")
    await page.wait_for_selector(f"text=已根据留言 #{left.id} 预填")
    assert await page.input_value("input[name=contact_phone]") == "13800001234"
    assert "暖气不热" in await page.input_value("textarea[name=description]")
    await page.click("button:has-text('提交工单')")
    await page.wait_for_selector("text=工单已创建")
    await page.goto(f"{live_server}/tickets/new?left_message_id={left.id}")
    await page.wait_for_selector("text=该留言已生成工单")
    await page.click("button:has-text('提交工单')")
    await page.wait_for_selector("#form-error")
    assert "该留言已生成工单" in await page.inner_text("#form-error")  # the 409, in Chinese


async def test_new_ticket_from_a_conversation_with_a_ticket_offers_to_add_to_it(live_server, browser, factory,
                                                                                 session) -> None:
    """The bot's leak ticket and the agent's 生成工单 on the same conversation: the form offers the open ticket
    first (补充到此工单), and a ticket made anyway is linked to it."""
    from gasdesk.conversations.models import SenderType
    from gasdesk.conversations.service import do_post_message
    from tests.factories import bot_conversation

    supervisor = await staff_user(session, "supervisor", display_name="班长老周")
    conversation = await bot_conversation(session)
    for text in ("你好", "厨房里好大一股煤气味", "和平区幸福里小区3号楼2单元501"):
        await do_post_message(session, conversation, SenderType.resident, text=text)
    leak = await _ticket(session, type="gas_leak", priority="urgent", conversation_id=conversation.id)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await login_as(page, live_server, supervisor.username)
    await page.goto(f"{live_server}/tickets/new?conversation_id={conversation.id}")
    offer = page.locator(f"#existing-tickets form[data-ticket='{leak.number}']")
    await offer.wait_for()
    assert "煤气味" in await offer.locator("textarea[name=note]").input_value()
    assert "你好" not in await page.input_value("textarea[name=description]")
    await screenshot(page, "ticket-new-existing-ticket")
    await offer.locator("button:has-text('补充到此工单')").click()
    await page.wait_for_selector("text=已补充到工单")
    assert "煤气味" in await page.inner_text("#timeline")

    await page.goto(f"{live_server}/tickets/new?conversation_id={conversation.id}")
    await page.click(f"button:has-text('仍要新建工单（关联 {leak.number}）')")
    await page.wait_for_selector("text=工单已创建")
    assert leak.number in await page.inner_text("dl.fields")
