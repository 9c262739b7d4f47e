"""Internal chat (内部沟通): the do_* functions (stored state, audit rows, events), who may read, post, download
and open shared cards, unread counts, search, live delivery to members only, and the retention task."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from starlette.websockets import WebSocketState

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.attachments import Attachment
from gasdesk.db import commit, transaction
from gasdesk.errors import InvalidInput, PermissionDenied
from gasdesk.internal_chat import service
from gasdesk.internal_chat.models import InternalChatMember, InternalChatMessage, MemberRole
from gasdesk.jobs.queue import PERIODIC
from gasdesk.notifications.models import Notification
from gasdesk.notifications.socket import handle_notify_frame
from gasdesk.realtime.hub import Connection, get_hub
from gasdesk.tickets.models import Team, TeamMember
from tests.factories import WO_PNG, login, staff_user, wo_headers, wo_ticket


class RecordingSocket:
    application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_text(self, data: str) -> None:
        self.frames.append(json.loads(data))


async def _audit(session, action: str) -> list[AuditEntry]:
    return list(
        await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.id)
            .execution_options(populate_existing=True)
        )
    )


async def _group(session, owner=None, *people):
    owner = owner or await staff_user(session, "dispatcher", display_name="调度老周")
    chat = await service.do_create_group(session, owner, "改线一班", [p.id for p in people])
    await commit(session)
    return owner, chat


async def test_create_group_stores_members_with_team_audits_and_announces(session, events) -> None:
    owner = await staff_user(session, "dispatcher", display_name="调度老周")
    crew_a = await staff_user(session, "field_crew", display_name="外勤老王")
    crew_b = await staff_user(session, "field_crew", display_name="外勤小李")
    agent = await staff_user(session, "agent", display_name="坐席小林")
    team = Team(code="gaixian", name="改线班", kind="crew", districts=[])
    session.add(team)
    await session.flush()
    session.add_all(
        [TeamMember(team_id=team.id, user_id=crew_a.id), TeamMember(team_id=team.id, user_id=crew_b.id)]
    )
    await commit(session)

    chat = await service.do_create_group(session, owner, "  改线 一班 ", [agent.id], team_id=team.id)
    await commit(session)

    assert chat.name == "改线 一班" and chat.kind == "group" and chat.team_id == team.id
    roles = dict(
        (
            await session.execute(
                select(InternalChatMember.user_id, InternalChatMember.role).where(
                    InternalChatMember.chat_id == chat.id
                )
            )
        ).all()
    )
    assert roles == {owner.id: "owner", crew_a.id: "member", crew_b.id: "member", agent.id: "member"}
    (row,) = await _audit(session, "ichat.create")
    assert row.actor_id == owner.id and row.entity_id == str(chat.id)
    assert row.changes["after"]["members"] == sorted([owner.id, crew_a.id, crew_b.id, agent.id])
    kinds = [e.type for e in events]
    assert "internal_chat.members" in kinds and "internal_chat.message" in kinds
    members_event = next(e for e in events if e.type == "internal_chat.members")
    assert members_event.payload["member_ids"] == sorted([owner.id, crew_a.id, crew_b.id, agent.id])

    with pytest.raises(InvalidInput):
        await service.do_create_group(session, owner, "   ")
    with pytest.raises(InvalidInput):  # the wall kiosk is nobody to talk to
        await service.do_create_group(session, owner, "大屏", [(await staff_user(session, "wall")).id])


async def test_direct_chat_is_one_per_pair(session) -> None:
    a = await staff_user(session, "agent")
    b = await staff_user(session, "field_crew")
    first, created = await service.do_open_direct(session, a, b.id)
    await commit(session)
    again, created_again = await service.do_open_direct(session, b, a.id)
    assert created and not created_again and again.id == first.id
    assert len(await _audit(session, "ichat.create")) == 1
    titles = await service.chat_titles(session, a, [first])
    assert titles[first.id] == b.display_name
    with pytest.raises(InvalidInput):
        await service.do_open_direct(session, a, a.id)


async def test_message_with_mention_is_encrypted_audited_notified_and_pushed(session, events) -> None:
    crew = await staff_user(session, "field_crew", display_name="外勤老王")
    agent = await staff_user(session, "agent", display_name="坐席小林")
    outsider = await staff_user(session, "agent", display_name="坐席小赵")
    owner, chat = await _group(session, None, crew, agent)
    events.clear()

    said = "@外勤老王 幸福里3号楼张大爷家表后阀漏气，电话13812345678 @坐席小赵"
    message = await service.do_post_message(session, owner, chat, said)
    await commit(session)

    assert message.mentions == [crew.id]  # 坐席小赵 is not a member: no mention, no notification
    raw = await session.scalar(
        text("SELECT text FROM internal_chat_messages WHERE id = :id"), {"id": message.id}
    )
    assert "张大爷" not in raw and "13812345678" not in raw  # encrypted at rest
    (row,) = await _audit(session, "ichat.message")
    assert row.changes["after"] == {"message_id": message.id, "kind": "text", "mentions": [crew.id]}
    assert "张大爷" not in json.dumps(row.changes, ensure_ascii=False)
    notes = list(await session.scalars(select(Notification).where(Notification.kind == "chat.mention")))
    assert [n.user_id for n in notes] == [crew.id]
    assert notes[0].link == f"/ichat/{chat.id}" and "13812345678" not in notes[0].body
    assert not await session.scalar(select(Notification.id).where(Notification.user_id == outsider.id))
    pushed = [e for e in events if e.type == "internal_chat.message"]
    assert len(pushed) == 1 and pushed[0].payload["member_ids"] == sorted([owner.id, crew.id, agent.id])
    assert pushed[0].payload["message"]["text"] == said
    # the sender has read their own message; the others have one unread
    assert await service.unread_total(session, owner) == 0
    assert await service.unread_total(session, crew) == 2  # the creation notice and the message
    with pytest.raises(PermissionDenied):
        await service.do_post_message(session, outsider, chat, "我也想说")


async def test_mark_read_moves_forward_only_audits_and_tells_the_readers_pages(session, events) -> None:
    crew = await staff_user(session, "field_crew")
    owner, chat = await _group(session, None, crew)
    m1 = await service.do_post_message(session, owner, chat, "第一条")
    await service.do_post_message(session, owner, chat, "第二条")
    await commit(session)
    assert (await service.unread_by_chat(session, crew)) == {chat.id: 3}
    events.clear()

    await service.do_mark_read(session, crew, chat, m1.id)
    await commit(session)
    assert (await service.unread_by_chat(session, crew)) == {chat.id: 1}
    (read_event,) = [e for e in events if e.type == "internal_chat.read"]
    assert read_event.payload == {
        "chat_id": chat.id,
        "user_id": crew.id,
        "last_read_id": m1.id,
        "unread_total": 1,
    }
    await service.do_mark_read(session, crew, chat, 1)  # backwards: nothing changes, nothing audited
    await commit(session)
    await service.do_mark_read(session, crew, chat)
    await commit(session)
    assert await service.unread_total(session, crew) == 0
    assert [r.changes["after"]["last_read_id"] for r in await _audit(session, "ichat.read")] == [
        m1.id,
        m1.id + 1,
    ]


async def test_members_add_and_remove_by_owner_only_and_leaving(session, events) -> None:
    crew = await staff_user(session, "field_crew")
    agent = await staff_user(session, "agent")
    newcomer = await staff_user(session, "supervisor")
    owner, chat = await _group(session, None, crew, agent)
    with pytest.raises(PermissionDenied):
        await service.do_add_member(session, crew, chat, newcomer.id)
    await service.do_add_member(session, owner, chat, newcomer.id)
    await commit(session)
    assert newcomer.id in await service.member_ids(session, chat.id)
    events.clear()
    with pytest.raises(PermissionDenied):
        await service.do_remove_member(session, crew, chat, agent.id)
    await service.do_remove_member(session, owner, chat, agent.id)
    await commit(session)
    members_event = next(e for e in events if e.type == "internal_chat.members")
    assert members_event.payload["removed_ids"] == [agent.id]
    await service.do_remove_member(session, crew, chat, crew.id)  # leaving
    await commit(session)
    assert await service.member_ids(session, chat.id) == sorted([owner.id, newcomer.id])
    with pytest.raises(InvalidInput):
        await service.do_remove_member(session, owner, chat, owner.id)
    assert [r.changes["before"]["user_id"] for r in await _audit(session, "ichat.member_remove")] == [
        agent.id,
        crew.id,
    ]
    assert len(await _audit(session, "ichat.member_add")) == 1
    owner_row = await service.membership(session, chat.id, owner.id)
    assert owner_row is not None and owner_row.role == MemberRole.owner.value


async def test_only_members_reach_a_chat_over_http(client, session, factory) -> None:
    crew = await staff_user(session, "field_crew")
    outsider = await staff_user(session, "supervisor")  # even an admin role is no member
    owner, chat = await _group(session, None, crew)
    member_headers = await wo_headers(factory, crew)
    outsider_headers = await wo_headers(factory, outsider)

    posted = await client.post(
        f"/api/v1/internal-chats/{chat.id}/messages", json={"text": "收到，马上到"}, headers=member_headers
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["sender_id"] == crew.id
    page = await client.get(f"/api/v1/internal-chats/{chat.id}/messages", headers=member_headers)
    assert [m["kind"] for m in page.json()["items"]] == ["system", "text"]
    for method, url, body in (
        ("GET", f"/api/v1/internal-chats/{chat.id}/messages", None),
        ("GET", f"/api/v1/internal-chats/{chat.id}", None),
        ("POST", f"/api/v1/internal-chats/{chat.id}/messages", {"text": "偷看"}),
        ("POST", f"/api/v1/internal-chats/{chat.id}/read", {}),
        ("POST", f"/api/v1/internal-chats/{chat.id}/members", {"user_id": outsider.id}),
    ):
        answer = await client.request(method, url, json=body, headers=outsider_headers)
        assert answer.status_code == 403, (method, url, answer.text)
        assert answer.json()["error"]["code"] == "chat_not_member"
    listed = await client.get("/api/v1/internal-chats", headers=outsider_headers)
    assert listed.json() == {"items": [], "unread_total": 0}
    mine = await client.get("/api/v1/internal-chats", headers=await wo_headers(factory, owner))
    assert mine.json()["unread_total"] == 1 and mine.json()["items"][0]["last_preview"] == "收到，马上到"
    assert (await client.get(f"/ichat/{chat.id}", headers=outsider_headers)).status_code == 403
    too_long = await client.post(
        f"/api/v1/internal-chats/{chat.id}/messages", json={"text": "长" * 2001}, headers=member_headers
    )
    assert too_long.status_code == 422


async def test_files_are_sealed_and_served_to_members_only(client, session, factory) -> None:
    crew = await staff_user(session, "field_crew")
    outsider = await staff_user(session, "field_crew")
    owner, chat = await _group(session, None, crew)
    await login(client, owner.username)
    uploaded = await client.post(
        f"/api/v1/internal-chats/{chat.id}/files",
        data={"csrf_token": client.headers["X-CSRF-Token"]},
        files={"file": ("现场.png", WO_PNG, "image/png")},
    )
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["kind"] == "image" and body["file"]["image"] and body["file"]["name"] == "现场.png"
    token = body["file"]["url"].rsplit("/", 1)[1]
    attachment = await session.scalar(select(Attachment).where(Attachment.token == token))
    assert attachment.conversation_id is None and attachment.ticket_id is None
    assert WO_PNG not in Path(attachment.path).read_bytes()  # sealed at rest
    assert (await _audit(session, "ichat.file"))[0].changes["after"]["mime"] == "image/png"

    got = await client.get(body["file"]["url"], headers=await wo_headers(factory, crew))
    assert got.status_code == 200 and got.content == WO_PNG
    assert (
        got.headers["content-disposition"].startswith("inline")
        and got.headers["x-content-type-options"] == "nosniff"
    )
    assert (
        await client.get(body["file"]["url"], headers=await wo_headers(factory, outsider))
    ).status_code == 404
    # the resident file route does not serve staff chat files
    assert (
        await client.get(f"/api/v1/files/{token}", headers=await wo_headers(factory, crew))
    ).status_code == 404
    refused = await client.post(
        f"/api/v1/internal-chats/{chat.id}/files",
        data={"csrf_token": client.headers["X-CSRF-Token"]},
        files={"file": ("run.exe", b"MZ...", "application/octet-stream")},
    )
    assert refused.status_code == 422


async def test_shared_ticket_card_opens_only_with_permission(client, session, factory) -> None:
    dispatcher = await staff_user(session, "dispatcher")
    assigned = await staff_user(session, "field_crew")
    other_crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="assigned", crew_id=assigned.id, title="表后阀漏气")
    _, chat = await _group(session, dispatcher, assigned, other_crew)

    # a crew may not share a ticket that is not theirs
    with pytest.raises(PermissionDenied):
        await service.do_share_card(session, other_crew, chat, "ticket", str(ticket.id))
    shared = await client.post(
        f"/api/v1/internal-chats/{chat.id}/cards",
        json={"type": "ticket", "ref": ticket.number.lower(), "note": "请看一下"},
        headers=await wo_headers(factory, dispatcher),
    )
    assert shared.status_code == 201, shared.text
    card = shared.json()["card"]
    assert card["id"] == ticket.id and ticket.number in card["title"] and card["status_label"] == "已派单"
    assert (await _audit(session, "ichat.share"))[0].changes["after"]["card_id"] == ticket.id
    message_id = shared.json()["id"]

    target = f"/api/v1/internal-chats/{chat.id}/messages/{message_id}/card"
    ok = await client.get(target, headers=await wo_headers(factory, assigned))
    assert ok.status_code == 200 and ok.json()["url"] == f"/crew/tickets/{ticket.id}"
    denied = await client.get(target, headers=await wo_headers(factory, other_crew))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ticket_not_yours"
    page = await client.get(
        card["open_url"], headers={**await wo_headers(factory, other_crew), "Accept": "text/html"}
    )
    assert page.status_code == 403
    opened = await client.get(card["open_url"], headers=await wo_headers(factory, dispatcher))
    assert opened.status_code == 303 and opened.headers["location"] == f"/tickets/{ticket.id}"
    # the card's snapshot title is encrypted at rest like the ticket's own title
    raw = await session.scalar(
        text("SELECT card_title FROM internal_chat_messages WHERE id = :id"), {"id": message_id}
    )
    assert "表后阀漏气" not in raw


async def test_search_covers_only_my_chats(session) -> None:
    crew = await staff_user(session, "field_crew")
    owner, chat = await _group(session, None, crew)
    other_owner, other_chat = await _group(session, None)
    await service.do_post_message(session, owner, chat, "明天巡线到和平路调压箱")
    await service.do_post_message(session, other_owner, other_chat, "和平路调压箱另一组")
    await commit(session)
    found = await service.search_messages(session, crew, "和平路")
    assert [(m.chat_id, t) for m, t in found.hits] == [(chat.id, "改线一班")]
    assert found.scanned == 2  # the creation notice and the message of the crew's one chat
    with pytest.raises(InvalidInput):
        await service.search_messages(session, crew, "   ")


async def test_live_frames_reach_members_only(session) -> None:
    crew = await staff_user(session, "field_crew")
    leaver = await staff_user(session, "agent")
    outsider = await staff_user(session, "agent")
    owner, chat = await _group(session, None, crew, leaver)
    hub = get_hub()
    bells = {}
    for user in (owner, crew, leaver, outsider):
        conn = Connection(RecordingSocket(), kind="notify", user_id=user.id, role=user.role)  # type: ignore[arg-type]
        assert hub.add_notify(conn)
        bells[user.id] = conn
    try:
        await service.do_post_message(session, owner, chat, "今晚加班")
        await commit(session)
        await service.do_remove_member(session, owner, chat, leaver.id)
        await commit(session)
        await service.do_post_message(session, owner, chat, "名单已更新")
        await commit(session)
        await asyncio.sleep(0.05)  # each socket's writer task sends its queued frames

        def texts(user) -> list[str]:
            frames = bells[user.id].websocket.frames  # type: ignore[attr-defined]
            return [
                f["message"]["text"]
                for f in frames
                if f["type"] == "ichat_message" and f["message"]["kind"] == "text"
            ]

        assert texts(crew) == ["今晚加班", "名单已更新"]
        assert texts(owner) == ["今晚加班", "名单已更新"]
        assert texts(leaver) == ["今晚加班"]  # removed: nothing after
        assert bells[outsider.id].websocket.frames == []  # type: ignore[attr-defined]
        assert any(f["type"] == "ichat_chats" for f in bells[leaver.id].websocket.frames)  # type: ignore[attr-defined]

        # the chat page marks read over the same socket
        reply = await handle_notify_frame(
            bells[crew.id], {"type": "ichat_read", "chat_id": chat.id, "message_id": None}
        )
        assert reply is not None and reply["type"] == "ichat_read_ok"
        await asyncio.sleep(0.05)
        assert any(
            f["type"] == "ichat_read" and f["unread_total"] == 0 for f in bells[crew.id].websocket.frames
        )  # type: ignore[attr-defined]
        with pytest.raises(PermissionDenied):
            await handle_notify_frame(
                bells[outsider.id], {"type": "ichat_read", "chat_id": chat.id, "message_id": None}
            )
    finally:
        for conn in bells.values():
            hub.remove(conn)


async def test_retention_task_deletes_old_messages_and_files(session, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_INTERNAL_CHAT_RETENTION_DAYS", "30")
    reset_settings_cache()
    crew = await staff_user(session, "field_crew")
    owner, chat = await _group(session, None, crew)
    old_file = await service.do_post_file(session, owner, chat, "旧图.png", WO_PNG)
    await commit(session)
    old_path = Path((await session.get(Attachment, old_file.attachment_id)).path)
    assert old_path.exists()
    clock.set_now(clock.utcnow() + timedelta(days=31))
    fresh = await service.do_post_message(session, crew, chat, "新消息")
    await commit(session)

    async with transaction() as s:  # as the worker runs it
        await PERIODIC["internal_chat.retention"][1](s)

    left = list(
        await session.scalars(select(InternalChatMessage.id).where(InternalChatMessage.chat_id == chat.id))
    )
    assert left == [fresh.id]
    assert not old_path.exists()
    assert await session.scalar(select(Attachment.id).where(Attachment.id == old_file.attachment_id)) is None
    (row,) = await _audit(session, "ichat.purge")
    assert (
        row.entity_id == str(chat.id) and row.changes["after"]["messages"] == 2
    )  # creation notice + picture
