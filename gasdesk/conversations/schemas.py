from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.fields import Id


class AgentMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    client_msg_id: str | None = Field(default=None, max_length=64)


class TransferIn(BaseModel):
    to_agent_id: Id | None = None
    to_group_id: Id | None = None
    note: str = Field(default="", max_length=200)


class LinkCustomerIn(BaseModel):
    customer_id: Id


class PresenceIn(BaseModel):
    presence: str


class CannedRenderIn(BaseModel):
    conversation_id: Id | None = None
