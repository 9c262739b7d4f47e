"""Production refuses missing or published secrets; the data key must be a real 32-byte key."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from gasdesk.config import (
    PUBLISHED_DATA_KEYS,
    PUBLISHED_SECRET_KEYS,
    InsecureConfiguration,
    Settings,
    reset_settings_cache,
)
from gasdesk.web.app import create_app

GOOD_DATA_KEY = base64.urlsafe_b64encode(b"production-data-key-32-bytes-ok!").decode()
GOOD_SECRET = "s" * 48
[OLD_SECRET] = PUBLISHED_SECRET_KEYS
[OLD_DATA_KEY] = PUBLISHED_DATA_KEYS


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {"env": "production", "secret_key": GOOD_SECRET, "data_key": GOOD_DATA_KEY,
                                 "cookie_secure": True}
    values.update(overrides)
    return Settings(**values)


def test_production_without_secrets_is_refused(tmp_path) -> None:
    settings = Settings(env="production", secret_key=None, data_key=None, var_dir=tmp_path / "var")
    assert settings.secret_key is None and settings.data_key is None
    assert not (tmp_path / "var").exists(), "production never generates keys"
    with pytest.raises(InsecureConfiguration) as info:
        settings.check_production_safety()
    message = str(info.value)
    assert "GASDESK_SECRET_KEY" in message and "GASDESK_DATA_KEY" in message and "GASDESK_COOKIE_SECURE" in message
    with pytest.raises(InsecureConfiguration):
        create_app(settings)


@pytest.mark.parametrize(("overrides", "names"), [
    ({"secret_key": OLD_SECRET}, ["GASDESK_SECRET_KEY"]),
    ({"secret_key": None}, ["GASDESK_SECRET_KEY"]),
    ({"secret_key": "too-short"}, ["GASDESK_SECRET_KEY"]),
    ({"data_key": OLD_DATA_KEY}, ["GASDESK_DATA_KEY"]),
    ({"data_key": None}, ["GASDESK_DATA_KEY"]),
    ({"cookie_secure": False}, ["GASDESK_COOKIE_SECURE"]),
])
def test_each_insecure_setting_is_named(overrides: dict, names: list[str]) -> None:
    with pytest.raises(InsecureConfiguration) as info:
        production(**overrides).check_production_safety()
    for name in names:
        assert name in str(info.value)


def test_no_signing_without_a_secret_key() -> None:
    # Cookies and visitor tokens are never signed with a missing key: a clear refusal, not a library error.
    with pytest.raises(InsecureConfiguration, match="GASDESK_SECRET_KEY"):
        _ = production(secret_key=None).signing_key
    assert production().signing_key == GOOD_SECRET


def test_safe_production_settings_start() -> None:
    settings = production()
    settings.check_production_safety()
    assert create_app(settings) is not None


def test_development_and_test_modes_allow_generated_keys(tmp_path) -> None:
    Settings(env="development", secret_key=None, data_key=None, var_dir=tmp_path).check_production_safety()
    Settings(env="test", secret_key=None, data_key=None, var_dir=tmp_path).check_production_safety()


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


@pytest.mark.no_database
def test_a_dotenv_file_in_the_working_directory_is_read_and_the_environment_wins(tmp_path, monkeypatch) -> None:
    # Settings skip the .env source when there is no file (it costs half a build); with one it is read.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GASDESK_REDIS_URL", raising=False)
    assert Settings().redis_url is None
    (tmp_path / ".env").write_text("GASDESK_REDIS_URL=redis://127.0.0.1:6390/0\nGASDESK_BOT_ENGINE=rules\n")
    assert Settings().redis_url == "redis://127.0.0.1:6390/0"
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    assert Settings().bot_engine == "nlu"
