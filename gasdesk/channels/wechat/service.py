"""The official account's custom menu (自定义菜单): checked, stored, audited and pushed to WeChat.

A CLICK entry's key is what it does here: ``handoff`` asks for a person, ``ask:<text>`` is the same as the
follower typing <text> (so every menu entry is a question the bot already understands). A VIEW entry opens a
page — ``/channels/wechat/h5`` opens the H5 chat as the same follower.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.channels.models import ChannelState
from gasdesk.channels.sending import SendFailed
from gasdesk.channels.wechat.account import require_wechat_account
from gasdesk.channels.wechat.inbound import ASK_PREFIX, HANDOFF_KEY
from gasdesk.channels.wechat.sender import wechat_client
from gasdesk.clock import utcnow
from gasdesk.db import transaction
from gasdesk.errors import InvalidInput, ServiceUnavailable

MENU_KEY = "wechat.menu"
# WeChat's limits: 3 entries on the bar, 5 under each; names 16 bytes on the bar (4 汉字), 60 below.
MAX_TOP, MAX_SUB, TOP_NAME_BYTES, SUB_NAME_BYTES, KEY_BYTES, URL_BYTES = 3, 5, 16, 60, 128, 1024

DEFAULT_MENU: dict[str, Any] = {"button": [
    {"name": "自助服务", "sub_button": [
        {"type": "click", "name": "查询余额", "key": "ask:查一下余额"},
        {"type": "click", "name": "营业厅", "key": "ask:营业厅在哪里，几点开门"},
        {"type": "click", "name": "停气公告", "key": "ask:最近有停气通知吗"},
        {"type": "click", "name": "燃气泄漏怎么办", "key": "ask:闻到燃气味怎么办"},
    ]},
    {"type": "click", "name": "预约", "key": "ask:我要预约上门服务"},
    {"name": "人工客服", "sub_button": [
        {"type": "view", "name": "在线客服", "url": "/channels/wechat/h5"},
        {"type": "click", "name": "转人工", "key": HANDOFF_KEY},
    ]},
]}


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_wechat_menu")


def _check_entry(entry: Any, *, top: bool) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _bad("菜单项必须是对象")
    name = entry.get("name")
    limit = TOP_NAME_BYTES if top else SUB_NAME_BYTES
    if not isinstance(name, str) or not name.strip() or len(name.encode()) > limit:
        raise _bad(f"菜单名称不能为空，且不超过 {limit} 字节（{limit // 4 if top else 8} 个汉字）：{name!r}")
    if top and "sub_button" in entry:
        subs = entry["sub_button"]
        if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB:
            raise _bad(f"“{name}”的子菜单应为 1–{MAX_SUB} 项")
        return {"name": name.strip(), "sub_button": [_check_entry(s, top=False) for s in subs]}
    kind = entry.get("type")
    if kind == "click":
        key = entry.get("key")
        if not isinstance(key, str) or not (key == HANDOFF_KEY or (key.startswith(ASK_PREFIX) and key[4:].strip())):
            raise _bad(f"“{name}”的 key 应为 handoff 或 ask:问题文字")
        if len(key.encode()) > KEY_BYTES:
            raise _bad(f"“{name}”的 key 超过 {KEY_BYTES} 字节")
        return {"type": "click", "name": name.strip(), "key": key}
    if kind == "view":
        url = entry.get("url")
        if not isinstance(url, str) or not (url.startswith(("https://", "http://", "/"))) or len(url.encode()) > URL_BYTES:
            raise _bad(f"“{name}”的链接应以 https:// 或 / 开头，且不超过 {URL_BYTES} 字节")
        return {"type": "view", "name": name.strip(), "url": url}
    raise _bad(f"“{name}”的类型应为 click 或 view")


def check_menu(menu: Any) -> dict[str, Any]:
    """A menu as WeChat accepts it, or InvalidInput saying what to fix."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_TOP:
        raise _bad(f"菜单应为 {{\"button\": [...]}}，1–{MAX_TOP} 个一级菜单")
    return {"button": [_check_entry(b, top=True) for b in buttons]}


async def current_menu(session: AsyncSession) -> dict[str, Any]:
    row = await session.get(ChannelState, MENU_KEY)
    return copy.deepcopy(row.value) if row is not None and isinstance(row.value, dict) else copy.deepcopy(DEFAULT_MENU)


async def do_save_menu(session: AsyncSession, actor: Actor, menu: Any) -> dict[str, Any]:
    """Store the admin's menu (checked); audited. Pushing it to WeChat is a separate step."""
    checked = check_menu(menu)
    before = await current_menu(session)
    row = await session.get(ChannelState, MENU_KEY)
    if row is None:
        session.add(ChannelState(key=MENU_KEY, value=checked, updated_at=utcnow()))
    else:
        row.value, row.updated_at = checked, utcnow()
    record_audit(session, actor, "config.wechat_menu", "config", "wechat_menu:1", before=before, after=checked)
    return checked


def _absolute(menu: dict[str, Any], public_base: str) -> dict[str, Any]:
    """WeChat needs absolute links: a "/path" is made absolute on this server's public address."""
    out = copy.deepcopy(menu)
    for button in out["button"]:
        for entry in [button, *button.get("sub_button", [])]:
            if entry.get("type") == "view" and entry["url"].startswith("/"):
                entry["url"] = public_base.rstrip("/") + entry["url"]
    return out


async def do_push_menu(actor: Actor, public_base: str) -> dict[str, Any]:
    """Send the stored menu to WeChat (menu/create); audited. WeChat's refusal becomes a clear error.

    Takes no session: it runs its own short transactions around the call, because no database connection may
    wait on WeChat (SQLite has one, and the access-token store needs it too)."""
    account = require_wechat_account()
    async with transaction() as session:
        menu = _absolute(await current_menu(session), public_base)
    try:
        await wechat_client(account).create_menu(menu)
    except SendFailed as failure:
        if failure.retryable:
            raise ServiceUnavailable("微信接口暂时不可用，请稍后再推送", code="wechat_unavailable") from None
        raise InvalidInput(f"微信拒绝了该菜单（{failure.reason}）", code="wechat_menu_rejected") from None
    async with transaction() as session:
        record_audit(session, actor, "config.wechat_menu_push", "config", "wechat_menu:1", after=menu)
    return menu
