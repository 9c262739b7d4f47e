"""The runtime picks the outbound route: FreeSWITCH's gateway, else the embedded endpoint's SIP gateway, else
none (gasdesk cannot place calls in this process); emergency phone alerts poll only where calls can be placed."""

from __future__ import annotations

import pytest

from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.telephony.originate import outbound, outbound_configured
from gasdesk.telephony.runtime import start_hotline
from tests.telephony.sip.conftest import free_rtp_range


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = free_rtp_range()
    for name, value in {"SIP_ENABLED": "true", "SIP_PORT": "0", "RTP_PORT_MIN": str(low),
                        "RTP_PORT_MAX": str(high)}.items():
        monkeypatch.setenv(f"GASDESK_{name}", value)
    reset_settings_cache()


async def test_embedded_sip_with_a_gateway_places_calls(embedded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SIP_OUTBOUND_PROXY", "127.0.0.1:5099")
    monkeypatch.setenv("GASDESK_OUTBOUND_MAX_CALLS", "2")
    reset_settings_cache()
    hotline = await start_hotline(get_settings())
    try:
        calls = outbound()
        assert calls is not None and calls is hotline.outbound
        assert (calls.backend, calls.max_calls) == ("sip", 2)
        assert hotline.phone_alerts is not None
    finally:
        await hotline.close()
    assert outbound() is None


async def test_freeswitch_gateway_wins(embedded, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"FREESWITCH_ENABLED": "true", "FREESWITCH_LISTEN_PORT": "0",
                        "FREESWITCH_OUTBOUND_GATEWAY": "trunk", "SIP_OUTBOUND_PROXY": "127.0.0.1:5099"}.items():
        monkeypatch.setenv(f"GASDESK_{name}", value)
    reset_settings_cache()
    hotline = await start_hotline(get_settings())
    try:
        calls = outbound()
        assert calls is not None and calls.backend == "freeswitch"
    finally:
        await hotline.close()


async def test_no_route_no_outbound_calls(embedded) -> None:
    assert not outbound_configured(get_settings())
    hotline = await start_hotline(get_settings())
    try:
        assert outbound() is None and hotline.outbound is None and hotline.phone_alerts is None
    finally:
        await hotline.close()


def test_route_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SIP_OUTBOUND_PROXY", "gw.example.net;transport=tcp")
    reset_settings_cache()
    with pytest.raises(ValueError, match="sip_outbound_proxy"):
        get_settings()
