"""Edges of the internal chat API: one wire form for REST answers and live pushes (``ChatMessageOut``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gasdesk.fields import Id


class ChatFileOut(BaseModel):
    name: str
    mime: str
    size: int
    url: str = Field(description="下载地址（仅成员可下载）")
    image: bool = Field(description="图片：在聊天中直接显示")


class ChatCardOut(BaseModel):
    type: str = Field(description="ticket 或 conversation")
    id: int
    title: str = Field(description="分享时的标题（工单号与标题）")
    status: str | None
    status_label: str | None
    open_url: str = Field(description="打开卡片：按查看者自己的权限检查，无权限 403")


class ChatMessageOut(BaseModel):
    id: int
    chat_id: int
    sender_id: int | None
    sender_name: str
    kind: str = Field(description="text、image、file、card、system")
    text: str | None
    mentions: list[int] = Field(description="被 @ 的同事（用户 id）")
    file: ChatFileOut | None
    card: ChatCardOut | None
    created_at: datetime


class ChatMemberOut(BaseModel):
    user_id: int
    display_name: str
    role: str = Field(description="owner、admin、member")
    staff_role: str = Field(description="岗位角色（坐席、调度、外勤班组…）")


class ChatSummaryOut(BaseModel):
    id: int
    kind: str = Field(description="direct（单聊）或 group（群聊）")
    title: str = Field(description="群名，或单聊对方的姓名")
    team_id: int | None
    unread: int
    last_message_at: datetime | None
    last_preview: str | None = Field(description="最后一条消息的摘要")


class ChatList(BaseModel):
    items: list[ChatSummaryOut]
    unread_total: int


class ChatDetailOut(ChatSummaryOut):
    my_role: str
    members: list[ChatMemberOut]


class UnreadTotal(BaseModel):
    unread_total: int


class MessagePage(BaseModel):
    items: list[ChatMessageOut] = Field(description="时间从早到晚")
    has_more: bool


class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    member_ids: list[Id] = Field(default_factory=list, max_length=200)
    team_id: Id | None = Field(default=None, description="班组：其成员一并加入")


class DirectIn(BaseModel):
    user_id: Id


class MemberIn(BaseModel):
    user_id: Id


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    mention_ids: list[Id] = Field(
        default_factory=list, max_length=50, description="被 @ 的成员；文本中的 @姓名 也会识别"
    )


class CardIn(BaseModel):
    type: str = Field(description="ticket 或 conversation")
    ref: str = Field(min_length=1, max_length=30, description="工单号（GD…）或 id；会话 id")
    note: str = Field(default="", max_length=500)


class ReadIn(BaseModel):
    up_to_id: Id | None = Field(default=None, description="读到的消息 id；缺省为最新一条")


class SearchIn(BaseModel):
    q: str = Field(min_length=1, max_length=100)


class SearchHit(BaseModel):
    chat_id: int
    chat_title: str
    message: ChatMessageOut


class SearchOut(BaseModel):
    items: list[SearchHit]
    scanned: int = Field(description="查找过的消息条数（最近的消息，上限见文档）")


class PersonOut(BaseModel):
    id: int
    display_name: str
    staff_role: str


class CardTargetOut(BaseModel):
    type: str
    id: int
    url: str = Field(description="有权限时的打开地址")
