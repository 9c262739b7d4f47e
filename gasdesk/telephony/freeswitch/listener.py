"""Accepts FreeSWITCH's outbound Event Socket connections (the dialplan's ``socket`` application), one per
call, and hands each call to the call handler as a :class:`MediaSession`.

Why outbound mode: an IVR is one conversation per call, and a socket per call gives exactly that — the
channel's data arrives with ``connect``, ``myevents`` delivers only that call's events, commands need no
UUID bookkeeping, a slow or broken call cannot delay the others' events (no shared event stream to
demultiplex), and when gasdesk is down the dialplan simply goes on to its next action (a fallback
announcement or queue) instead of calls sitting parked with nobody driving them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gasdesk.config import Settings
from gasdesk.telephony.freeswitch.esl import EslConnection, EslError, Limits
from gasdesk.telephony.freeswitch.session import FreeswitchMediaSession
from gasdesk.telephony.media import CallHungUp, MediaSession

log = logging.getLogger(__name__)

CallHandler = Callable[[MediaSession], Awaitable[None]]


class FreeswitchListener:
    """A TCP server for the ``socket`` application. ``await start()`` → the bound port; ``await close()``."""

    def __init__(self, handler: CallHandler, *, host: str = "127.0.0.1", port: int = 8084, max_calls: int = 200,
                 command_timeout_s: float = 5.0, limits: Limits | None = None) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_calls = max_calls
        self.command_timeout_s = command_timeout_s
        self.limits = limits or Limits()
        self.active_calls = 0
        self.refused_calls = 0
        self.failed_setups = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, handler: CallHandler) -> FreeswitchListener:
        return cls(handler, host=settings.freeswitch_listen_host, port=settings.freeswitch_listen_port,
                   max_calls=settings.freeswitch_max_calls, command_timeout_s=settings.freeswitch_command_timeout_s)

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=self.limits.header_block)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop accepting and end the calls in progress."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active_calls >= self.max_calls:
            # Over the hard cap: close at once; the dialplan's next action (e.g. a busy announcement) runs.
            self.refused_calls += 1
            writer.close()
            return
        self.active_calls += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._run_call(reader, writer)
        finally:
            self.active_calls -= 1
            self._tasks.discard(task)

    async def _run_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = EslConnection(reader, writer, limits=self.limits, command_timeout_s=self.command_timeout_s)
        try:
            try:
                session = await asyncio.wait_for(FreeswitchMediaSession.accept(conn), self.command_timeout_s * 3)
            except (EslError, TimeoutError) as exc:
                self.failed_setups += 1
                log.warning("FreeSWITCH call socket set-up failed: %s", exc.__class__.__name__)
                return
            try:
                await self.handler(session)
            except CallHungUp:
                pass
            except Exception:  # noqa: BLE001 - one call's bug must not stop the listener
                log.exception("call handler failed (call %s)", session.uuid)
            finally:
                with contextlib.suppress(Exception):
                    await session.hangup()
        finally:
            await conn.close()
