"""Real gasdesk servers for tests, each its own process, forked from a pre-loaded parent.

Starting ``python -m uvicorn gasdesk.web.app:create_app`` costs ~2.8 s here, ~2.2 s of it importing gasdesk,
FastAPI, SQLAlchemy and scikit-learn again — paid by every browser test and every multi-process test. A
multiprocessing *forkserver* imports all of that (and loads the NLU model and jieba) once per pytest process;
each server is then a fresh ``fork()`` of it that reads its settings from the environment it is given, builds
the app and serves (~0.6 s). Every test still gets its own process, its own database and its own in-memory
state (sockets, ACD, limits): nothing of one test's server survives into the next.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["tests.server_preload"])


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody uses right now: TCP by default, ``socket.SOCK_DGRAM`` for UDP (SIP, RTP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_and_tcp_port() -> int:
    """A loopback port in 10000-19999 free for both UDP and TCP: below the kernel's ephemeral range and the RTP ranges.

    baresip listens for SIP on UDP *and* TCP at the port it is given. A port the kernel hands out for
    ``bind(0)`` lies in the ephemeral range, where another test's outgoing connection can take the TCP side
    between this check and baresip's bind (CI saw ``tcp: sock_bind: Address already in use``). Ports here are
    only ever taken by an explicit bind, and the tests' RTP ranges start at 20000.
    """
    for _ in range(200):
        port = 10000 + secrets.randbelow(10000)
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t,
            ):
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def _serve(port: int, env: dict[str, str], log_path: str) -> None:  # pragma: no cover - runs in the child
    """The child: its own environment and log file, a fresh Settings, then uvicorn as ``gasdesk serve`` runs it."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.clear()
    os.environ.update(env)
    import uvicorn  # noqa: PLC0415 - already imported by the forkserver's preload; here for the child only

    from gasdesk.config import reset_settings_cache  # noqa: PLC0415 - as above
    from gasdesk.web.app import create_app  # noqa: PLC0415 - as above

    reset_settings_cache()
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")


class LiveServer:
    """One gasdesk server process on a free loopback port; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, ready_path: str = "/healthz") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, **env}
        self.process = _CONTEXT.Process(target=_serve, args=(self.port, full_env, str(log_path)), daemon=True)
        self.process.start()
        deadline = time.monotonic() + 60  # a loaded machine may take a while (the first start loads the preload)
        while time.monotonic() < deadline:
            if not self.process.is_alive():
                raise RuntimeError("live server exited: " + self.log())
            try:
                if httpx.get(self.base + ready_path, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("live server did not start: " + self.log())

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5)

