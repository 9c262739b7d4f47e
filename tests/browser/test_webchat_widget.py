"""The resident chat widget (/chat, /widget.js) in a real browser against the real server: greeting, acks,
reload without duplicates, delivery exactly once across socket drops, overflow leave-message, uploads,
the live queue with an agent, rating and starting over. Mobile viewport for the resident."""

from __future__ import annotations

import struct
import zlib

import httpx
import pytest
from sqlalchemy import select

from gasdesk.conversations.models import Conversation, LeftMessage, Message
from gasdesk.db import commit
from gasdesk.routing.service import do_set_presence, do_set_skills
from tests.browser.conftest import MOBILE, screenshot
from tests.factories import TEST_PASSWORD

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

MOBILE_ZH = {**MOBILE, "locale": "zh-CN"}
GREETING = "li.gd-them:has-text('智能客服')"


def _png(width: int = 4, height: int = 3) -> bytes:
    """A tiny valid PNG (orange pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xf9\x73\x16" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def _open_chat(browser, base: str):
    context = await browser.new_context(**MOBILE_ZH)
    page = await context.new_page()
    await page.goto(base + "/chat")
    await page.wait_for_selector(GREETING)
    await page.wait_for_function("() => window.gasdeskChat && window.gasdeskChat.state.welcomed")
    return page


async def _send(page, text: str) -> None:
    await page.fill("#input", text)
    await page.press("#input", "Enter")


async def _wait_acked(page, text: str) -> None:
    await page.wait_for_selector(f"li.gd-me[data-seq]:has-text('{text}')")
    await page.wait_for_function("() => !document.querySelector('li.gd-pending')")


async def _resident_rows(session, text: str) -> list[Message]:
    session.expire_all()
    rows = await session.scalars(select(Message).where(Message.sender_type == "resident"))
    return [m for m in rows if m.text == text]  # bodies are encrypted at rest: compare after decryption


async def _bubbles(page, text: str) -> int:
    return await page.locator("#list li.gd-me", has_text=text).count()


async def test_resident_is_greeted_and_message_is_acked(live_server, browser, session) -> None:
    page = await _open_chat(browser, live_server)
    greeting = await page.inner_text(GREETING)
    assert "智能客服" in greeting
    assert await page.locator("#btn-handoff").is_visible()  # 转人工 always visible
    assert await page.locator(".gd-quick button", has_text="燃气业务").is_visible()
    await _send(page, "家里燃气表没气了怎么办")
    await page.wait_for_selector("li.gd-me:has-text('家里燃气表没气了怎么办')")
    await _wait_acked(page, "家里燃气表没气了怎么办")
    assert "发送中" not in await page.inner_text("#list")
    # the bot answered after the resident (ordered by seq)
    seqs = await page.eval_on_selector_all("#list li[data-seq]", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(seqs) and len(seqs) >= 3
    stored = await page.evaluate("() => JSON.parse(localStorage.getItem('gasdesk.visitor'))")
    assert stored["token"]
    assert len(await _resident_rows(session, "家里燃气表没气了怎么办")) == 1
    await screenshot(page, "webchat-greeting")


async def test_reload_resumes_same_conversation_without_duplicates(live_server, browser) -> None:
    page = await _open_chat(browser, live_server)
    await page.click(".gd-quick button:has-text('缴费账单')")  # quick reply sends its text
    await _wait_acked(page, "缴费账单")
    await page.wait_for_selector("li.gd-them:has-text('营业厅')")
    await _send(page, "谢谢")
    await _wait_acked(page, "谢谢")
    await page.wait_for_function("() => document.querySelectorAll('#list li[data-seq]').length >= 5")
    before = await page.eval_on_selector_all("#list li[data-seq]", "els => els.map(e => e.dataset.seq)")
    conversation_id = await page.evaluate("() => window.gasdeskChat.state.conversationId")

    await page.reload()
    await page.wait_for_function("() => window.gasdeskChat && window.gasdeskChat.state.welcomed")
    await page.wait_for_timeout(500)  # any (wrong) replay would have arrived by now
    after = await page.eval_on_selector_all("#list li[data-seq]", "els => els.map(e => e.dataset.seq)")
    assert after == before
    assert await page.evaluate("() => window.gasdeskChat.state.conversationId") == conversation_id
    assert await _bubbles(page, "谢谢") == 1
    assert await page.locator("#list li", has_text="智能客服小暖").count() >= 1

    # a new message after the reload continues the same seq line
    await _send(page, "再问一下")
    await _wait_acked(page, "再问一下")
    last = await page.evaluate("() => window.gasdeskChat.state.lastSeq")
    assert last > max(int(s) for s in before)


async def test_message_typed_while_disconnected_is_delivered_once(live_server, browser, session) -> None:
    page = await _open_chat(browser, live_server)
    # Keep the socket down: reconnects go to a path that refuses, until the test lets them through.
    await page.evaluate("""() => {
        const Orig = window.WebSocket;
        window.__blockWs = true;
        function Patched(url, protocols) {
            return new Orig(window.__blockWs ? url.replace('/ws/webchat', '/ws/blocked') : url, protocols);
        }
        Patched.prototype = Orig.prototype;
        Object.assign(Patched, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
        window.WebSocket = Patched;
        window.gasdeskChat.socket().close();
    }""")
    await page.wait_for_selector("#conn-banner:has-text('连接已断开，正在重连…')")
    await _send(page, "断网时发的消息")
    await page.wait_for_selector("li.gd-pending:has-text('断网时发的消息') >> text=发送中")
    outbox = await page.evaluate("() => JSON.parse(localStorage.getItem('gasdesk.outbox'))")
    assert [i["text"] for i in outbox] == ["断网时发的消息"]  # persisted: survives a reload too
    await screenshot(page, "webchat-disconnected")

    await page.evaluate("() => { window.__blockWs = false; }")
    await _wait_acked(page, "断网时发的消息")
    await page.wait_for_timeout(500)
    assert await _bubbles(page, "断网时发的消息") == 1
    assert len(await _resident_rows(session, "断网时发的消息")) == 1
    assert await page.evaluate("() => JSON.parse(localStorage.getItem('gasdesk.outbox'))") == []


async def test_lost_ack_is_resent_with_same_id_and_stored_once(live_server, browser, session) -> None:
    page = await _open_chat(browser, live_server)
    # The socket dies right after the message frame left: the server stores it, the ack never arrives.
    await page.evaluate("""() => {
        const orig = WebSocket.prototype.send;
        window.__frames = [];
        WebSocket.prototype.send = function (data) {
            window.__frames.push(JSON.parse(data));
            orig.call(this, data);
            if (!window.__dropped && String(data).includes('"type":"message"')) {
                window.__dropped = true;
                this.close();
            }
        };
    }""")
    await _send(page, "户号2109876543的燃气费")
    await _wait_acked(page, "户号2109876543的燃气费")
    await page.wait_for_timeout(800)
    assert await _bubbles(page, "户号2109876543的燃气费") == 1
    assert len(await _resident_rows(session, "户号2109876543的燃气费")) == 1
    frames = await page.evaluate("() => window.__frames")
    sent = [f for f in frames if f["type"] == "message"]
    assert len(sent) == 2 and sent[0]["client_msg_id"] == sent[1]["client_msg_id"]  # resent, same id
    hellos = [f for f in frames if f["type"] == "hello"]
    assert hellos and hellos[-1]["after_seq"] >= 1 and hellos[-1]["conversation_id"]
    seqs = await page.eval_on_selector_all("#list li[data-seq]", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(set(seqs))


async def test_gap_in_seq_triggers_resume(live_server, browser) -> None:
    page = await _open_chat(browser, live_server)
    await _send(page, "你好")
    await _wait_acked(page, "你好")
    await page.wait_for_function("() => document.querySelectorAll('#list li[data-seq]').length >= 3")
    # Forget the last two messages locally, then let a later one arrive: the widget must ask for the gap.
    count = await page.evaluate("""() => {
        const s = window.gasdeskChat.state;
        const keep = s.lastSeq - 2;
        for (const k of Object.keys(s.msgs)) if (Number(k) > keep) delete s.msgs[k];
        document.querySelectorAll('#list li[data-seq]').forEach(li => { if (Number(li.dataset.seq) > keep) li.remove(); });
        s.lastSeq = keep;
        return document.querySelectorAll('#list li[data-seq]').length;
    }""")
    await _send(page, "燃气业务")
    await page.wait_for_selector("li.gd-me[data-seq]:has-text('燃气业务')")
    await page.wait_for_function(f"() => document.querySelectorAll('#list li[data-seq]').length >= {count + 4}")
    seqs = await page.eval_on_selector_all("#list li[data-seq]", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == list(range(1, len(seqs) + 1))  # gap filled, in order, no duplicates


async def test_handoff_without_agents_offers_leave_message(live_server, browser, session) -> None:
    page = await _open_chat(browser, live_server)
    await page.click("#btn-handoff")
    card = page.locator("[data-card=leave_message]")
    await card.wait_for()
    assert "没有空闲的人工客服" in await page.inner_text("#list")
    await card.locator("button[type=submit]").click()
    await card.locator("text=请填写手机号").wait_for()  # client-side check first
    await card.locator("input[name=phone]").fill("12345")
    await card.locator("textarea[name=content]").fill("厨房有点煤气味，麻烦回电")
    await card.locator("button[type=submit]").click()
    await card.locator("text=请填写正确的手机号").wait_for()
    await card.locator("input[name=name]").fill("王先生")
    await card.locator("input[name=phone]").fill("13812345678")
    await card.locator("button[type=submit]").click()
    await page.wait_for_selector("li.gd-sys:has-text('您的留言已收到')")
    await card.locator("text=留言已提交").wait_for()
    session.expire_all()
    rows = list(await session.scalars(select(LeftMessage)))
    assert len(rows) == 1
    assert rows[0].phone == "13812345678" and rows[0].content == "厨房有点煤气味，麻烦回电"
    assert rows[0].name == "王先生" and rows[0].reason == "no_agent" and rows[0].skill_group_id == 1
    await screenshot(page, "webchat-leave-message")

    await page.reload()  # the submitted card stays submitted
    await page.wait_for_function("() => window.gasdeskChat && window.gasdeskChat.state.welcomed")
    await page.locator("[data-card=leave_message] >> text=留言已提交").wait_for()
    assert await page.locator("[data-card=leave_message] form").count() == 0


async def test_upload_image_and_file_and_rejections(live_server, browser, session) -> None:
    page = await _open_chat(browser, live_server)
    await page.set_input_files("#file-input", files=[{"name": "表具照片.png", "mimeType": "image/png", "buffer": _png()}])
    img = page.locator("li.gd-me[data-seq] img")
    await img.wait_for()
    await page.wait_for_function("() => { const i = document.querySelector('li.gd-me[data-seq] img');"
                                 " return i && i.complete && i.naturalWidth === 4; }")
    assert "?v=" in await img.get_attribute("src")
    await screenshot(page, "webchat-image")
    await img.click()
    await page.wait_for_selector("#lightbox:not([hidden]) img")
    await page.click("#lightbox-close")

    await page.set_input_files("#file-input", files=[{"name": "说明.txt", "mimeType": "text/plain",
                                                      "buffer": "燃气表读数 0123".encode()}])
    link = page.locator("li.gd-me[data-seq] a:has-text('下载')")
    await link.wait_for()
    href = await link.get_attribute("href")
    assert "?v=" in href
    body = httpx.get(live_server + href).content
    assert body.decode() == "燃气表读数 0123"
    assert await page.locator("li.gd-me[data-seq] .gd-file-size").first.inner_text() != ""

    await page.set_input_files("#file-input", files=[{"name": "大图.png", "mimeType": "image/png",
                                                      "buffer": b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024)}])
    await page.wait_for_selector("#error-bar:has-text('文件过大（图片最大 5 MB）')")
    await page.set_input_files("#file-input", files=[{"name": "tool.exe", "mimeType": "application/octet-stream",
                                                      "buffer": b"MZ\x90\x00"}])
    await page.wait_for_selector("#error-bar:has-text('不支持的文件类型 .exe')")
    # passes the client checks, rejected by the server: its Chinese message is shown
    await page.set_input_files("#file-input", files=[{"name": "假图片.png", "mimeType": "image/png",
                                                      "buffer": b"not a png at all"}])
    await page.wait_for_selector("#error-bar:has-text('文件内容与扩展名不符')")
    assert await page.locator("li.gd-me").count() == 2
    await screenshot(page, "webchat-uploads")
    session.expire_all()
    kinds = sorted(m.content_type for m in await session.scalars(select(Message).where(Message.sender_type == "resident")))
    assert kinds == ["file", "image"]


async def test_widget_embed_opens_chat_iframe(live_server, browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.set_content(
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>燃气公司</title></head>"
        "<body><h1>某某燃气有限公司</h1><p>欢迎访问</p>"
        f"<script src='{live_server}/widget.js' defer data-title='燃气在线客服' data-color='#c2410c'></script>"
        "</body></html>")
    button = page.get_by_role("button", name="打开燃气在线客服")
    await button.wait_for()
    assert await page.locator("iframe").count() == 0  # the chat loads only when asked for
    await button.click()
    frame_el = page.locator("iframe.gdw-frame")
    await frame_el.wait_for()
    src = await frame_el.get_attribute("src")
    assert src.startswith(live_server + "/chat?embed=1")
    chat = page.frame_locator("iframe.gdw-frame")
    await chat.locator(GREETING).wait_for()
    await chat.locator("#btn-handoff").wait_for()
    box = await page.locator(".gdw-panel").bounding_box()
    assert box and box["width"] < 500 and box["x"] > 600  # a panel at the bottom right on desktop
    await screenshot(page, "webchat-widget-desktop")
    await page.get_by_role("button", name="关闭燃气在线客服").click()
    await page.locator(".gdw-panel").wait_for(state="hidden")
    await button.wait_for()

    phone = await browser.new_page(**MOBILE)
    await phone.set_content("<head><meta name=viewport content='width=device-width, initial-scale=1'></head>"
                            f"<body><p>手机页面</p><script src='{live_server}/widget.js' defer></script></body>")
    await phone.get_by_role("button", name="打开在线客服").click()
    await phone.frame_locator("iframe.gdw-frame").locator(GREETING).wait_for()
    box = await phone.locator(".gdw-panel").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}  # full screen on a phone
    await screenshot(phone, "webchat-widget-mobile")


async def test_queue_agent_rating_and_new_conversation(live_server, browser, factory, session) -> None:
    agent = await factory.user("agent", username="agentli")
    agent.display_name = "李晓雪"
    await do_set_skills(session, agent, [1, 2, 3, 4])
    await do_set_presence(session, agent, "busy")  # staffed but not taking work: the resident queues
    await commit(session)
    api = httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {await factory.token(agent)}"})

    page = await _open_chat(browser, live_server)
    await page.click("#btn-handoff")
    await page.wait_for_selector("#queue-banner:has-text('排队中：您前面还有 0 位，预计等待约 1 分钟')")
    await screenshot(page, "webchat-queue")
    conversation_id = await page.evaluate("() => window.gasdeskChat.state.conversationId")

    assert api.put("/api/v1/agent/presence", json={"presence": "online"}).status_code == 200
    api.post(f"/api/v1/conversations/{conversation_id}/accept").raise_for_status()
    await page.wait_for_selector("#status:has-text('客服 李晓雪 为您服务')")
    assert await page.locator("#queue-banner").is_hidden()
    api.post(f"/api/v1/conversations/{conversation_id}/messages",
             json={"text": "您好，请问您的户号是多少？", "client_msg_id": "agent-1"}).raise_for_status()
    await page.wait_for_selector("li.gd-them:has-text('您好，请问您的户号是多少？') >> text=李晓雪")
    await _send(page, "2109876543")
    await _wait_acked(page, "2109876543")

    # typing both ways, through the agent's own socket (cookie session)
    staff = await (await browser.new_context()).new_page()
    await staff.goto(live_server + "/login")
    await staff.fill("input[name=username]", "agentli")
    await staff.fill("input[name=password]", TEST_PASSWORD)
    await staff.click("button[type=submit]")
    await staff.wait_for_load_state("networkidle")
    await staff.evaluate("""cid => new Promise(resolve => {
        window.__frames = [];
        const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws/agent');
        ws.onmessage = ev => window.__frames.push(JSON.parse(ev.data));
        ws.onopen = () => { ws.send(JSON.stringify({type: 'typing', conversation_id: cid})); resolve(); };
    })""", conversation_id)
    await page.wait_for_selector("#typing:has-text('客服正在输入…')")
    await page.wait_for_timeout(2100)  # typing frames are throttled to one per 2 s
    await page.type("#input", "好的", delay=50)
    await staff.wait_for_function("() => window.__frames.some(f => f.type === 'typing' && f.from === 'resident')")
    await page.fill("#input", "")

    api.post(f"/api/v1/conversations/{conversation_id}/close").raise_for_status()
    rating = page.locator("[data-card=rating]")
    await rating.wait_for()
    await page.wait_for_selector("#btn-new:has-text('开始新的咨询')")
    assert await page.locator("#send-form").is_hidden()
    await rating.locator("button[data-score='4']").click()
    await rating.locator("textarea").fill("态度很好")
    await screenshot(page, "webchat-rating")
    await rating.locator("button[type=submit]").click()
    await rating.locator("text=感谢您的评价").wait_for()
    session.expire_all()
    conversation = await session.get(Conversation, conversation_id)
    assert conversation.rating == 4 and conversation.rating_comment == "态度很好"

    await page.click("#btn-new")
    await page.wait_for_function(f"() => window.gasdeskChat.state.conversationId !== {conversation_id}")
    await page.wait_for_selector(GREETING)
    assert await page.locator("#send-form").is_visible()
    assert await page.locator("li.gd-me").count() == 0

    # earlier conversations: identify with 户号 + phone last 4 is offered; this device's list works without it
    await page.click("#btn-history")
    await page.wait_for_selector("#history:not([hidden]) >> text=预留手机号后四位")
    await page.fill("#hist-account", "2109876543")
    await page.fill("#hist-last4", "9999")
    await page.click("#history button[type=submit]")
    await page.wait_for_selector("#history >> text=户号或手机号后四位不匹配")
    await page.click("#history >> text=不验证，仅查看本设备的记录")
    await page.click("#history .gd-hist button")
    await page.wait_for_selector("#history >> text=您好，请问您的户号是多少？")
    await screenshot(page, "webchat-history")
    api.close()


async def test_identify_then_history(live_server, browser, factory) -> None:
    await factory.customer(name="刘芳", phones=["13912345678"], account_no="2109876543")
    page = await _open_chat(browser, live_server)
    await page.click("#btn-history")
    await page.fill("#hist-account", "2109876543")
    await page.fill("#hist-last4", "5678")
    await page.click("#history button[type=submit]")
    await page.wait_for_selector("#history >> text=已验证：刘*")
    await page.wait_for_selector("#history >> text=暂无历史会话")
    await page.keyboard.press("Escape")
    assert await page.locator("#history").is_hidden()
    await page.wait_for_selector("li.gd-sys:has-text('身份验证成功')")


@pytest.fixture
def twenty_messages_per_3s(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set before the live server starts (it reads the environment). The limit counts fixed windows: with the
    # default 50/10 s, a burst of 60 that straddles a window boundary can pass unrefused; with 20, a burst
    # shorter than 6 s falls into at most two windows and one of them holds more than 20. Short windows keep
    # the wait for the resends (three windows' worth) short.
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"message.visitor": "20/3"}')


async def test_rate_limited_messages_are_shown_and_retried(twenty_messages_per_3s, live_server, browser,
                                                           session) -> None:
    page = await _open_chat(browser, live_server)
    await page.evaluate("""() => {
        for (let i = 1; i <= 60; i++) {
            document.querySelector('#input').value = '你好 ' + i;
            document.querySelector('#send-form').requestSubmit();
        }
    }""")
    # 60 at once is past the per-visitor limit: the widget shows it and resends when told
    await page.wait_for_selector("#error-bar:has-text('太频繁')")
    await page.wait_for_function("() => document.querySelectorAll('li.gd-me[data-seq]').length === 60"
                                 " && !document.querySelector('li.gd-me:not([data-seq])')", timeout=60_000)
    session.expire_all()
    texts = [m.text for m in await session.scalars(select(Message).where(Message.sender_type == "resident"))]
    assert sorted(texts) == sorted(f"你好 {i}" for i in range(1, 61))  # each exactly once


async def test_queue_position_updates_live(live_server, browser, factory, session) -> None:
    agent = await factory.user("agent")
    await do_set_skills(session, agent, [1])
    await do_set_presence(session, agent, "busy")
    await commit(session)
    first = await _open_chat(browser, live_server)
    await first.click("#btn-handoff")
    await first.wait_for_selector("#queue-banner:has-text('您前面还有 0 位')")
    second = await _open_chat(browser, live_server)
    await second.click("#btn-handoff")
    await second.wait_for_selector("#queue-banner:has-text('您前面还有 1 位')")
    first.on("dialog", lambda dialog: dialog.accept())
    await first.click("#btn-close")  # the first resident gives up: the second moves up
    await first.wait_for_selector("#btn-new")
    await second.wait_for_selector("#queue-banner:has-text('您前面还有 0 位')")
