"""Personal data at rest: AES-GCM field encryption and HMAC blind indexes.

Encrypted columns hold ``v2:<key id>:<base64(nonce|ciphertext)>`` under a key ring (``GASDESK_DATA_KEYS``,
the first key encrypts, each value names the key that opens it), or ``v1:<base64(nonce|ciphertext)>`` under the
key derived from ``GASDESK_DATA_KEY`` (key id ``legacy``: every value written before key ids, and still what is
written while no ring is configured). ``gasdesk keys rotate`` (security/rotation.py) re-encrypts old values
under the primary key while the app runs. Exact lookups (by phone,
户号, ID number, name, normalised address) go through a keyed HMAC-SHA256 "blind
index" stored beside the ciphertext, so the database never sees the plaintext.
Uploaded files are sealed with AES-GCM too (``encrypt_bytes``). The blind-index and file keys are derived
from ``GASDESK_DATA_KEY`` with HKDF; the ring does not change them (re-indexing is not part of a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import String, Text
from sqlalchemy.types import TypeDecorator

from gasdesk.config import LEGACY_KEY_ID, get_settings, parse_key_ring

_PREFIX = "v1:"  # written under the legacy key (no key id)
_RING_PREFIX = "v2:"  # v2:<key id>:<base64>


class KeyNotAvailable(ValueError):
    """A value names a key that the configured ring does not hold."""


def _derive(purpose: bytes, master: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gasdesk", info=purpose).derive(master)


@lru_cache(maxsize=4)
def _keys(data_key: str) -> tuple[AESGCM, bytes]:
    master = base64.urlsafe_b64decode(data_key.encode())
    return AESGCM(_derive(b"field-encryption", master)), _derive(b"blind-index", master)


def _current_keys() -> tuple[AESGCM, bytes]:
    # Keyed by the configured string so tests that change GASDESK_DATA_KEY get new keys.
    return _keys(get_settings().data_key)


@dataclass(frozen=True)
class KeyRing:
    """The field-encryption keys in force: ``primary`` encrypts, every key in ``keys`` decrypts."""

    primary: str
    keys: dict[str, AESGCM]


@lru_cache(maxsize=8)
def _ring(data_key: str | None, data_keys: str | None) -> KeyRing:
    entries = parse_key_ring(data_keys) if data_keys else [(LEGACY_KEY_ID, None)]
    keys: dict[str, AESGCM] = {}
    for key_id, key in entries:
        if key is None:
            keys[key_id] = _keys(data_key)[0]  # "legacy": the key every v1 value was written with
        else:
            keys[key_id] = AESGCM(_derive(b"field-encryption", base64.urlsafe_b64decode(key.encode())))
    return KeyRing(entries[0][0], keys)


def key_ring() -> KeyRing:
    """The configured ring (cached per setting, so a test or a restart with new keys gets new objects)."""
    settings = get_settings()
    return _ring(settings.data_key, settings.data_keys)


def key_id_of(token: str) -> str:
    """The id of the key that encrypted ``token`` (``legacy`` for ``v1:`` values)."""
    if token.startswith(_PREFIX):
        return LEGACY_KEY_ID
    if token.startswith(_RING_PREFIX):
        key_id, sep, _ = token[len(_RING_PREFIX):].partition(":")
        if sep and key_id:
            return key_id
    raise ValueError("not an encrypted gasdesk value")


def encrypt_text(plaintext: str) -> str:
    """Encrypt a string with AES-GCM under the ring's primary key and a fresh random nonce."""
    ring = key_ring()
    nonce = os.urandom(12)
    sealed = base64.b64encode(nonce + ring.keys[ring.primary].encrypt(nonce, plaintext.encode("utf-8"), None))
    if ring.primary == LEGACY_KEY_ID:
        return _PREFIX + sealed.decode("ascii")
    return f"{_RING_PREFIX}{ring.primary}:{sealed.decode('ascii')}"


def decrypt_text(token: str) -> str:
    """Decrypt a value produced by :func:`encrypt_text` under any key of the ring (chosen by its key id)."""
    key_id = key_id_of(token)
    aead = key_ring().keys.get(key_id)
    if aead is None:
        raise KeyNotAvailable(f"encrypted with key {key_id!r}, which GASDESK_DATA_KEYS does not hold")
    body = token[len(_PREFIX):] if key_id == LEGACY_KEY_ID and token.startswith(_PREFIX) \
        else token[len(_RING_PREFIX) + len(key_id) + 1:]
    raw = base64.b64decode(body)
    return aead.decrypt(raw[:12], raw[12:], None).decode("utf-8")


def reencrypt(token: str) -> str | None:
    """``token`` under the primary key, or None when it already is (so rotating twice changes nothing)."""
    ring = key_ring()
    if key_id_of(token) == ring.primary:
        return None
    return encrypt_text(decrypt_text(token))


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
