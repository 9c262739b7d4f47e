"""A recording fake for the outbound providers, shared by the tests of resident notices and broadcasts."""

from __future__ import annotations

from collections.abc import Iterator

from gasdesk.channels.sending import SendResult
from gasdesk.outbound import service as outbound
from gasdesk.outbound.service import Outgoing, register_sender


def recording_senders() -> Iterator[list[Outgoing]]:
    """Both providers (SMS, WeChat) as one fake recording what it was asked to send; the real senders are
    restored afterwards. Use as the body of a generator fixture: ``yield from recording_senders()``."""
    got: list[Outgoing] = []
    saved = dict(outbound.SENDERS)

    async def record(message: Outgoing) -> SendResult:
        got.append(message)
        return SendResult(provider_id=f"p{message.id}")

    register_sender("sms", record)
    register_sender("wechat", record)
    try:
        yield got
    finally:
        outbound.SENDERS.clear()
        outbound.SENDERS.update(saved)
