"""The hotline at run time: the media back-ends switched on in Settings, each handing every call to
``controller.handle_call`` with prompts from the TTS (or an admin's recording).

``gasdesk hotline`` runs them in a process of their own (production, and scale-out: one hotline process, any
number of web processes, all sharing the database). With ``GASDESK_HOTLINE_IN_APP=true`` the web app starts
them in its lifespan instead — the one-process embedded mode of a small utility or a demo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gasdesk.config import Settings
from gasdesk.emergency.phone import PhoneAlerts, queue_phone_alert
from gasdesk.emergency.service import register_phone_alerter
from gasdesk.telephony.asr import recognizer_from_settings
from gasdesk.telephony.controller import handle_call
from gasdesk.telephony.freeswitch.listener import FreeswitchListener
from gasdesk.telephony.freeswitch.originate import FreeswitchDialer
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT, SCRIPT_PROMPTS, Script, prompt_key
from gasdesk.telephony.media import MediaSession
from gasdesk.telephony.originate import Dialer, OutboundCalls, set_outbound
from gasdesk.telephony.sip.session import BridgeProvider
from gasdesk.telephony.sip.ua import SipDialer, SipEndpoint, endpoint_from_settings
from gasdesk.telephony.tts import PromptRenderer

if TYPE_CHECKING:
    from gasdesk.telephony.softphone import WebRtcBridgeProvider

log = logging.getLogger(__name__)


def freeswitch_endpoint_for(settings: Settings) -> Callable[[int], str]:
    """The dial string FreeSWITCH bridges a caller to for an agent (``freeswitch_agent_dial``)."""
    template = settings.freeswitch_agent_dial
    return lambda agent_id: template.format(agent_id=agent_id)


class Hotline:
    """The running back-ends; ``await close()`` stops accepting calls and ends the ones in progress."""

    def __init__(self) -> None:
        self.freeswitch: FreeswitchListener | None = None
        self.sip: SipEndpoint | None = None
        self.softphone: WebRtcBridgeProvider | None = None
        self.outbound: OutboundCalls | None = None  # calls gasdesk places (emergency alerts, callbacks)
        self.phone_alerts: PhoneAlerts | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @property
    def running(self) -> bool:
        return bool(self._closers)

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers.clear()


async def start_hotline(settings: Settings, *, bridge_provider: BridgeProvider | None = None) -> Hotline:
    """Start every back-end enabled in ``settings`` (none enabled: an idle Hotline). ``bridge_provider``
    connects embedded SIP callers to agents; when none is given and the hotline runs inside the web app
    (``hotline_in_app``), agents' browser softphones do (``telephony/softphone.py``)."""
    hotline = Hotline()
    prompts = PromptRenderer.from_settings(settings)
    recognizer = recognizer_from_settings(settings)  # DTMF only unless asr_url names a FunASR server
    if settings.freeswitch_enabled:
        endpoint_for = freeswitch_endpoint_for(settings)

        async def on_freeswitch_call(media: MediaSession) -> None:
            await handle_call(media, prompts=prompts, endpoint_for=endpoint_for, recognizer=recognizer)

        hotline.freeswitch = FreeswitchListener.from_settings(settings, on_freeswitch_call)
        port = await hotline.freeswitch.start()
        hotline._closers.append(hotline.freeswitch.close)
        log.info("hotline: FreeSWITCH outbound Event Socket listener on %s:%s", settings.freeswitch_listen_host, port)
    if settings.sip_enabled:
        softphone: WebRtcBridgeProvider | None = None
        if bridge_provider is None and settings.hotline_in_app:
            # One process: the agents' consoles reach this process, so their browsers can be the phones.
            # aiortc/PyAV (~0.4 s to import) only where the browser softphone runs.
            from gasdesk.telephony.softphone import WebRtcBridgeProvider  # noqa: PLC0415 - heavy optional library

            softphone = WebRtcBridgeProvider()
            softphone.install()
            hotline.softphone, bridge_provider = softphone, softphone
            hotline._closers.append(softphone.close)

        async def on_sip_call(media: MediaSession) -> None:
            if softphone is not None:
                softphone.attach(media)
            try:
                await handle_call(media, prompts=prompts, recognizer=recognizer)
            finally:
                if softphone is not None:
                    softphone.release(media)

        # Beyond sip_max_calls the endpoint itself answers with the overflow prompt (no database work at all).
        overflow = await prompts.render(Script.model_validate(DEFAULT_SCRIPT).prompts.overflow,
                                        key=prompt_key(SCRIPT_PROMPTS, "overflow"))
        hotline.sip = endpoint_from_settings(settings, on_sip_call, overflow_prompt=overflow,
                                             bridge_provider=bridge_provider)
        await hotline.sip.start()
        hotline._closers.append(hotline.sip.stop)
        log.info("hotline: embedded SIP endpoint on udp %s:%s", settings.sip_host, hotline.sip.port)
    await _start_outbound(settings, hotline, prompts)
    return hotline


async def _start_outbound(settings: Settings, hotline: Hotline, prompts: PromptRenderer) -> None:
    """Calls placed by gasdesk, when a back-end that runs here has an outbound route: FreeSWITCH's gateway
    first (production), else the embedded endpoint's SIP gateway. Emergency phone alerts are queued by any
    process (the hook) and placed from here."""
    register_phone_alerter(queue_phone_alert)
    dialer: Dialer | None = None
    if settings.freeswitch_enabled and settings.freeswitch_outbound_gateway:
        dialer = FreeswitchDialer.from_settings(settings)
    elif settings.sip_outbound_proxy and hotline.sip is not None:
        dialer = SipDialer(hotline.sip, settings.sip_outbound_proxy)
    if dialer is None:
        return
    calls = OutboundCalls.from_settings(settings, dialer)
    set_outbound(calls)
    hotline.outbound = calls
    alerts = PhoneAlerts(calls, prompts, poll_s=settings.emergency_phone_poll_s)
    await alerts.start()
    hotline.phone_alerts = alerts

    async def stop_outbound() -> None:
        await alerts.close()
        await calls.close()
        set_outbound(None)

    hotline._closers.append(stop_outbound)
    log.info("hotline: outbound calls through %s", dialer.backend)


async def serve_hotline(settings: Settings, *, stop: asyncio.Event | None = None,
                        on_start: Callable[[int], Awaitable[None]] | None = None) -> None:
    """``gasdesk hotline``: run the enabled back-ends until ``stop`` is set (or forever). ``on_start`` gets the
    FreeSWITCH listener's port (or the SIP port) once listening."""
    hotline = await start_hotline(settings)
    try:
        if on_start is not None:
            port = hotline.freeswitch.port if hotline.freeswitch else hotline.sip.port if hotline.sip else 0
            await on_start(port)
        await (stop or asyncio.Event()).wait()
    finally:
        await hotline.close()
