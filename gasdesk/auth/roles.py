"""The roles of a customer-service centre. Routes name the roles that may call them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    agent = "agent"
    dispatcher = "dispatcher"
    field_crew = "field_crew"


ROLE_LABELS: dict[Role, str] = {
    Role.admin: "系统管理员",
    Role.supervisor: "班长/质检",
    Role.agent: "坐席",
    Role.dispatcher: "调度",
    Role.field_crew: "外勤班组",
}

ALL_ROLES = frozenset(Role)
STAFF_DESK = frozenset({Role.admin, Role.supervisor, Role.agent})
MANAGERS = frozenset({Role.admin, Role.supervisor})
