"""A scale-out cluster on one machine: PostgreSQL, Redis, several ``gasdesk serve`` processes, one ``gasdesk
worker`` and nginx in front as the WebSocket-aware load balancer.

Used by ``make run-cluster`` (``gasdesk cluster``), the fault tests (``tests/cluster``) and
``bench/chat_load.py --cluster``. Everything listens on loopback (PostgreSQL on a Unix socket only) and runs in
the foreground of this process's children: no system configuration is touched. nginx gets a generated
configuration in the run directory (pid, logs and temp paths there too) that includes the production proxy
settings of ``deploy/nginx/gasdesk-proxy.conf``, so what the tests exercise is what production runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NGINX_PROXY_SNIPPET = PROJECT_ROOT / "deploy" / "nginx" / "gasdesk-proxy.conf"
# `gasdesk …` as a child process, importing this checkout's package (PYTHONPATH is set to PROJECT_ROOT).
GASDESK_COMMAND = [
    sys.executable,
    "-c",
    "import sys; from gasdesk.cli import main; sys.argv[0] = 'gasdesk'; main()",
]


class ClusterError(RuntimeError):
    """A part of the cluster did not start (its log's tail is in the message)."""


def free_port() -> int:
    """A loopback TCP port nobody uses right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Child:
    """One long-running child process in its own process group, its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child; closed below
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown code runs."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (SIGINT for uvicorn's clean shutdown is not needed: SIGTERM is handled too), then SIGKILL."""
        if not self.alive():
            return
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- PostgreSQL


class Postgres:
    """A PostgreSQL cluster of its own on a Unix socket (no TCP listener), like scripts/with-postgres.sh.

    ``data_dir`` is kept between runs when it exists (``make run-cluster`` keeps its demo data); ``fast``
    turns durability off for throwaway clusters (tests, bench). As root, initdb refuses to run: the Debian
    package's ``postgres`` user runs the server then."""

    def __init__(
        self,
        data_dir: Path,
        socket_dir: Path,
        log_path: Path,
        *,
        database: str = "gasdesk",
        fast: bool = False,
    ) -> None:
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
        )
        if not found:
            raise ClusterError("PostgreSQL server not installed (make test-deps)")
        self.bin = found[-1]
        self.data_dir = data_dir
        self.socket_dir = socket_dir
        self.log_path = log_path
        self.database = database
        self.fast = fast
        self.runas: list[str] = []
        if os.geteuid() == 0:
            if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            self.runas = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://gasdesk@/{self.database}?host={self.socket_dir}"

    def _own(self, *paths: Path) -> None:
        if self.runas:
            for path in paths:
                shutil.chown(path, "postgres")

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.runas, *argv], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise ClusterError(f"{Path(argv[0]).name} failed: {done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._own(self.data_dir)
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "gasdesk",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        self._own(self.socket_dir, self.log_path)
        options = f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=200"
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        done = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-w",
            "-l",
            str(self.log_path),
            "-o",
            options,
            "start",
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(
                f"PostgreSQL did not start: {done.stdout}{done.stderr}\n{_tail(self.log_path)}"
            )
        exists = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                str(self.socket_dir),
                "-U",
                "gasdesk",
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        if exists.stdout.strip() != "1":
            subprocess.run(
                [str(self.bin / "createdb"), "-h", str(self.socket_dir), "-U", "gasdesk", self.database],
                check=True,
            )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session and shuts down cleanly; ``immediate`` is a crash (recovery at start)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False
            )


# ---------------------------------------------------------------- Redis


class Redis(Child):
    """redis-server on a loopback port, no persistence (events and counters only need to live while it runs)."""

    def __init__(self, port: int, run_dir: Path) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise ClusterError("redis-server is not installed (make test-deps)")
        super().__init__(
            "redis",
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(run_dir),
            ],
            run_dir / "redis.log",
        )
        self.port = port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        super().start()
        if not _wait_port(self.port, 10):
            raise ClusterError(f"redis-server did not start:\n{self.tail()}")


# ---------------------------------------------------------------- nginx


def nginx_config(*, listen_port: int, app_ports: list[int], run_dir: Path, access_log: bool = True,
                 reports_port: int | None = None) -> str:
    """The whole nginx.conf of a local cluster: foreground, every path inside ``run_dir``, the app processes as
    the upstream, and the production proxy settings (``deploy/nginx/gasdesk-proxy.conf``) included as they are.
    ``reports_port``: the web process of its own that serves the report routes (the app processes stand in while
    it is down), as ``deploy/nginx/gasdesk.conf`` sets it up."""
    servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in app_ports)
    if reports_port is None:
        reports = servers
    else:
        reports = "\n".join([f"        server 127.0.0.1:{reports_port} max_fails=1 fail_timeout=5s;",
                              *(f"        server 127.0.0.1:{port} backup;" for port in app_ports)])
    # As root, nginx would switch its workers to "nobody", who cannot write the temp paths here.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {run_dir / 'nginx-temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    log = f"access_log {run_dir / 'nginx-access.log'} gasdesk_noquery;" if access_log else "access_log off;"
    return f"""# Generated by gasdesk/system/cluster.py for a local cluster; production: deploy/nginx/gasdesk.conf
{user}daemon off;
worker_processes 1;
pid {run_dir / "nginx.pid"};
error_log {run_dir / "nginx-error.log"} warn;
events {{
    worker_connections 8192;
}}
http {{
{temp}
    log_format gasdesk_noquery '$remote_addr [$time_local] "$request_method $uri $server_protocol" $status '
                               '$body_bytes_sent $request_time $upstream_addr';
    {log}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' '';
    }}
    upstream gasdesk_app {{
        least_conn;
{servers}
        keepalive 32;
    }}
    upstream gasdesk_reports {{
{reports}
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        # Which process served the request: the fault tests kill the one holding a socket (local clusters only).
        add_header X-Gasdesk-Upstream $upstream_addr always;
        include {NGINX_PROXY_SNIPPET};
    }}
}}
"""


class Nginx(Child):
    def __init__(
        self, listen_port: int, app_ports: list[int], run_dir: Path, *, access_log: bool = True,
        reports_port: int | None = None,
    ) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise ClusterError("nginx is not installed (make test-deps)")
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (run_dir / "nginx-temp" / kind).mkdir(parents=True, exist_ok=True)
        conf = run_dir / "nginx.conf"
        conf.write_text(
            nginx_config(listen_port=listen_port, app_ports=app_ports, run_dir=run_dir, access_log=access_log,
                         reports_port=reports_port)
        )
        # -e: the error log from the very start (before the configuration is read), -p: relative paths' prefix
        super().__init__(
            "nginx",
            [binary, "-p", str(run_dir), "-e", str(run_dir / "nginx-error.log"), "-c", str(conf)],
            run_dir / "nginx.out",
        )
        self.port = listen_port
        self.conf = conf

    def start(self) -> None:
        check = subprocess.run([*self.argv, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"nginx configuration refused:\n{check.stderr}")
        super().start()
        if not _wait_port(self.port, 10):
            raise ClusterError(
                f"nginx did not start:\n{self.tail()}\n{_tail(self.log_path.parent / 'nginx-error.log')}"
            )


# ---------------------------------------------------------------- gasdesk processes


class App(Child):
    """One ``gasdesk serve`` process."""

    def __init__(self, name: str, port: int, env: Mapping[str, str], run_dir: Path) -> None:
        super().__init__(
            name,
            [*GASDESK_COMMAND, "serve", "--host", "127.0.0.1", "--port", str(port)],
            run_dir / f"{name}.log",
            env=env,
            cwd=PROJECT_ROOT,
        )
        self.port = port
        self.base = f"http://127.0.0.1:{port}"


def wait_ready(apps: list[App], timeout: float = 120.0) -> None:
    """Until every app answers ``/readyz`` (its database too); a slow machine loads the NLU model for seconds."""
    deadline = time.monotonic() + timeout
    pending = list(apps)
    while pending:
        for app in list(pending):
            if not app.alive():
                raise ClusterError(f"{app.name} exited during start-up:\n{app.tail()}")
            try:
                if httpx.get(app.base + "/readyz", timeout=1).status_code == 200:
                    pending.remove(app)
            except httpx.HTTPError:
                pass
        if pending:
            if time.monotonic() > deadline:
                raise ClusterError(f"{pending[0].name} not ready after {timeout:.0f} s:\n{pending[0].tail()}")
            time.sleep(0.1)


@dataclass
class LocalCluster:
    """PostgreSQL + Redis + ``apps`` × ``gasdesk serve`` + optional ``gasdesk worker`` + nginx, on loopback,
    and (``reports_process``) one more ``gasdesk serve`` that nginx sends the report routes to.

    ``run_dir`` holds sockets, logs and nginx's files; ``data_dir`` the PostgreSQL cluster (default: inside
    ``run_dir``, gone with it). ``env`` is added to every gasdesk process's environment."""

    run_dir: Path
    data_dir: Path | None = None
    http_port: int = 0
    app_ports: list[int] = field(default_factory=list)
    apps_count: int = 2
    worker: bool = True
    reports_process: bool = True
    reports_port: int = 0
    seed_demo: bool = False
    fast_database: bool = True
    access_log: bool = True
    env: dict[str, str] = field(default_factory=dict)
    postgres: Postgres = field(init=False)
    redis: Redis = field(init=False)
    apps: list[App] = field(init=False, default_factory=list)
    workers: list[Child] = field(init=False, default_factory=list)
    reports: App | None = field(init=False, default=None)
    nginx: Nginx | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the postgres user must reach its socket and data directories in here
            self.run_dir.chmod(0o711)
        self.http_port = self.http_port or free_port()
        if not self.app_ports:
            self.app_ports = [free_port() for _ in range(self.apps_count)]
        if self.reports_process and not self.reports_port:
            self.reports_port = free_port()
        self.postgres = Postgres(
            self.data_dir or self.run_dir / "pgdata",
            self.run_dir / "pg",
            self.run_dir / "postgres.log",
            fast=self.fast_database,
        )
        self.redis = Redis(free_port(), self.run_dir)

    @property
    def url(self) -> str:
        """Where users go: nginx."""
        return f"http://127.0.0.1:{self.http_port}"

    def gasdesk_env(self) -> dict[str, str]:
        """The environment of every gasdesk process of this cluster."""
        env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
            "GASDESK_DATABASE_URL": self.postgres.url,
            "GASDESK_REDIS_URL": self.redis.url,
            # background jobs run in the dedicated worker (or, without one, in the first app only)
            "GASDESK_RUN_WORKER": "false",
        }
        env.update(self.env)
        return env

    def gasdesk(self, *args: str) -> None:
        """Run one gasdesk command (migrations, seeding) against the cluster, output to the run dir's log."""
        with open(self.run_dir / "commands.log", "ab") as log:
            done = subprocess.run(
                [*GASDESK_COMMAND, *args],
                env=self.gasdesk_env(),
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if done.returncode != 0:
            raise ClusterError(f"gasdesk {' '.join(args)} failed:\n{_tail(self.run_dir / 'commands.log')}")

    def start(self) -> None:
        """Start everything in dependency order; stops what started if a part fails."""
        try:
            self.postgres.start()
            self.redis.start()
            self.gasdesk("db", "upgrade")
            if self.seed_demo:
                self.gasdesk("seed-demo")
            env = self.gasdesk_env()
            for i, port in enumerate(self.app_ports):
                app_env = dict(env)
                if i == 0 and not self.worker:
                    app_env["GASDESK_RUN_WORKER"] = "true"
                self.apps.append(App(f"app{i + 1}", port, app_env, self.run_dir))
            if self.reports_process:  # never the one running the worker: it serves requests only
                self.reports = App("reports", self.reports_port, {**env, "GASDESK_WEB_CPU_PRIORITY": "background"},
                                   self.run_dir)
            for app in self.web_processes():
                app.start()
            if self.worker:
                worker = Child(
                    "worker",
                    [*GASDESK_COMMAND, "worker"],
                    self.run_dir / "worker.log",
                    env=env,
                    cwd=PROJECT_ROOT,
                )
                worker.start()
                self.workers.append(worker)
            wait_ready(self.web_processes())
            self.nginx = Nginx(self.http_port, self.app_ports, self.run_dir, access_log=self.access_log,
                               reports_port=self.reports.port if self.reports else None)
            self.nginx.start()
        except BaseException:
            self.stop()
            raise

    def web_processes(self) -> list[App]:
        """Every ``gasdesk serve`` of the cluster: the apps, then the reports process."""
        return [*self.apps, *([self.reports] if self.reports else [])]

    def children(self) -> list[Child]:
        return [*([self.nginx] if self.nginx else []), *self.web_processes(), *self.workers, self.redis]

    def stop(self) -> None:
        """Stop nginx, the gasdesk processes, Redis and PostgreSQL (each even if another fails)."""
        for child in self.children():
            try:
                child.stop()
            except Exception:  # noqa: BLE001 - stop the rest whatever happened to one
                pass
        self.postgres.stop()
