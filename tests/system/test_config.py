"""Production refuses development secrets; the data key must be a real 32-byte key."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from gasdesk.config import DEV_DATA_KEY, DEV_SECRET_KEY, InsecureConfiguration, Settings, reset_settings_cache
from gasdesk.web.app import create_app

GOOD_DATA_KEY = base64.urlsafe_b64encode(b"production-data-key-32-bytes-ok!").decode()
GOOD_SECRET = "s" * 48


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {"env": "production", "secret_key": GOOD_SECRET, "data_key": GOOD_DATA_KEY,
                                 "cookie_secure": True}
    values.update(overrides)
    return Settings(**values)


def test_production_with_default_secrets_is_refused() -> None:
    settings = Settings(env="production")
    assert settings.secret_key == DEV_SECRET_KEY and settings.data_key == DEV_DATA_KEY
    with pytest.raises(InsecureConfiguration) as info:
        settings.check_production_safety()
    message = str(info.value)
    assert "GASDESK_SECRET_KEY" in message and "GASDESK_DATA_KEY" in message and "GASDESK_COOKIE_SECURE" in message
    with pytest.raises(InsecureConfiguration):
        create_app(settings)


@pytest.mark.parametrize(("overrides", "names"), [
    ({"secret_key": DEV_SECRET_KEY}, ["GASDESK_SECRET_KEY"]),
    ({"secret_key": "too-short"}, ["GASDESK_SECRET_KEY"]),
    ({"data_key": DEV_DATA_KEY}, ["GASDESK_DATA_KEY"]),
    ({"cookie_secure": False}, ["GASDESK_COOKIE_SECURE"]),
])
def test_each_insecure_setting_is_named(overrides: dict, names: list[str]) -> None:
    with pytest.raises(InsecureConfiguration) as info:
        production(**overrides).check_production_safety()
    for name in names:
        assert name in str(info.value)


def test_safe_production_settings_start() -> None:
    settings = production()
    settings.check_production_safety()
    assert create_app(settings) is not None


def test_development_and_test_modes_allow_defaults() -> None:
    Settings(env="development").check_production_safety()
    Settings(env="test").check_production_safety()


def test_production_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_ENV", "production")
    reset_settings_cache()
    with pytest.raises(InsecureConfiguration):
        create_app()


@pytest.mark.parametrize("bad", [
    "abc",  # not valid base64
    base64.urlsafe_b64encode(b"16-bytes-only!!!").decode(),
    base64.urlsafe_b64encode(b"x" * 33).decode(),
    "",
])
def test_bad_data_key_is_rejected(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="GASDESK_DATA_KEY"):
        Settings(data_key=bad)
    monkeypatch.setenv("GASDESK_DATA_KEY", bad)
    with pytest.raises(ValidationError):
        Settings()


def test_good_data_key_is_accepted() -> None:
    assert production().data_key_bytes == b"production-data-key-32-bytes-ok!"
