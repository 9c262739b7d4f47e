"""Admin page of the official account's menu: edit, check, save, push to WeChat."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.channels.wechat import service
from gasdesk.channels.wechat.account import wechat_account
from gasdesk.db import DbSession, commit, rollback
from gasdesk.errors import GasdeskError
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


def _context(menu_text: str, **extra: object) -> dict[str, object]:
    account = wechat_account()
    return {"menu_text": menu_text, "account": account, **extra}


@router.get("/admin/wechat-menu")
async def menu_page(request: Request, session: DbSession, _: User = allow(Role.admin)) -> Response:
    menu = await service.current_menu(session)
    return render(request, "wechat_menu.html", _context(json.dumps(menu, ensure_ascii=False, indent=2)))


@router.post("/admin/wechat-menu")
async def menu_save(request: Request, session: DbSession, menu: Annotated[str, Form(max_length=20_000)],
                    action: Annotated[str, Form(max_length=10)] = "save", admin: User = allow(Role.admin)) -> Response:
    """Save the edited menu; with action=push also send it to WeChat."""
    try:
        try:
            parsed = json.loads(menu)
        except json.JSONDecodeError as exc:
            raise GasdeskError(f"菜单不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列", code="invalid_json") from None
        saved = await service.do_save_menu(session, Actor.of(admin, "web"), parsed)
        note = "菜单已保存。"
        if action == "push":
            await commit(session)  # saved for good; the push runs outside this transaction (it waits on WeChat)
            await service.do_push_menu(Actor.of(admin, "web"), str(request.base_url))
            note = "菜单已保存并推送到微信。"
    except GasdeskError as exc:
        await rollback(session, admin)
        return render(request, "wechat_menu.html", _context(menu, error=exc.message), 422)
    return render(request, "wechat_menu.html",
                  _context(json.dumps(saved, ensure_ascii=False, indent=2), note=note))
