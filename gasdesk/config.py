"""One Settings object for the whole application, read from ``GASDESK_*`` environment variables."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults: fine for `make run` on a laptop, refused in production.
DEV_SECRET_KEY = "dev-secret-key-change-me-dev-secret-key"
DEV_DATA_KEY = base64.urlsafe_b64encode(b"gasdesk-dev-data-key-32-bytes!!!").decode()

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class InsecureConfiguration(RuntimeError):
    """Raised when production mode is started with development secrets."""


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``GASDESK_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GASDESK_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'gasdesk.db'}"
    redis_url: str | None = None
    # SQLite allows one writer: with one pooled connection, transactions queue in asyncio instead of in
    # SQLite's busy handler (which sleeps in 10–100 ms steps and ruins chat latency).
    sqlite_pool_size: int = Field(default=1, ge=1, le=20)
    secret_key: str = DEV_SECRET_KEY
    # 32 bytes, urlsafe base64. Encrypts personal data (AES-GCM) and keys the blind indexes (HMAC).
    data_key: str = DEV_DATA_KEY
    display_timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8000
    session_cookie: str = "gasdesk_session"
    session_max_age_s: int = 12 * 3600
    cookie_secure: bool = False
    api_token_ttl_s: int = 8 * 3600
    login_max_failures: int = 5
    login_lockout_s: int = 15 * 60
    upload_dir: Path = PROJECT_ROOT / "var" / "uploads"
    # Each app process runs the background worker (jobs, SLA scan, follow-ups) unless turned off,
    # e.g. when a separate `gasdesk worker` process does it.
    run_worker: bool = True
    import_batch_size: int = Field(default=2000, ge=1, le=100_000)
    # The resident bot: "nlu" (offline understanding, guided flows, knowledge base) or "rules" (menu only).
    bot_engine: Literal["nlu", "rules"] = "nlu"
    # Billing: empty = built-in local ledger; otherwise the utility's billing system over HTTP.
    billing_url: str | None = None
    billing_token: str | None = None
    billing_timeout_s: float = 3.0
    # Overrides of the public-surface limits in gasdesk/security/limits.py, e.g. {"message.ip": "400/10"}
    # (count/seconds), and client addresses exempt from per-IP limits (e.g. a load generator on the host).
    rate_limits: dict[str, str] = Field(default_factory=dict)
    limit_exempt_ips: list[str] = Field(default_factory=list)
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"

    @field_validator("data_key")
    @classmethod
    def _data_key_is_32_bytes(cls, value: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(value.encode())
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the same user error
            raise ValueError("GASDESK_DATA_KEY must be urlsafe base64") from exc
        if len(raw) != 32:
            raise ValueError("GASDESK_DATA_KEY must decode to exactly 32 bytes")
        return value

    @property
    def data_key_bytes(self) -> bytes:
        return base64.urlsafe_b64decode(self.data_key.encode())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production_safety(self) -> None:
        """Refuse to run in production with the development secrets shipped in the code."""
        if self.env != "production":
            return
        problems = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("GASDESK_SECRET_KEY is the development default or shorter than 32 characters")
        if self.data_key == DEV_DATA_KEY:
            problems.append("GASDESK_DATA_KEY is the development default")
        if not self.cookie_secure:
            problems.append("GASDESK_COOKIE_SECURE must be true in production")
        if problems:
            raise InsecureConfiguration("refusing to start in production: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between runs)."""
    get_settings.cache_clear()
