"""What the web widget's HTTP API returns (uploads answer with ``conversations.schemas.AttachmentOut``)."""

from __future__ import annotations

from gasdesk.schemas import Out


class VisitorOut(Out):
    """A fresh anonymous resident identity: kept by the widget, sent back as ``X-Visitor-Token``."""

    visitor_id: str
    token: str
