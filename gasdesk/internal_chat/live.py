"""The staff chat's frames on the staff socket (``/ws/staff``, ``notifications/socket.py``).

Pushes (server → client) come from the hub: ``ichat_message``, ``ichat_read``, ``ichat_chats`` (see the
``internal_chat.*`` declarations in ``gasdesk/event_types.py``). The one frame a page sends is ``ichat_read``
(``realtime/frames.py``): the chat it shows was read, answered with ``ichat_read_ok``. Posting goes through the
REST API, where the body caps, CSRF and the per-user limits apply.
"""

from __future__ import annotations

from typing import Any

from gasdesk.auth.models import User
from gasdesk.db import transaction
from gasdesk.errors import NotAuthenticated
from gasdesk.internal_chat.service import access_chat, do_mark_read
from gasdesk.security import limits


async def handle_read_frame(user_id: int, frame: dict[str, Any]) -> dict[str, Any]:
    """``ichat_read {chat_id, message_id?}``: move the sender's read mark (members only, like the REST route)."""
    await limits.check_rate(("ichat_frame.user", str(user_id)))
    async with transaction() as session:
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            raise NotAuthenticated("请重新登录", code="not_authenticated")
        chat = await access_chat(session, user, frame["chat_id"])
        member = await do_mark_read(session, user, chat, frame.get("message_id"), source="socket")
        last_read_id = member.last_read_id
    return {"type": "ichat_read_ok", "chat_id": chat.id, "last_read_id": last_read_id}
