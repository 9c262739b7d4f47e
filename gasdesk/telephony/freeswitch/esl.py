"""The FreeSWITCH Event Socket (ESL) text protocol over asyncio, for both directions.

A frame is ``Name: value`` header lines ended by an empty line, then ``Content-Length`` bytes of body.
Replies to commands (``command/reply``, ``api/response``) arrive in the order the commands were sent;
events (``text/event-plain``: a body of URL-encoded headers, an optional body of its own) arrive at any
time; ``text/disconnect-notice`` says FreeSWITCH is closing. ``auth/request`` greets inbound clients.

The peer is not trusted to behave: header blocks, header counts and bodies are capped, every wait for a
reply has a timeout, and the event queue is bounded. Anything malformed closes the connection with
:class:`EslProtocolError` — one bad call socket never takes the process down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote

from gasdesk.config import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BLOCK = 64 * 1024  # bytes of one header block (a CHANNEL_DATA dump is ~5-10 KB)
MAX_HEADERS = 512
MAX_BODY = 1024 * 1024  # one frame's body (an event with all channel variables stays far below)
MAX_QUEUED_EVENTS = 2000
T = TypeVar("T")
_SAFE_ARG = re.compile(r"^[^\r\n]*$")


class EslError(Exception):
    """Anything that went wrong on an Event Socket."""


class EslProtocolError(EslError):
    """The peer sent something that is not the ESL protocol, or too much of it."""


class EslAuthError(EslError):
    """FreeSWITCH refused the password."""


class EslCommandError(EslError):
    """A command was answered with ``-ERR``."""


class EslTimeout(EslError):
    """No reply (or event) in time."""


class EslClosed(EslError):
    """The connection is gone."""


@dataclass
class Frame:
    """One ESL frame: its headers (names as sent) and its body."""

    headers: dict[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")


@dataclass
class Event:
    """A decoded ``text/event-plain`` event."""

    headers: dict[str, str]
    body: str = ""

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclass
class Limits:
    header_block: int = MAX_HEADER_BLOCK
    headers: int = MAX_HEADERS
    body: int = MAX_BODY
    queued_events: int = MAX_QUEUED_EVENTS


def _parse_header_lines(block: str, limits: Limits, *, decode: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    lines = [line for line in block.split("\n") if line.strip("\r")]
    if len(lines) > limits.headers:
        raise EslProtocolError(f"too many headers ({len(lines)})")
    for line in lines:
        name, sep, value = line.rstrip("\r").partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise EslProtocolError("malformed header line")
        value = value.strip()
        headers[name] = unquote(value) if decode else value
    return headers


async def read_frame(reader: asyncio.StreamReader, limits: Limits | None = None) -> Frame | None:
    """Read one frame; None at a clean end of stream. Raises EslProtocolError on malformed or oversized input."""
    limits = limits or Limits()
    try:
        raw = await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise EslProtocolError("connection closed inside a frame") from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise EslProtocolError("header block too large") from exc
    if len(raw) > limits.header_block:
        raise EslProtocolError("header block too large")
    try:
        block = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EslProtocolError("header block is not UTF-8") from exc
    if not block.strip():
        return await read_frame(reader, limits)  # stray blank lines between frames are harmless
    headers = _parse_header_lines(block, limits, decode=False)
    body = b""
    if "Content-Length" in headers:
        length_text = headers["Content-Length"]
        if not length_text.isdigit():
            raise EslProtocolError("bad Content-Length")
        length = int(length_text)
        if length > limits.body:
            raise EslProtocolError(f"body too large ({length} bytes)")
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise EslProtocolError("connection closed inside a body") from exc
    return Frame(headers=headers, body=body)


def parse_event_plain(body: bytes, limits: Limits | None = None) -> Event:
    """Decode a ``text/event-plain`` body: URL-encoded headers, a blank line, then the event's own body."""
    limits = limits or Limits()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EslProtocolError("event is not UTF-8") from exc
    head, _, rest = text.partition("\n\n")
    headers = _parse_header_lines(head, limits, decode=True)
    if "Event-Name" not in headers:
        raise EslProtocolError("event without Event-Name")
    event_body = ""
    if "Content-Length" in headers:
        length_text = headers["Content-Length"]
        if not length_text.isdigit():
            raise EslProtocolError("bad event Content-Length")
        event_body = rest.encode("utf-8")[: int(length_text)].decode("utf-8", "replace")
    return Event(headers=headers, body=event_body)


def encode_frame(first_line: str, headers: dict[str, str] | None = None, body: str = "") -> bytes:
    """A command as bytes; refuses line breaks in any part that must stay on one line (injection)."""
    parts = [first_line, *(f"{k}: {v}" for k, v in (headers or {}).items())]
    for part in parts:
        if not _SAFE_ARG.match(part):
            raise ValueError("line break in an ESL command")
    data = body.encode("utf-8")
    if data:
        parts.append(f"Content-Length: {len(data)}")
    return ("\n".join(parts) + "\n\n").encode("utf-8") + data


EventCallback = Callable[[Event], None]


@dataclass
class _Pending:
    command: str
    future: asyncio.Future[Frame] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class EslConnection:
    """One Event Socket connection (inbound client or outbound call socket).

    A reader task dispatches frames: replies resolve the oldest pending command, BACKGROUND_JOB events
    resolve ``bgapi`` calls by Job-UUID, CHANNEL_EXECUTE_COMPLETE resolves ``execute`` calls by
    Application-UUID, and every event is also handed to ``on_event`` (if set) and kept in ``events``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 limits: Limits | None = None, command_timeout_s: float = 5.0) -> None:
        self.reader = reader
        self.writer = writer
        self.limits = limits or Limits()
        self.command_timeout_s = command_timeout_s
        self.on_event: EventCallback | None = None
        self.events: asyncio.Queue[Event] = asyncio.Queue(maxsize=self.limits.queued_events)
        self.disconnect_notice: Frame | None = None
        self.auth_requested = asyncio.Event()
        self._pending: list[_Pending] = []
        self._jobs: dict[str, asyncio.Future[Event]] = {}
        self._executions: dict[str, asyncio.Future[Event]] = {}
        self._write_lock = asyncio.Lock()
        self._closed = asyncio.get_running_loop().create_future()
        self._reader_task = asyncio.create_task(self._read_loop(), name="esl-reader")

    # -- connection set-up -------------------------------------------------------------------------

    @classmethod
    async def open_inbound(cls, host: str, port: int, password: str, *, timeout_s: float = 5.0,
                           limits: Limits | None = None) -> EslConnection:
        """Connect to FreeSWITCH's Event Socket and authenticate. Raises EslAuthError on a wrong password."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=(limits or Limits()).header_block), timeout_s)
        except (OSError, TimeoutError) as exc:
            raise EslClosed(f"cannot reach FreeSWITCH at {host}:{port}") from exc
        conn = cls(reader, writer, limits=limits, command_timeout_s=timeout_s)
        try:
            await conn.authenticate(password)
        except BaseException:
            await conn.close()
            raise
        return conn

    @classmethod
    async def open_from_settings(cls, settings: Settings) -> EslConnection:
        """The inbound connection to FreeSWITCH's Event Socket configured by ``freeswitch_host/port/password``."""
        if settings.freeswitch_password is None:
            raise EslAuthError("GASDESK_FREESWITCH_PASSWORD is not set")
        return await cls.open_inbound(settings.freeswitch_host, settings.freeswitch_port,
                                      settings.freeswitch_password.get_secret_value(),
                                      timeout_s=settings.freeswitch_command_timeout_s)

    async def authenticate(self, password: str) -> None:
        """Wait for ``auth/request`` and answer it (the password is never logged)."""
        try:
            await asyncio.wait_for(self.wait_or_closed(self.auth_requested.wait()), self.command_timeout_s)
        except TimeoutError as exc:
            raise EslTimeout("no auth/request from FreeSWITCH") from exc
        reply = await self._command(f"auth {password}", log_as="auth ********")
        if not reply.reply_text.startswith("+OK"):
            raise EslAuthError("FreeSWITCH refused the Event Socket password")

    # -- commands ----------------------------------------------------------------------------------

    async def command(self, line: str, headers: dict[str, str] | None = None, body: str = "") -> Frame:
        """Send a command and return its reply; ``-ERR`` raises EslCommandError."""
        reply = await self._command(line, headers, body)
        if reply.content_type == "command/reply" and reply.reply_text.startswith("-ERR"):
            raise EslCommandError(f"{line.split(' ', 1)[0]}: {reply.reply_text}")
        return reply

    async def api(self, command: str) -> str:
        """``api <command>`` → the response body (raises EslCommandError when it starts with ``-ERR``)."""
        reply = await self._command(f"api {command}")
        text = reply.body.decode("utf-8", "replace")
        if text.startswith("-ERR"):
            raise EslCommandError(f"api {command.split(' ', 1)[0]}: {text.strip()}")
        return text

    async def bgapi(self, command: str, *, timeout_s: float = 30.0, job_uuid: str | None = None) -> str:
        """``bgapi <command>``: FreeSWITCH answers at once with a Job-UUID and later sends a BACKGROUND_JOB
        event carrying the result. We choose the Job-UUID ourselves so the waiter exists before the event.
        The connection must be subscribed to BACKGROUND_JOB (``event plain BACKGROUND_JOB``); ``job_uuid`` lets
        the caller add a ``filter Job-UUID`` for it first."""
        job = job_uuid or str(uuid.uuid4())
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._jobs[job] = future
        try:
            reply = await self.command(f"bgapi {command}", {"Job-UUID": job})
            if reply.headers.get("Job-UUID", job) != job:
                raise EslProtocolError("bgapi reply for another job")
            try:
                event = await asyncio.wait_for(self.wait_or_closed(future), timeout_s)
            except TimeoutError as exc:
                raise EslTimeout(f"bgapi {command.split(' ', 1)[0]}: no BACKGROUND_JOB in {timeout_s}s") from exc
        finally:
            self._jobs.pop(job, None)
        if event.body.startswith("-ERR"):
            raise EslCommandError(f"bgapi {command.split(' ', 1)[0]}: {event.body.strip()}")
        return event.body

    async def subscribe(self, *events: str) -> None:
        await self.command("event plain " + " ".join(events))

    async def sendmsg(self, headers: dict[str, str], *, uuid_: str | None = None) -> None:
        await self.command(f"sendmsg {uuid_}" if uuid_ else "sendmsg", headers)

    async def begin_execute(self, app: str, arg: str = "", *, uuid_: str | None = None,
                            event_lock: bool = True) -> asyncio.Future[Event]:
        """Start a dialplan application on the channel (``sendmsg`` ``call-command: execute``); returns the
        future of its CHANNEL_EXECUTE_COMPLETE, matched by the Application-UUID we chose. With
        ``event-lock`` FreeSWITCH runs the applications one after another, in the order sent."""
        app_uuid = str(uuid.uuid4())
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._executions[app_uuid] = future
        future.add_done_callback(lambda _: self._executions.pop(app_uuid, None))
        headers = {"call-command": "execute", "execute-app-name": app}
        if arg:
            headers["execute-app-arg"] = arg
        if event_lock:
            headers["event-lock"] = "true"
        headers["Event-UUID"] = app_uuid  # FreeSWITCH reports it back as Application-UUID
        try:
            await self.sendmsg(headers, uuid_=uuid_)
        except BaseException:
            future.cancel()
            raise
        return future

    async def execute(self, app: str, arg: str = "", *, uuid_: str | None = None, event_lock: bool = True,
                      timeout_s: float | None = None) -> Event:
        """Run a dialplan application on the channel and wait for its CHANNEL_EXECUTE_COMPLETE."""
        future = await self.begin_execute(app, arg, uuid_=uuid_, event_lock=event_lock)
        try:
            return await asyncio.wait_for(self.wait_or_closed(future), timeout_s)
        except TimeoutError as exc:
            raise EslTimeout(f"{app}: not complete in {timeout_s}s") from exc
        finally:
            future.cancel()

    # -- plumbing ----------------------------------------------------------------------------------

    async def _command(self, line: str, headers: dict[str, str] | None = None, body: str = "", *,
                       log_as: str | None = None) -> Frame:
        data = encode_frame(line, headers, body)
        pending = _Pending(log_as or line.split(" ", 1)[0])
        async with self._write_lock:  # the order of writes is the order of replies
            if self._closed.done():
                raise EslClosed("Event Socket connection closed")
            self._pending.append(pending)
            try:
                self.writer.write(data)
                await asyncio.wait_for(self.writer.drain(), self.command_timeout_s)
            except (OSError, TimeoutError) as exc:
                await self._fail(EslClosed("write failed"))
                raise EslClosed("write failed") from exc
        try:
            return await asyncio.wait_for(self.wait_or_closed(pending.future), self.command_timeout_s)
        except TimeoutError as exc:
            # The reply order is lost once one reply is missing: this connection cannot be trusted further.
            await self._fail(EslTimeout(f"no reply to {pending.command}"))
            raise EslTimeout(f"no reply to {pending.command} in {self.command_timeout_s}s") from exc

    async def wait_or_closed(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` but raise the connection's error at once if it closes meanwhile."""
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait({task, self._closed}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise self._closed.result()

    async def _read_loop(self) -> None:
        error: EslError = EslClosed("connection closed by peer")
        try:
            while True:
                frame = await read_frame(self.reader, self.limits)
                if frame is None:
                    break
                self._dispatch(frame)
        except EslError as exc:
            log.warning("Event Socket: %s; closing", exc)
            error = exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            error = EslClosed(f"connection lost: {exc.__class__.__name__}")
        except asyncio.CancelledError:
            error = EslClosed("connection closed")
        await self._fail(error)

    def _dispatch(self, frame: Frame) -> None:
        kind = frame.content_type
        if kind in ("command/reply", "api/response"):
            if not self._pending:
                raise EslProtocolError(f"unexpected {kind}")
            pending = self._pending.pop(0)
            if not pending.future.done():
                pending.future.set_result(frame)
        elif kind == "text/event-plain":
            self._dispatch_event(parse_event_plain(frame.body, self.limits))
        elif kind == "auth/request":
            self.auth_requested.set()
        elif kind == "text/disconnect-notice":
            self.disconnect_notice = frame
        elif kind in ("log/data", "text/event-json", "text/event-xml"):
            pass  # never subscribed to; ignore rather than fail
        else:
            raise EslProtocolError("unknown Content-Type")

    def _dispatch_event(self, event: Event) -> None:
        if event.name == "BACKGROUND_JOB":
            job = self._jobs.get(event.get("Job-UUID"))
            if job is not None and not job.done():
                job.set_result(event)
        elif event.name == "CHANNEL_EXECUTE_COMPLETE":
            execution = self._executions.get(event.get("Application-UUID"))
            if execution is not None and not execution.done():
                execution.set_result(event)
        if self.on_event is not None:
            self.on_event(event)
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            # Nobody reads the log of events: keep the newest, the callback already saw this one.
            self.events.get_nowait()
            self.events.put_nowait(event)

    async def _fail(self, error: EslError) -> None:
        first = not self._closed.done()
        if first:
            self._closed.set_result(error)
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(error)
                pending.future.exception()  # retrieved: nobody may be waiting any more
        self._pending.clear()
        for waiter in [*self._jobs.values(), *self._executions.values()]:
            waiter.cancel()
        self.writer.close()
        if first and self.on_event is not None:
            self.on_event(Event({"Event-Name": "ESL_DISCONNECTED"}))

    @property
    def closed(self) -> bool:
        return self._closed.done()

    async def wait_closed(self) -> EslError:
        return await asyncio.shield(self._closed)

    async def close(self) -> None:
        """Close the connection and stop the reader (idempotent)."""
        if not self._reader_task.done():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        await self._fail(EslClosed("connection closed"))
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()
