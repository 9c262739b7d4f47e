"""Admins edit the official account's menu, checked against WeChat's limits, audited, and pushed to WeChat."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.channels.wechat.account import SIMULATED_APP_ID, wechat_account
from gasdesk.channels.wechat.fake_api import FakeWeChat, create_fake_wechat_app
from gasdesk.channels.wechat.sender import use_http
from gasdesk.channels.wechat.service import DEFAULT_MENU, check_menu
from gasdesk.errors import InvalidInput
from tests.factories import login, page_csrf_token


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    account = wechat_account()  # the simulator's account: no GASDESK_WECHAT_* in tests
    assert account is not None and account.app_id == SIMULATED_APP_ID
    state = FakeWeChat()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(
        app=create_fake_wechat_app(state, account.app_id, account.app_secret)))
    use_http(http)
    yield state
    use_http(None)
    await http.aclose()


def test_the_default_menu_passes_its_own_check() -> None:
    assert check_menu(DEFAULT_MENU) == DEFAULT_MENU


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m["button"].append({"type": "click", "name": "多", "key": "handoff"}) or
     m["button"].append({"type": "click", "name": "余", "key": "handoff"}), "一级菜单"),
    (lambda m: m["button"][1].update(name="预约上门服务入口"), "字节"),
    (lambda m: m["button"][1].update(key="rm -rf"), "handoff 或 ask:"),
    (lambda m: m["button"][2]["sub_button"][0].update(url="javascript:alert(1)"), "链接"),
    (lambda m: m["button"][0]["sub_button"].extend([m["button"][0]["sub_button"][0]] * 2), "子菜单"),
    (lambda m: m["button"][1].update(type="miniprogram"), "类型"),
])
def test_menus_wechat_would_refuse_are_refused_with_the_reason(mutate, message: str) -> None:
    menu = copy.deepcopy(DEFAULT_MENU)
    mutate(menu)
    with pytest.raises(InvalidInput) as caught:
        check_menu(menu)
    assert message in caught.value.message


async def test_admin_saves_and_pushes_the_menu(client, session, factory, fake) -> None:
    headers = await factory.headers("admin")
    menu = copy.deepcopy(DEFAULT_MENU)
    menu["button"][1]["name"] = "我要预约"
    response = await client.put("/api/v1/wechat/menu", json=menu, headers=headers)
    assert response.status_code == 200 and response.json()["button"][1]["name"] == "我要预约"
    assert fake.menu is None, "saving does not push"
    response = await client.post("/api/v1/wechat/menu/push", headers=headers)
    assert response.status_code == 200, response.text
    pushed = fake.menu
    assert pushed is not None and pushed["button"][1]["name"] == "我要预约"
    h5 = pushed["button"][2]["sub_button"][0]
    assert h5["url"].startswith("http://") and h5["url"].endswith("/channels/wechat/h5")  # made absolute
    actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "config")
                                         .order_by(AuditEntry.id)))
    assert actions[-2:] == ["config.wechat_menu", "config.wechat_menu_push"]


async def test_wechat_refusing_or_down_is_a_clear_error(client, factory, fake) -> None:
    headers = await factory.headers("admin")
    fake.fail_next(1, errcode=40016)  # invalid button count, as WeChat says it
    response = await client.post("/api/v1/wechat/menu/push", headers=headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "wechat_menu_rejected"
    fake.fail_next(1, http_status=502)
    response = await client.post("/api/v1/wechat/menu/push", headers=headers)
    assert response.status_code == 503


async def test_only_admins_edit_the_menu(client, factory) -> None:
    for role in ("agent", "supervisor"):
        headers = await factory.headers(role)
        assert (await client.put("/api/v1/wechat/menu", json=DEFAULT_MENU, headers=headers)).status_code == 403


async def test_menu_page_saves_and_shows_json_errors(client, factory) -> None:
    admin = await factory.user("admin")
    await login(client, admin.username)
    page = await client.get("/admin/wechat-menu")
    assert page.status_code == 200 and "公众号菜单" in page.text
    token = await page_csrf_token(client)
    bad = await client.post("/admin/wechat-menu", data={"menu": "{not json", "csrf_token": token})
    assert bad.status_code in (400, 422) and "JSON" in bad.text
