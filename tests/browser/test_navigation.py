"""Each role logs in on a 390 px phone: it lands on its own console, the header fits the screen, and a
page it may not open (or a missing ticket) is a Chinese 403/404 page, not a bare server error."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login_as, screenshot

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

PHONE = {"width": 390, "height": 844}

# Everything inside the header must lie within the screen, each link and button on one line (a header can
# "fit" by squeezing the brand and 退出 into a one-character column); the page must not scroll sideways.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const header = document.querySelector("header.top");
  const outside = [...header.querySelectorAll("*")].filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5);
  }).map(el => el.outerHTML.slice(0, 80));
  const wrapped = [...header.querySelectorAll("a, button")].filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 2.2 * parseFloat(getComputedStyle(el).fontSize) + 16;
  }).map(el => el.textContent.trim());
  return {width, page: document.documentElement.scrollWidth, header: header.scrollWidth,
          height: header.getBoundingClientRect().height, outside, wrapped};
}"""


async def _assert_header_fits(page, where: str, max_height: int = 130) -> None:
    box = await page.evaluate(OVERFLOW_JS)
    assert box["width"] == 390, box
    assert box["outside"] == [] and box["wrapped"] == [] and box["header"] <= box["width"], f"{where}: {box}"
    assert box["height"] <= max_height, f"{where}: the header takes {box['height']} px of an 844 px screen"


async def _open_the_menu_if_folded(page, where: str) -> None:
    """Roles with many consoles fold the nav behind 菜单 on a phone: tapping it shows every link, still
    inside the screen's width (the open menu may be taller)."""
    links = page.locator("header nav a")
    if not await page.locator("header.top.many-consoles").count():
        assert await links.first.is_visible(), where
        return
    assert not await links.first.is_visible(), f"{where}: the folded nav shows links"
    await page.locator("header .nav-toggle-label").click()
    assert await links.count() > 6
    for link in await links.all():
        assert await link.is_visible(), where
    await _assert_header_fits(page, f"{where} (menu open)", max_height=600)


async def test_each_role_lands_on_its_console_and_the_header_fits_a_phone(live_server, browser, factory) -> None:
    landing = {"agent": "/agent", "dispatcher": "/dispatch", "field_crew": "/crew", "supervisor": "/",
               "admin": "/"}
    for role, path in landing.items():
        user = await factory.user(role)
        context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
        page = await context.new_page()
        await login_as(page, live_server, user.username, wait="domcontentloaded")
        assert page.url == live_server + path, (role, page.url)
        await _assert_header_fits(page, f"{role} {path}")
        assert "服务器内部错误" not in await page.inner_text("main"), f"{role} {path}"
        nav = await page.locator("header nav a").all_inner_texts()
        assert nav, role
        await _open_the_menu_if_folded(page, f"{role} {path}")
        if path in ("/", "/crew"):
            # Pages meant for phones do not scroll sideways at all.
            box = await page.evaluate(OVERFLOW_JS)
            assert box["page"] <= box["width"], f"{role} {path}: {box}"
        await screenshot(page, f"landing-390-{role}")
        await page.set_viewport_size({"width": 1280, "height": 800})
        # On a desktop screen the nav is always shown, without a 菜单 button.
        assert await page.locator("header nav a").first.is_visible(), role
        assert not await page.locator("header .nav-toggle-label").is_visible(), role
        await context.close()


async def test_forbidden_and_missing_pages_show_a_chinese_page(live_server, browser, factory) -> None:
    supervisor = await factory.user("supervisor")
    crew = await factory.user("field_crew")
    for user, path, status, text in [
        (supervisor, "/admin/users", 403, "当前角色无权访问此功能"),
        (supervisor, "/crew", 403, "当前角色无权访问此功能"),
        (crew, "/tickets", 403, "当前角色无权访问此功能"),
        (crew, "/tickets/99999", 404, "工单不存在"),
    ]:
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await login_as(page, live_server, user.username, wait="domcontentloaded")
        response = await page.goto(live_server + path)
        assert response.status == status, (path, response.status)
        body = await page.inner_text("main")
        assert "返回首页" in body and text in body, (path, body)
        await _assert_header_fits(page, f"{path} as {user.role}")
        assert await page.locator("header nav a").count() > 0
        await context.close()
