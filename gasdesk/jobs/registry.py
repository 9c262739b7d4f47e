"""Imports every module that registers job handlers or periodic tasks (@job / @periodic)."""

from gasdesk.auth import service as auth  # noqa: F401
from gasdesk.conversations import idle  # noqa: F401
from gasdesk.followups import service as followups  # noqa: F401
from gasdesk.tickets import sla_scan  # noqa: F401
from gasdesk.webhooks import service as webhooks  # noqa: F401
