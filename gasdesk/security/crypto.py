"""Personal data at rest: AES-GCM field encryption and HMAC blind indexes.

Encrypted columns hold ``v1:<base64(nonce|ciphertext)>``. Exact lookups (by phone,
户号, ID number, name, normalised address) go through a keyed HMAC-SHA256 "blind
index" stored beside the ciphertext, so the database never sees the plaintext.
Uploaded files are sealed with AES-GCM too (``encrypt_bytes``). All keys are derived from
``GASDESK_DATA_KEY`` with HKDF so one secret rotates them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import String, Text
from sqlalchemy.types import TypeDecorator

from gasdesk.config import get_settings

_PREFIX = "v1:"


def _derive(purpose: bytes, master: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gasdesk", info=purpose).derive(master)


@lru_cache(maxsize=4)
def _keys(data_key: str) -> tuple[AESGCM, bytes]:
    master = base64.urlsafe_b64decode(data_key.encode())
    return AESGCM(_derive(b"field-encryption", master)), _derive(b"blind-index", master)


def _current_keys() -> tuple[AESGCM, bytes]:
    # Keyed by the configured string so tests that change GASDESK_DATA_KEY get new keys.
    return _keys(get_settings().data_key)


def encrypt_text(plaintext: str) -> str:
    """Encrypt a string with AES-GCM under a fresh random nonce."""
    aead, _ = _current_keys()
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), None)
    return _PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_text(token: str) -> str:
    """Decrypt a value produced by :func:`encrypt_text`."""
    if not token.startswith(_PREFIX):
        raise ValueError("not an encrypted gasdesk value")
    aead, _ = _current_keys()
    raw = base64.b64decode(token[len(_PREFIX) :])
    return aead.decrypt(raw[:12], raw[12:], None).decode("utf-8")


_FILE_MAGIC = b"GDF1"


@lru_cache(maxsize=4)
def _file_key(data_key: str) -> AESGCM:
    return AESGCM(_derive(b"file-encryption", base64.urlsafe_b64decode(data_key.encode())))


def encrypt_bytes(data: bytes, *, aad: bytes) -> bytes:
    """Seal file contents (uploads) with AES-GCM under a key of their own. ``aad`` binds the ciphertext to
    its owner (the attachment token): a file copied under another name does not decrypt."""
    nonce = os.urandom(12)
    return _FILE_MAGIC + nonce + _file_key(get_settings().data_key).encrypt(nonce, data, aad)


def decrypt_bytes(blob: bytes, *, aad: bytes) -> bytes:
    """Open what :func:`encrypt_bytes` sealed (raises ``ValueError``/``InvalidTag`` on anything else)."""
    if not blob.startswith(_FILE_MAGIC):
        raise ValueError("not an encrypted gasdesk file")
    nonce = blob[len(_FILE_MAGIC):len(_FILE_MAGIC) + 12]
    return _file_key(get_settings().data_key).decrypt(nonce, blob[len(_FILE_MAGIC) + 12:], aad)


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(_FILE_MAGIC)


def blind_index(value: str, *, kind: str) -> str:
    """Keyed, deterministic digest for exact-match lookup. ``kind`` separates domains (phone vs. name)."""
    _, key = _current_keys()
    mac = hmac.new(key, kind.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()


class EncryptedString(TypeDecorator):
    """A text column whose values are AES-GCM encrypted in the database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else encrypt_text(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else decrypt_text(value)


class EncryptedJSON(TypeDecorator):
    """JSON stored encrypted (used for audit before/after snapshots holding personal data)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return encrypt_text(json.dumps(value, ensure_ascii=False, default=str, sort_keys=True))

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(decrypt_text(value))


def BlindIndex() -> String:  # noqa: N802 - reads like a column type
    """Column type for a blind index (hex HMAC-SHA256)."""
    return String(64)
