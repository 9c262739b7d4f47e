"""Password hashing with argon2id."""

from __future__ import annotations

from functools import cache

import argon2.profiles
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gasdesk.config import get_settings

MIN_PASSWORD_LENGTH = 8


@cache
def _hasher_for(env: str) -> PasswordHasher:
    # argon2's default costs ~0.15 s of CPU per hash here, on purpose. The test suite creates and logs in
    # thousands of users, so ``GASDESK_ENV=test`` (never production or development) uses argon2's cheapest
    # parameters: same algorithm and code path, much less work. Verification reads the parameters from the
    # stored hash, so a hash made under either profile verifies under both.
    if env == "test":
        return PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
    return PasswordHasher()


def password_hasher() -> PasswordHasher:
    """The hasher for the configured environment."""
    return _hasher_for(get_settings().env)


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return password_hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return password_hasher().check_needs_rehash(password_hash)
