"""Finding 6, unsafe defaults: no key ships in the code; generated keys are private and stable; production
refuses to start any command without explicit secrets; the demo seed refuses production."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from gasdesk.auth.models import User
from gasdesk.config import (
    PUBLISHED_DATA_KEYS,
    PUBLISHED_SECRET_KEYS,
    InsecureConfiguration,
    Settings,
    get_settings,
    load_or_create_key,
    new_secret_key,
    reset_settings_cache,
)
from gasdesk.db import sessionmaker
from gasdesk.web.app import create_app
from tests.factories import bot_conversation, extra_client

[OLD_SECRET] = PUBLISHED_SECRET_KEYS
GOOD_DATA_KEY = base64.urlsafe_b64encode(b"production-data-key-32-bytes-ok!").decode()


@pytest.fixture
def no_configured_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A first run as a developer would start it: no GASDESK_ENV, no keys in the environment."""
    var = tmp_path / "fresh-var"
    monkeypatch.delenv("GASDESK_ENV", raising=False)
    monkeypatch.delenv("GASDESK_SECRET_KEY", raising=False)
    monkeypatch.delenv("GASDESK_DATA_KEY", raising=False)
    monkeypatch.setenv("GASDESK_VAR_DIR", str(var))
    reset_settings_cache()
    return var


def _cookie_signed_with(secret: str, payload: dict) -> str:
    data = base64.b64encode(json.dumps(payload).encode())
    return TimestampSigner(secret).sign(data).decode()


async def test_admin_cookie_forged_with_the_old_default_key_is_refused(no_configured_keys, factory) -> None:
    admin = await factory.user("admin")
    settings = get_settings()
    assert settings.env == "development" and settings.secret_key not in PUBLISHED_SECRET_KEYS
    app = create_app()
    # What an attacker who read the old source could sign: the old session layout and any plausible new one.
    for payload in ({"uid": admin.id, "ep": 0}, {"uid": admin.id, "ep": 0, "sid": "x" * 43, "csrf": "y"}):
        async with extra_client(app) as attacker:
            attacker.cookies.set(settings.session_cookie, _cookie_signed_with(OLD_SECRET, payload))
            assert (await attacker.get("/api/v1/auth/me")).status_code == 401
            assert (await attacker.get("/api/v1/users")).status_code == 401


async def test_visitor_token_forged_with_the_old_default_key_is_refused(no_configured_keys, client, session) -> None:
    conversation = await bot_conversation(session, visitor_id="v_victim")
    forged = URLSafeTimedSerializer(OLD_SECRET, salt="gasdesk-webchat-visitor").dumps({"v": "v_victim"})
    response = await client.post("/api/v1/webchat/uploads", params={"conversation_id": conversation.id}, headers={"X-Visitor-Token": forged},
                                 files={"file": ("a.txt", b"hello", "text/plain")})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_visitor_token"


def test_first_run_generates_private_keys_and_reuses_them(no_configured_keys: Path) -> None:
    var = no_configured_keys
    first = Settings()
    assert first.secret_key not in PUBLISHED_SECRET_KEYS and len(first.secret_key) >= 32
    assert first.data_key not in PUBLISHED_DATA_KEYS and len(first.data_key_bytes) == 32
    for name in ("secret_key", "data_key"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    second = Settings()
    assert (second.secret_key, second.data_key) == (first.secret_key, first.data_key)
    # another install gets other keys
    other = Settings(var_dir=var.parent / "other-var")
    assert other.secret_key != first.secret_key and other.data_key != first.data_key


def test_environment_keys_win_over_files(no_configured_keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("GASDESK_DATA_KEY", GOOD_DATA_KEY)
    settings = Settings()
    assert settings.secret_key == "k" * 40 and settings.data_key == GOOD_DATA_KEY
    assert not no_configured_keys.exists(), "no key file written when the environment provides the keys"


def _race(path: str, out: multiprocessing.Queue) -> None:
    out.put(load_or_create_key(Path(path), new_secret_key))


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(path), out)) for _ in range(6)]
    for p in procs:
        p.start()
    keys = {out.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert keys == {path.read_text().strip()}
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"], "no temporary files left behind"


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text(new_secret_key())
    path.chmod(0o644)
    with pytest.raises(InsecureConfiguration, match="chmod 600"):
        load_or_create_key(path, new_secret_key)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from gasdesk.cli import app; app()", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("command", [
    ["worker"], ["seed-demo", "--customers", "5"], ["db", "upgrade"], ["serve", "--port", "1"],
    ["user", "create", "eve", "--role", "admin", "--password", "long-enough-password"],
    ["import", "kb", "nothing.csv"], ["bot", "eval", "nothing.jsonl"],
])
def test_every_command_refuses_production_without_secrets(command: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GASDESK_SECRET_KEY", "GASDESK_DATA_KEY")}
    env.update(GASDESK_ENV="production", GASDESK_COOKIE_SECURE="true", GASDESK_VAR_DIR=str(tmp_path / "var"))
    result = _cli(*command, env=env)
    assert result.returncode != 0
    assert "refusing to start in production" in result.stderr and "GASDESK_SECRET_KEY" in result.stderr
    assert not (tmp_path / "var").exists()


async def test_seed_demo_refuses_production(tmp_path: Path) -> None:
    env = {**os.environ, "GASDESK_ENV": "production", "GASDESK_COOKIE_SECURE": "true",
           "GASDESK_SECRET_KEY": "p" * 48, "GASDESK_DATA_KEY": GOOD_DATA_KEY}
    result = _cli("seed-demo", "--customers", "5", env=env)
    assert result.returncode != 0 and "生产环境禁止生成演示数据" in result.stderr
    async with sessionmaker()() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 0
