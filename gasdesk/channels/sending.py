"""What every outbound channel adapter promises (WeChat 客服消息/template messages, SMS providers).

An adapter sends one message and either returns a ``SendResult`` or raises ``SendFailed`` saying whether a
later retry may succeed (a provider outage, a timeout, an expired token refreshed too late) or not (an
unknown number, WeChat's 48-hour window closed, a template the provider rejects). The durable outbound
queue (``gasdesk/outbound``) turns that into queued → sent → delivered / failed, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message; ``provider_id`` identifies it in later delivery receipts."""

    provider_id: str | None = None


class SendFailed(Exception):
    """The provider did not take the message. ``reason`` is a short code shown to staff (no personal data)."""

    def __init__(self, reason: str, *, retryable: bool, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retryable = retryable
        self.detail = detail
