"""WeChat callback signatures and safe-mode (安全模式) message encryption.

WeChat's rules (公众号 "消息加解密说明"):

- ``signature`` (every callback, URL verification too) = sha1 of the lexicographically sorted concatenation
  of token, timestamp and nonce; ``msg_signature`` (safe mode) sorts the encrypted text in as a fourth part.
- The AES key is ``base64(EncodingAESKey + "=")`` (43 characters → 32 bytes); AES-256-CBC with the first 16
  key bytes as IV. The plaintext is ``random(16) + len(msg) as 4 bytes big-endian + msg + app id``, padded
  PKCS#7-style to a multiple of **32** bytes (not AES's 16), and the ciphertext travels base64-encoded.

Every failure on input from the network is a typed 4xx (``InvalidInput`` / ``PermissionDenied``), never an
uncaught exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gasdesk.errors import InvalidInput, PermissionDenied

# WeChat pads to 32-byte blocks although AES's block is 16.
PAD_BLOCK = 32
RANDOM_PREFIX = 16
DEFAULT_WINDOW_S = 300
# A safe-mode body is capped at 64 KiB before it gets here (messages.MAX_XML_BYTES); this is a backstop.
MAX_ENCRYPTED_CHARS = 96 * 1024


def callback_signature(token: str, timestamp: str | int, nonce: str, encrypted: str | None = None) -> str:
    """``signature`` (without ``encrypted``) or ``msg_signature`` (with it): sha1 hex of the sorted parts."""
    parts = [token, str(timestamp), nonce]
    if encrypted is not None:
        parts.append(encrypted)
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_callback(token: str, *, timestamp: str | int | None, nonce: str | None, signature: str | None,
                   now: int, window_s: int = DEFAULT_WINDOW_S, encrypted: str | None = None) -> None:
    """Refuse a callback that WeChat did not sign, or that is older or newer than ``window_s`` seconds.

    ``signature`` is the query's ``signature``; in safe mode pass the query's ``msg_signature`` here and the
    body's ``<Encrypt>`` text as ``encrypted``. Wrong or missing signature → 403 ``wechat_bad_signature``;
    a timestamp that is not an integer or lies outside the window → 403 ``wechat_stale_request``.
    """
    if not isinstance(signature, str) or not isinstance(nonce, str) or timestamp is None:
        raise PermissionDenied("微信回调签名无效 (invalid WeChat signature)", code="wechat_bad_signature")
    stamp = str(timestamp)
    expected = callback_signature(token, stamp, nonce, encrypted)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8", "replace")):
        raise PermissionDenied("微信回调签名无效 (invalid WeChat signature)", code="wechat_bad_signature")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise PermissionDenied("微信回调时间戳无效 (WeChat timestamp is not an integer)",
                               code="wechat_stale_request")
    if abs(int(stamp) - now) > window_s:
        raise PermissionDenied("微信回调已过期 (stale WeChat callback: timestamp outside the allowed window)",
                               code="wechat_stale_request")


def _decrypt_failed(why: str) -> InvalidInput:
    return InvalidInput(f"微信消息解密失败 (WeChat message could not be decrypted: {why})",
                        code="wechat_decrypt_failed")


class WeChatCipher:
    """Safe-mode encryption for one official account. ``encoding_aes_key`` is the 43-character
    EncodingAESKey from the 基本配置 page; a malformed key is a configuration error (``ValueError``)."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be exactly 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("EncodingAESKey is not base64") from exc
        if len(key) != 32:
            raise ValueError("EncodingAESKey does not decode to 32 bytes")
        if not app_id:
            raise ValueError("app id is required")
        self._key = key
        self._iv = key[:16]
        self._app_id = app_id.encode("utf-8")

    def __repr__(self) -> str:  # never show the key
        return "WeChatCipher(app_id=…)"

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))

    def encrypt(self, plaintext_xml: str, *, random16: bytes | None = None) -> str:
        """The base64 ciphertext of ``plaintext_xml`` (``random16``: fixed prefix for test vectors only)."""
        prefix = os.urandom(RANDOM_PREFIX) if random16 is None else random16
        if len(prefix) != RANDOM_PREFIX:
            raise ValueError("random16 must be 16 bytes")
        body = plaintext_xml.encode("utf-8")
        data = prefix + struct.pack(">I", len(body)) + body + self._app_id
        pad = PAD_BLOCK - len(data) % PAD_BLOCK
        data += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted_b64: str) -> str:
        """The plaintext XML; checks the padding, the length field and that the trailing app id is ours.
        Bad input → 422 ``wechat_decrypt_failed``; another account's message → 403 ``wechat_wrong_app_id``."""
        if not isinstance(encrypted_b64, str) or not encrypted_b64 or len(encrypted_b64) > MAX_ENCRYPTED_CHARS:
            raise _decrypt_failed("empty or too long")
        try:
            raw = base64.b64decode(encrypted_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _decrypt_failed("not base64") from None
        if not raw or len(raw) % 16:
            raise _decrypt_failed("length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        data = decryptor.update(raw) + decryptor.finalize()
        pad = data[-1]
        if not 1 <= pad <= PAD_BLOCK or pad > len(data) or data[-pad:] != bytes([pad]) * pad:
            raise _decrypt_failed("bad padding")
        data = data[:-pad]
        if len(data) < RANDOM_PREFIX + 4:
            raise _decrypt_failed("too short")
        (length,) = struct.unpack(">I", data[RANDOM_PREFIX:RANDOM_PREFIX + 4])
        start = RANDOM_PREFIX + 4
        if start + length > len(data):
            raise _decrypt_failed("bad length field")
        body, app_id = data[start:start + length], data[start + length:]
        if not hmac.compare_digest(app_id, self._app_id):
            raise PermissionDenied("微信消息不属于本公众号 (WeChat message for another app id)",
                                   code="wechat_wrong_app_id")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise _decrypt_failed("not UTF-8") from None
