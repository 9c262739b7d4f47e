"""HTTP side of the web widget: visitor tokens, uploads, files, and the /chat and /widget.js pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from gasdesk.auth.access import current_user_or_none, public
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.channels.webchat.identity import issue_visitor_token, visitor_from_token
from gasdesk.channels.webchat.schemas import VisitorOut
from gasdesk.config import get_settings
from gasdesk.conversations import service
from gasdesk.conversations.attachments import Attachment, do_store_upload, serve_attachment
from gasdesk.conversations.models import Conversation
from gasdesk.conversations.schemas import AttachmentOut
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput, NotAuthenticated, NotFound
from gasdesk.fields import Id
from gasdesk.hours.service import holiday_notice
from gasdesk.security import limits
from gasdesk.tickets.service import access_ticket
from gasdesk.web.templating import render
from gasdesk.web.uploads import read_upload_form

router = APIRouter(tags=["webchat"])
STATIC = Path(__file__).parent / "static"
# multipart framing around the largest file allowed


@router.post("/api/v1/webchat/visitors", dependencies=[public()], response_model=VisitorOut)
async def new_visitor(request: Request) -> dict[str, str]:
    """A fresh anonymous resident identity for the chat widget (kept in the browser); limited per client IP."""
    await limits.check_rate(("visitor_token.ip", request.client.host if request.client else "unknown"))
    visitor_id, token = issue_visitor_token()
    return {"visitor_id": visitor_id, "token": token}


@router.post("/api/v1/webchat/uploads", status_code=201, dependencies=[public()], response_model=AttachmentOut)
async def upload(
    request: Request,
    session: DbSession,
    conversation_id: Annotated[Id, Query()],
    x_visitor_token: Annotated[str | None, Header()] = None,
) -> dict[str, object]:
    """Upload an image or file (multipart field ``file``) into the resident's own conversation.

    Who asks is checked before the body is read (visitor token, then the conversation, both outside
    the body: ``?conversation_id=``), so a bogus token gets its 401 without the upload being accepted."""
    visitor_id = visitor_from_token(x_visitor_token)
    if visitor_id is None:
        raise NotAuthenticated("访客凭证无效", code="invalid_visitor_token")
    conversation = await service.access_conversation_for_visitor(session, visitor_id, conversation_id)
    form = await read_upload_form(request, session=session)
    file = form.file("file")
    if file is None:
        raise InvalidInput("请选择要上传的文件", code="file_missing")
    attachment = await do_store_upload(session, conversation, file.filename, file.data, visitor_id=visitor_id)
    return attachment.to_payload()


@router.get("/api/v1/files/{token}", dependencies=[public()])
async def download(request: Request, token: str, session: DbSession, v: str | None = None) -> Response:
    """A chat attachment, for the resident of that conversation (visitor token) or staff who may read it."""
    attachment = await session.scalar(select(Attachment).where(Attachment.token == token))
    if attachment is None:
        raise NotFound("文件不存在", code="file_not_found")
    if attachment.ticket_id is not None:
        return await _ticket_photo(request, session, attachment)
    if attachment.conversation_id is None:
        raise NotFound("文件不存在", code="file_not_found")
    conversation = await session.get(Conversation, attachment.conversation_id)
    visitor_id = visitor_from_token(v or request.headers.get("x-visitor-token"))
    allowed = conversation is not None and visitor_id is not None and conversation.visitor_id == visitor_id
    if not allowed:
        user = await current_user_or_none(request, session)
        if user is None:
            raise NotAuthenticated("请先登录", code="not_authenticated")
        allowed = Role(user.role) in MANAGERS or (conversation is not None and conversation.agent_id == user.id)
    if not allowed:
        raise NotFound("文件不存在", code="file_not_found")
    return serve_attachment(attachment)


async def _ticket_photo(request: Request, session: DbSession, attachment: Attachment) -> Response:
    """Photos of residents' homes are for staff only (crews: their own tickets)."""
    user = await current_user_or_none(request, session)
    if user is None:
        raise NotAuthenticated("请先登录", code="not_authenticated")
    await access_ticket(session, user, attachment.ticket_id)  # type: ignore[arg-type]
    return serve_attachment(attachment)


@router.get("/chat", include_in_schema=False, dependencies=[public()])
async def chat_page(request: Request, session: DbSession) -> Response:
    """The resident chat (mobile-first); also the iframe behind widget.js and the WeChat webview. A holiday
    ahead is announced in a banner (gasdesk/hours)."""
    notice = await holiday_notice(session)
    return render(request, "chat.html", {"holiday_notice": notice.text if notice else None,
                                         "guidance_url": get_settings().guidance_url})


@router.get("/widget.js", include_in_schema=False, dependencies=[public()])
async def widget_js() -> Response:
    """One <script> tag embeds the chat in any page."""
    return FileResponse(STATIC / "widget.js", media_type="application/javascript")
