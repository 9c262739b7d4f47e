"""A fake FreeSWITCH that speaks the real Event Socket text protocol on 127.0.0.1 (tests, the simulator).

Two faces, as the real one has:

* **inbound** (``start_inbound``): the ``mod_event_socket`` listener — ``auth/request``, ``auth`` with a
  password check, ``api`` (``api/response``), ``bgapi`` (``+OK Job-UUID`` then a BACKGROUND_JOB event),
  ``event plain``, ``exit``;
* **outbound** (``call``): the dialplan's ``socket`` application dialling our listener for one call —
  ``connect`` answered with the channel's data, ``myevents``, ``linger``, ``sendmsg`` executes (CHANNEL_EXECUTE
  / CHANNEL_EXECUTE_COMPLETE with the Application-UUID, run in order as ``event-lock`` asks), CHANNEL_ANSWER,
  DTMF, CHANNEL_BRIDGE / UNBRIDGE, CHANNEL_HANGUP / CHANNEL_HANGUP_COMPLETE and the disconnect notice.

A :class:`CallerScript` plays the caller (and the agent's phone): which keys to press at which moment, when
to hang up. A moment is ``"<application>#<n>"``, the n-th run of that application in the call (e.g.
``"playback#2"``). Every command received is kept in ``commands`` (one readable line each) so tests can
assert the exact ESL sequence, and the raw frames in ``frames``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def _encode(value: str) -> str:
    return quote(value, safe="")


def frame_bytes(headers: dict[str, str], body: str = "") -> bytes:
    """An ESL frame as FreeSWITCH writes it (Content-Length first when there is a body)."""
    data = body.encode("utf-8")
    lines = [f"Content-Length: {len(data)}"] if data else []
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\n".join(lines) + "\n\n").encode("utf-8") + data


def event_bytes(headers: dict[str, str], body: str = "") -> bytes:
    """A ``text/event-plain`` frame: URL-encoded event headers (plus the event's own body) as the body."""
    lines = [f"{k}: {_encode(v)}" for k, v in headers.items()]
    data = body.encode("utf-8")
    if data:
        lines.append(f"Content-Length: {len(data)}")
    event = ("\n".join(lines) + "\n\n").encode("utf-8") + data
    return f"Content-Length: {len(event)}\nContent-Type: text/event-plain\n\n".encode() + event


@dataclass
class Command:
    line: str
    headers: dict[str, str]
    body: str = ""


async def read_command(reader: asyncio.StreamReader, *, limit: int = 64 * 1024) -> Command | None:
    """A client's command: a first line, header lines, an empty line, an optional body."""
    try:
        raw = await reader.readuntil(b"\n\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    if len(raw) > limit:
        return None
    lines = [line.rstrip("\r") for line in raw.decode("utf-8", "replace").split("\n") if line.strip()]
    if not lines:
        return await read_command(reader, limit=limit)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    body = ""
    if headers.get("Content-Length", "").isdigit():
        body = (await reader.readexactly(int(headers["Content-Length"]))).decode("utf-8", "replace")
    return Command(lines[0], headers, body)


def _channel_named(line: str, channels: dict[str, FakeCall]) -> FakeCall | None:
    """The originated channel a ``sendmsg <uuid>`` or ``api uuid_… <uuid>`` on the inbound socket is for."""
    words = line.split()
    if words[0] == "sendmsg" and len(words) > 1:
        return channels.get(words[1])
    if words[0] == "api" and len(words) > 2 and words[1] in ("uuid_getvar", "uuid_record", "uuid_break", "uuid_hold"):
        return channels.get(words[-1] if words[1] == "uuid_hold" else words[2])
    return None


def _api_result(command: str, variables: dict[str, str], call_uuid: str | None) -> str:
    name, _, rest = command.partition(" ")
    args = rest.split()
    if name == "status":
        return "UP 0 years, 0 days, 0 hours, 1 minute, 2 seconds\nFreeSWITCH (Version 1.10.11 fake) is ready\n"
    if name == "uuid_hold":
        target = args[-1] if args else ""
        return "+OK Success\n" if call_uuid and target == call_uuid else "-ERR No such channel!\n"
    if name == "uuid_getvar":
        if len(args) >= 2 and call_uuid and args[0] == call_uuid:
            return variables.get(args[1], "_undef_")
        return "-ERR No such channel!\n"
    if name == "uuid_break":
        return "+OK\n"
    return f"-ERR {name} Command not found!\n"


@dataclass
class CallerScript:
    """What the fake caller (and the agent's phone) do during one call."""

    caller: str = "13800138000"
    callee: str = "96777"
    press: dict[str, str] = field(default_factory=dict)  # moment → keys pressed during it
    # moment ("record#1") → what the caller says during that ``record``: 8 kHz mono 16-bit PCM, or a WAV
    # file; the fake writes it to the record's path (absent: 0.3 s of silence).
    speech: dict[str, bytes | Path] = field(default_factory=dict)
    hangup_at: str | None = None  # the caller hangs up during this moment
    agent_answers: bool = True
    agent_hangup_after_s: float | None = 0.1  # after the bridge; None = the agent never hangs up
    play_s: float = 0.05  # how long a playback lasts
    # A call gasdesk places (``bgapi originate``): what the callee does — "answer", "busy", "no_answer"
    # (rings until originate_timeout), "reject" — after ring_s of ringing.
    answer: str = "answer"
    ring_s: float = 0.05
    max_wait_s: float = 0.3  # play_and_get_digits waits at most this long for keys that never come
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


class FakeCall:
    """One call placed by the fake's ``socket`` application to our listener."""

    def __init__(self, fake: FakeFreeswitch, script: CallerScript) -> None:
        self.fake = fake
        self.script = script
        self.uuid = script.uuid
        self.commands: list[str] = []
        self.frames: list[Command] = []
        self.variables: dict[str, str] = {"playback_terminators": "*"}
        self.events_sent: list[str] = []
        self.hangup_by: str | None = None
        self.hangup_cause: str | None = None
        self.answered = False
        self.recordings: list[Path] = []
        self._writer: asyncio.StreamWriter | None = None
        self._subscribed = False
        self._apps: asyncio.Queue[Command] = asyncio.Queue()
        self._counts: dict[str, int] = {}
        self._hungup = asyncio.Event()
        self._closed = asyncio.Event()
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._running_app: tuple[str, str, str] | None = None
        self._sent_complete: set[str] = set()
        self.inbound = False  # an originated channel driven over the inbound socket (no disconnect notice)
        self.dialled = ""  # the dial string of an originate

    # -- wire --------------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _reply(self, text: str, **extra: str) -> None:
        self._send(frame_bytes({"Content-Type": "command/reply", "Reply-Text": text, **extra}))

    def _channel_headers(self) -> dict[str, str]:
        return {
            "Core-UUID": self.fake.core_uuid,
            "Event-Date-Timestamp": str(int(time.time() * 1_000_000)),
            "Channel-State": "CS_EXECUTE",
            "Channel-Name": f"sofia/external/{self.script.caller}@127.0.0.1",
            "Unique-ID": self.uuid,
            "Channel-Call-UUID": self.uuid,
            "Answer-State": "answered" if self.answered else "ringing",
            "Call-Direction": "outbound" if self.inbound else "inbound",
            "Caller-Caller-ID-Name": self.script.caller,
            "Caller-Caller-ID-Number": self.script.caller,
            "Caller-Destination-Number": self.script.callee,
            "variable_sip_call_id": f"{self.uuid[:8]}@127.0.0.1",
        }

    def _event(self, name: str, body: str = "", **headers: str) -> None:
        self.events_sent.append(name)
        if self._subscribed:
            self._send(event_bytes({"Event-Name": name, **self._channel_headers(), **headers}, body))

    # -- the call ----------------------------------------------------------------------------------

    async def run(self, host: str, port: int) -> None:
        try:
            reader, self._writer = await asyncio.open_connection(host, port)
        except OSError:
            self.hangup_by, self.hangup_cause = "system", "DESTINATION_OUT_OF_ORDER"
            self._closed.set()
            return
        runner = asyncio.create_task(self._run_apps())
        try:
            while not self._closed.is_set():
                command = await read_command(reader)
                if command is None:
                    break
                self._handle(command)
                await self._writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            if self.hangup_by is None:  # the controller went away without hanging up: FS would go on
                self.hangup_by, self.hangup_cause = "socket_closed", "SOCKET_CLOSED"
            self._writer.close()
            self._closed.set()

    def _record(self, command: Command) -> None:
        self.frames.append(command)
        if command.line.startswith("sendmsg"):
            h = command.headers
            kind = h.get("call-command", "")
            if kind == "execute":
                text = f"sendmsg execute {h.get('execute-app-name', '')} {h.get('execute-app-arg', '')}".rstrip()
            elif kind == "hangup":
                text = f"sendmsg hangup {h.get('hangup-cause', '')}".rstrip()
            else:
                text = f"sendmsg {kind}"
            self.commands.append(text)
        else:
            self.commands.append(command.line)

    def _handle(self, command: Command) -> None:
        self._record(command)
        line = command.line
        word = line.split(" ", 1)[0]
        if word == "connect":
            data = {"Content-Type": "command/reply", "Reply-Text": "+OK", "Socket-Mode": "async",
                    "Control": "full", **self._channel_headers()}
            self._send(frame_bytes({k: (v if k == "Content-Type" else _encode(v)) for k, v in data.items()}))
        elif word == "myevents" or word == "event":
            self._subscribed = True
            self._reply("+OK Events Enabled" if word == "myevents" else "+OK event listener enabled plain")
        elif word == "linger":
            self._reply("+OK will linger")
        elif word == "api" and line.startswith(f"api uuid_record {self.uuid} "):
            _, _, _, action, path = (line.split(" ", 4) + [""] * 5)[:5]
            if action == "stop" and Path(path) in self.recordings:
                self._write_recording(Path(path))
            elif action == "start" and path:
                self.recordings.append(Path(path))
            self._send(frame_bytes({"Content-Type": "api/response"}, "+OK Success\n"))
        elif word == "api":
            body = _api_result(line[4:].strip(), self.variables, self.uuid)
            self._send(frame_bytes({"Content-Type": "api/response"}, body))
        elif word == "sendmsg":
            kind = command.headers.get("call-command")
            if self._hungup.is_set():
                self._reply("-ERR Channel not found")
            elif kind == "execute" and command.headers.get("execute-app-name"):
                self._reply("+OK")
                self._apps.put_nowait(command)
            elif kind == "hangup":
                self._reply("+OK")
                self._hangup("system", command.headers.get("hangup-cause", "NORMAL_CLEARING"))
            else:
                self._reply("-ERR invalid command")
        elif word == "exit":
            self._reply("+OK bye")
            self._disconnect()
        else:
            self._reply("-ERR command not found")

    def _hangup(self, by: str, cause: str = "NORMAL_CLEARING") -> None:
        if self._hungup.is_set():
            return
        self._hungup.set()
        self.hangup_by, self.hangup_cause = by, cause
        disposition = "recv_bye" if by == "caller" else "send_bye"
        self._event("CHANNEL_HANGUP", **{"Hangup-Cause": cause, "variable_sip_hangup_disposition": disposition})
        if self._running_app is not None:
            self._complete(*self._running_app, response="FILE PLAYED")
        self._event("CHANNEL_HANGUP_COMPLETE", **{"Hangup-Cause": cause})
        self._disconnect()

    def _disconnect(self) -> None:
        if self.inbound:  # the channel is gone; the inbound socket stays (FreeSWITCH closes only its own)
            self._closed.set()
            return
        self._send(frame_bytes({"Content-Type": "text/disconnect-notice", "Controlled-Session-UUID": self.uuid,
                                "Content-Disposition": "linger", "Channel-Name": f"sofia/external/{self.script.caller}"},
                               DISCONNECT_TEXT))
        self._closed.set()
        if self._writer is not None:
            self._writer.close()

    def _complete(self, app: str, arg: str, app_uuid: str, *, response: str = "_none_", **extra: str) -> None:
        if app_uuid in self._sent_complete:
            return
        self._sent_complete.add(app_uuid)
        self._event("CHANNEL_EXECUTE_COMPLETE", **{"Application": app, "Application-Data": arg,
                                                   "Application-Response": response, "Application-UUID": app_uuid,
                                                   **extra})

    async def _sleep_or_hangup(self, seconds: float) -> bool:
        """Sleep; True if the call hung up meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hungup.wait(), seconds)
        return self._hungup.is_set()

    async def _press(self, keys: str) -> None:
        for key in keys:
            await asyncio.sleep(0.005)
            self._event("DTMF", **{"DTMF-Digit": key, "DTMF-Duration": "1600", "DTMF-Source": "RTP"})
            self._digits.put_nowait(key)

    async def _run_apps(self) -> None:
        while True:
            command = await self._apps.get()
            if self._hungup.is_set():
                continue
            h = command.headers
            app, arg = h["execute-app-name"], h.get("execute-app-arg", "")
            app_uuid = h.get("Event-UUID") or str(uuid.uuid4())
            self._counts[app] = self._counts.get(app, 0) + 1
            moment = f"{app}#{self._counts[app]}"
            self._running_app = (app, arg, app_uuid)
            self._event("CHANNEL_EXECUTE", **{"Application": app, "Application-Data": arg,
                                              "Application-UUID": app_uuid})
            while not self._digits.empty():
                self._digits.get_nowait()
            if moment in self.script.press:
                asyncio.create_task(self._press(self.script.press[moment]))
            if self.script.hangup_at == moment:
                asyncio.create_task(self._caller_hangs_up_soon())
            try:
                await self._run_app(app, arg, app_uuid)
            finally:
                self._running_app = None

    async def _caller_hangs_up_soon(self) -> None:
        await asyncio.sleep(self.script.play_s / 2)
        self._hangup("caller")

    async def _run_app(self, app: str, arg: str, app_uuid: str) -> None:
        if app == "answer":
            self.answered = True
            self._event("CHANNEL_ANSWER")
            self._complete(app, arg, app_uuid)
        elif app in ("set", "export"):
            name, _, value = arg.partition("=")
            self.variables[name] = value
            self._complete(app, arg, app_uuid)
        elif app == "unset":
            self.variables.pop(arg, None)
            self._complete(app, arg, app_uuid)
        elif app == "playback":
            await self._playback(arg, app_uuid)
        elif app == "play_and_get_digits":
            await self._play_and_get_digits(arg, app_uuid)
        elif app == "record":
            await self._record_app(arg, app_uuid)
        elif app == "record_session":
            self.recordings.append(Path(arg))
            self._complete(app, arg, app_uuid)
        elif app == "stop_record_session":
            self._write_recording(Path(arg))
            self._complete(app, arg, app_uuid)
        elif app == "bridge":
            await self._bridge(arg, app_uuid)
        elif app == "hangup":
            self._complete(app, arg, app_uuid)
            self._hangup("system", arg or "NORMAL_CLEARING")
        else:
            self._complete(app, arg, app_uuid, response="-ERR Invalid Application")

    def _playable(self, path: str) -> bool:
        return path.startswith(("silence_stream://", "tone_stream://")) or Path(path).is_file()

    async def _playback(self, arg: str, app_uuid: str) -> None:
        if not self._playable(arg):
            self._complete("playback", arg, app_uuid, response="FILE NOT FOUND")
            return
        terminators = self.variables.get("playback_terminators", "")
        deadline = asyncio.get_running_loop().time() + self.script.play_s
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                key = await asyncio.wait_for(self._digits.get(), left)
            except TimeoutError:
                break
            if terminators not in ("", "none") and (key in terminators or terminators == "any"):
                self.variables["playback_terminator_used"] = key
                break
        if not self._hungup.is_set():
            self._complete("playback", arg, app_uuid, response="FILE PLAYED")

    async def _play_and_get_digits(self, arg: str, app_uuid: str) -> None:
        parts = arg.split(" ")
        if len(parts) < 8:
            self._complete("play_and_get_digits", arg, app_uuid, response="-ERR")
            return
        max_digits, timeout_ms, terminators, var, regex = (
            int(parts[1]), int(parts[3]), parts[4], parts[7], parts[8] if len(parts) > 8 else "")
        wait_s = min(timeout_ms / 1000, self.script.max_wait_s) + self.script.play_s
        got = ""
        while len(got) < max_digits:
            try:
                key = await asyncio.wait_for(self._digits.get(), wait_s)
            except TimeoutError:
                break
            if terminators != "none" and key in terminators:
                break
            got += key
        if self._hungup.is_set():
            return
        if got and (not regex or re.match(regex, got)):
            self.variables[var] = got
        self._complete("play_and_get_digits", arg, app_uuid, response="FILE PLAYED")

    async def _record_app(self, arg: str, app_uuid: str) -> None:
        """``record <path> [limit] [thresh] [hits]``: the caller speaks for play_s (a terminator key ends it);
        the file gets the script's speech for this moment."""
        path = Path(arg.split(" ")[0])
        said = self.script.speech.get(f"record#{self._counts['record']}", b"")
        if isinstance(said, Path):
            with wave.open(str(said), "rb") as wav:
                said = wav.readframes(wav.getnframes())
        pcm = said or b"\x00\x00" * 2400
        terminators = self.variables.get("playback_terminators", "")
        with contextlib.suppress(TimeoutError):
            while True:
                key = await asyncio.wait_for(self._digits.get(), self.script.play_s)
                if terminators not in ("", "none") and key in terminators:
                    self.variables["playback_terminator_used"] = key
                    break
        if self._hungup.is_set():
            return
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(8000)
                wav.writeframes(pcm)
        self._complete("record", arg, app_uuid, response="success")

    def _write_recording(self, path: Path) -> None:
        # What FreeSWITCH leaves behind: a stereo 8 kHz WAV of the call (here: quiet noise, 0.5 s).
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as wav:
                wav.setnchannels(2)
                wav.setsampwidth(2)
                wav.setframerate(8000)
                wav.writeframes(bytes((i * 37) % 256 for i in range(4000 * 2 * 2)))

    async def _bridge(self, arg: str, app_uuid: str) -> None:
        if not self.script.agent_answers:
            if not await self._sleep_or_hangup(self.script.play_s):
                self.variables["originate_disposition"] = "NO_ANSWER"
                self._complete("bridge", arg, app_uuid, response="NO_ANSWER",
                               variable_originate_disposition="NO_ANSWER")
            return
        other = str(uuid.uuid4())
        self._event("CHANNEL_BRIDGE", **{"Other-Leg-Unique-ID": other, "Bridge-A-Unique-ID": self.uuid,
                                         "Bridge-B-Unique-ID": other})
        if self.script.agent_hangup_after_s is None:
            await self._hungup.wait()
            return
        if await self._sleep_or_hangup(self.script.agent_hangup_after_s):
            return
        self._event("CHANNEL_UNBRIDGE", **{"Other-Leg-Unique-ID": other})
        self._complete("bridge", arg, app_uuid, response="SUCCESS")
        if self.variables.get("hangup_after_bridge") == "true":
            self._hangup("agent")

    async def wait(self, timeout_s: float = 5.0) -> None:
        """Wait until the call's socket is closed."""
        await asyncio.wait_for(self._closed.wait(), timeout_s)


class FakeFreeswitch:
    """The fake switch. ``await call(host, port, script)`` places a call; ``start_inbound()`` opens :8021."""

    def __init__(self, password: str = "ClueCon") -> None:
        self.password = password
        self.core_uuid = str(uuid.uuid4())
        self.inbound_commands: list[str] = []
        self.calls: list[FakeCall] = []
        # Calls placed by ``bgapi originate``: the callee's script per dialled number (default: answers).
        self.callees: dict[str, CallerScript] = {}
        self.originated: list[FakeCall] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, host: str, port: int, script: CallerScript | None = None, *, wait_s: float | None = 5.0
                   ) -> FakeCall:
        """Place a call to our listener (the ``socket`` application); waits for its end unless wait_s is None."""
        call = FakeCall(self, script or CallerScript())
        self.calls.append(call)
        task = asyncio.create_task(call.run(host, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if wait_s is not None:
            await call.wait(wait_s)
        return call

    async def start_inbound(self) -> int:
        """Listen like mod_event_socket on 127.0.0.1 (a free port); returns the port."""
        self._server = await asyncio.start_server(self._inbound, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        authed = False
        subscribed: set[str] = set()
        pending: set[asyncio.Task[None]] = set()
        channels: dict[str, FakeCall] = {}

        def send(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        def reply(text: str, **extra: str) -> None:
            send(frame_bytes({"Content-Type": "command/reply", "Reply-Text": text, **extra}))

        async def background(job: str, command: str) -> None:
            await asyncio.sleep(0.01)
            if "BACKGROUND_JOB" in subscribed or "ALL" in subscribed:
                send(event_bytes({"Event-Name": "BACKGROUND_JOB", "Core-UUID": self.core_uuid, "Job-UUID": job,
                                  "Job-Command": command.split(" ", 1)[0],
                                  "Job-Command-Arg": command.partition(" ")[2]},
                                 _api_result(command, {}, None)))

        try:
            send(frame_bytes({"Content-Type": "auth/request"}))
            while True:
                command = await read_command(reader)
                if command is None:
                    break
                line = command.line
                word = line.split(" ", 1)[0]
                self.inbound_commands.append("auth ********" if word == "auth" else line)
                if word == "auth":
                    if line[5:] == self.password:
                        authed = True
                        reply("+OK accepted")
                    else:
                        reply("-ERR invalid")
                        send(frame_bytes({"Content-Type": "text/disconnect-notice"}, DISCONNECT_TEXT))
                        break
                elif not authed:
                    reply("-ERR invalid")
                elif word in ("api", "sendmsg") and (channel := _channel_named(line, channels)) is not None:
                    channel._handle(command)
                    if word == "api":
                        self.inbound_commands[-1] = line  # kept in the channel's commands too
                elif word == "api" and line.startswith("api uuid_kill "):
                    target = channels.get(line.split()[2]) if len(line.split()) > 2 else None
                    if target is not None:
                        target._hangup("system", line.split()[3] if len(line.split()) > 3 else "NORMAL_CLEARING")
                    send(frame_bytes({"Content-Type": "api/response"},
                                     "+OK\n" if target is not None else "-ERR No such channel!\n"))
                elif word == "api":
                    send(frame_bytes({"Content-Type": "api/response"}, _api_result(line[4:].strip(), {}, None)))
                elif word == "filter":
                    parts = line.split(" ", 2)
                    reply(f"+OK filter added. [{parts[1] if len(parts) > 1 else ''}]=[{parts[2] if len(parts) > 2 else ''}]")
                elif word == "bgapi" and line.startswith("bgapi originate "):
                    job = command.headers.get("Job-UUID") or str(uuid.uuid4())
                    reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job})
                    bg = asyncio.create_task(self._originate(job, line[len("bgapi originate "):].strip(), writer,
                                                             subscribed, channels))
                    pending.add(bg)
                    bg.add_done_callback(pending.discard)
                elif word == "bgapi":
                    job = command.headers.get("Job-UUID") or str(uuid.uuid4())
                    reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job})
                    bg = asyncio.create_task(background(job, line[6:].strip()))
                    pending.add(bg)
                    bg.add_done_callback(pending.discard)
                elif word == "event":
                    names = line.split()[2:] if len(line.split()) > 1 and line.split()[1] == "plain" else line.split()[1:]
                    subscribed.update(n.upper() for n in names)
                    reply("+OK event listener enabled plain")
                elif word == "exit":
                    reply("+OK bye")
                    send(frame_bytes({"Content-Type": "text/disconnect-notice"}, DISCONNECT_TEXT))
                    break
                else:
                    reply("-ERR command not found")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for bg in list(pending):
                bg.cancel()
            for channel in channels.values():  # FreeSWITCH would go on; the fake's channel ends with the socket
                channel._running_app = None
                channel._hungup.set()
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _originate(self, job: str, arg: str, writer: asyncio.StreamWriter, subscribed: set[str],
                         channels: dict[str, FakeCall]) -> None:
        """``originate {vars}sofia/gateway/<gw>/<number> &park()``: a new channel rings the callee of that
        number; answered, it is parked and driven by ``sendmsg <uuid>`` on this socket; else the job fails
        with the hangup cause."""
        match = re.match(r"^\{([^}]*)\}(\S+)\s+&park\(\)$", arg)
        variables = dict(v.partition("=")[::2] for v in match.group(1).split(",")) if match else {}
        dial = match.group(2) if match else ""
        number = dial.rsplit("/", 1)[-1]
        script = self.callees.get(number) or CallerScript()
        script = CallerScript(**{**script.__dict__, "uuid": variables.get("origination_uuid") or str(uuid.uuid4()),
                                 "caller": variables.get("origination_caller_id_number", "0000"), "callee": number})
        call = FakeCall(self, script)
        call.inbound, call.dialled, call._writer = True, dial, writer
        call._subscribed = True
        call.variables.update(variables)
        self.originated.append(call)

        def job_done(body: str) -> None:
            if "BACKGROUND_JOB" in subscribed and not writer.is_closing():
                writer.write(event_bytes({"Event-Name": "BACKGROUND_JOB", "Core-UUID": self.core_uuid, "Job-UUID": job,
                                          "Job-Command": "originate", "Job-Command-Arg": arg}, body))

        if not match or not dial.startswith("sofia/gateway/"):
            job_done("-ERR INVALID_GATEWAY\n")
            return
        ring_s = script.ring_s
        if script.answer == "no_answer":
            ring_s = float(variables.get("originate_timeout", "60") or 60)
        await asyncio.sleep(ring_s)
        cause = {"busy": "USER_BUSY", "no_answer": "NO_ANSWER", "reject": "CALL_REJECTED"}.get(script.answer)
        if cause is not None:
            call._hangup("callee", cause)
            job_done(f"-ERR {cause}\n")
            return
        channels[call.uuid] = call
        call.answered = True
        call._event("CHANNEL_ANSWER")
        job_done(f"+OK {call.uuid}\n")
        runner = asyncio.create_task(call._run_apps())
        try:
            await call._hungup.wait()
        finally:
            runner.cancel()
