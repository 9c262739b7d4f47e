"""Peak-hour guidance: when a queue's expected wait passes the threshold (``peak_wait_threshold_s``), what the
resident is told. Kept apart from ``service`` so the chat pipeline can use it without importing the channels."""

from __future__ import annotations

from typing import Any

from gasdesk.config import get_settings
from gasdesk.routing.service import QueueSpot

SELF_SERVICE = {"wechat": "也可以在公众号菜单“自助服务”中自助办理",
                "default": "也可以直接向智能客服自助查询账单、停气通知和办理进度"}


def peak(estimated_wait_s: int) -> bool:
    """Whether a queue's expected wait is above the peak threshold (then guidance and a callback are offered)."""
    return estimated_wait_s > get_settings().peak_wait_threshold_s


def minutes(seconds: int) -> int:
    return max(1, round(seconds / 60))


def peak_text(channel: str) -> str:
    """The guidance added to the queue message (which already says the place and the expected wait) when the
    wait is above the threshold: WeChat and SMS residents reply 回拨, the web chat has a button."""
    how = "点击上方“预约回拨”" if channel == "webchat" else "回复“回拨”预约回拨（可附手机号，如“回拨 13800001111”）"
    hint = SELF_SERVICE.get(channel, SELF_SERVICE["default"])
    return f"当前咨询人数较多。您可以{how}，我们保留您的排队位置，轮到您时客服回电；{hint}。"


def queue_frame(conversation_id: int, spot: QueueSpot, callback: dict[str, Any] | None) -> dict[str, Any]:
    """The web chat's ``queue`` frame: place, wait, and whether to offer peak guidance (not once a callback
    is booked)."""
    return {"type": "queue", "conversation_id": conversation_id, "position": spot.position, "waiting": spot.waiting,
            "estimated_wait_s": spot.estimated_wait_s,
            "peak": callback is None and peak(spot.estimated_wait_s), "callback": callback}
