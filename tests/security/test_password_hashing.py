"""Password hashes: full-strength argon2id outside the test suite, and hashes portable across profiles."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters

from gasdesk.config import reset_settings_cache
from gasdesk.security.passwords import hash_password, needs_rehash, verify_password

pytestmark = pytest.mark.no_database


@pytest.mark.parametrize("env", ["development", "production"])
def test_outside_tests_hashes_use_argon2s_default_cost(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("GASDESK_ENV", env)
    monkeypatch.setenv("GASDESK_COOKIE_SECURE", "true")
    reset_settings_cache()
    stored = hash_password("correct horse battery")
    params = extract_parameters(stored)
    default = PasswordHasher()
    assert stored.startswith("$argon2id$")
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        default.time_cost, default.memory_cost, default.parallelism)
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")


def test_a_test_mode_hash_verifies_everywhere_and_is_upgraded_outside_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_ENV", "test")
    reset_settings_cache()
    cheap = hash_password("correct horse battery")
    assert extract_parameters(cheap).memory_cost < PasswordHasher().memory_cost
    assert not needs_rehash(cheap)

    monkeypatch.setenv("GASDESK_ENV", "development")
    reset_settings_cache()
    assert verify_password(cheap, "correct horse battery")
    assert needs_rehash(cheap), "a weak hash must be re-hashed at the next login outside tests"
