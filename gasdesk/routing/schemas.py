"""What the routing configuration API accepts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gasdesk.fields import Id
from gasdesk.routing.models import RoutingMode
from gasdesk.schemas import Out


class SkillGroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    routing_mode: str = RoutingMode.longest_idle.value
    sticky_returning: bool = True
    queue_capacity: int = Field(default=50, ge=1, le=10000)
    working_hours: dict[str, str]
    default_handle_s: int = Field(default=240, ge=10, le=7200)


class HandoffRuleIn(BaseModel):
    position: int = Field(ge=0, le=10000)
    name: str = Field(min_length=1, max_length=60)
    kind: str
    params: dict[str, Any] = {}
    skill_group_id: Id
    priority: int = Field(default=0, ge=0, le=10)
    enabled: bool = True


class AgentSkillsIn(BaseModel):
    skill_group_ids: list[Id] = Field(max_length=50)
    max_concurrent: int | None = Field(default=None, ge=1, le=50)


# ---------------------------------------------------------------- responses


class SkillGroupOut(Out):
    """A skill group as ``service.skill_group_out`` gives it."""

    id: int
    code: str
    name: str
    routing_mode: str
    sticky_returning: bool
    queue_capacity: int
    working_hours: dict[str, str]
    default_handle_s: int
    open_now: bool


class HandoffRuleOut(Out):
    id: int
    position: int
    name: str
    kind: str
    params: dict[str, Any]
    skill_group_id: int
    priority: int
    enabled: bool


class AgentSkillsOut(Out):
    user_id: int
    skill_group_ids: list[int]
    max_concurrent: int | None
