"""The roles of a customer-service centre. Routes name the roles that may call them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    agent = "agent"
    dispatcher = "dispatcher"
    field_crew = "field_crew"
    wall = "wall"  # a kiosk login on the wall screen (大屏): it sees /wall and nothing else


ROLE_LABELS: dict[Role, str] = {
    Role.admin: "系统管理员",
    Role.supervisor: "班长/质检",
    Role.agent: "坐席",
    Role.dispatcher: "调度",
    Role.field_crew: "外勤班组",
    Role.wall: "大屏",
}

# Who may open what, named once: routes say ``allow(*OFFICE)`` and so on.
# Every person's role. The wall kiosk is not a person's desk: it is left out here, so it gets 403 everywhere but
# the wall (``WALL_VIEWERS``) and public pages.
ALL_ROLES = frozenset(Role) - {Role.wall}
OFFICE = frozenset({Role.admin, Role.supervisor, Role.agent, Role.dispatcher})  # every desk, not field crews
STAFF_DESK = frozenset({Role.admin, Role.supervisor, Role.agent})  # the chat desk: conversations, customers' data
DISPATCH = frozenset({Role.admin, Role.supervisor, Role.dispatcher})  # dispatching work orders
MANAGERS = frozenset({Role.admin, Role.supervisor})  # supervise, configure, edit the knowledge base
WALL_VIEWERS = frozenset({Role.admin, Role.supervisor, Role.wall})  # the wall screen (/wall, /ws/wall)
