"""The embedded endpoint's settings (GASDESK_SIP_* / GASDESK_RTP_*)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gasdesk.config import Settings
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.ua import endpoint_from_settings

pytestmark = pytest.mark.no_database


async def on_call(session: SipMediaSession) -> None:
    await session.hangup()


def test_endpoint_is_configured_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SIP_HOST", "0.0.0.0")
    monkeypatch.setenv("GASDESK_SIP_PORT", "5070")
    monkeypatch.setenv("GASDESK_SIP_ADVERTISED_HOST", "192.0.2.5")
    monkeypatch.setenv("GASDESK_RTP_PORT_MIN", "31000")
    monkeypatch.setenv("GASDESK_RTP_PORT_MAX", "31099")
    monkeypatch.setenv("GASDESK_SIP_MAX_CALLS", "12")
    ep = endpoint_from_settings(Settings(), on_call)
    assert (ep.host, ep.port, ep.advertised_host, ep.max_calls) == ("0.0.0.0", 5070, "192.0.2.5", 12)
    assert (ep.ports.low, ep.ports.high, ep.ports.capacity) == (31000, 31099, 50)


def test_defaults_listen_on_loopback() -> None:
    s = Settings()
    assert (s.sip_host, s.sip_port, s.rtp_port_min, s.rtp_port_max) == ("127.0.0.1", 5060, 20000, 20999)


def test_inverted_rtp_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_RTP_PORT_MIN", "30000")
    monkeypatch.setenv("GASDESK_RTP_PORT_MAX", "20000")
    with pytest.raises(ValidationError, match="RTP_PORT_MIN"):
        Settings()
