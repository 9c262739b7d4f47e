"""Callback signatures and the safe-mode cipher, against WeChat's published WXBizMsgCrypt sample."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gasdesk.channels.wechat.crypto import WeChatCipher, callback_signature, check_callback
from gasdesk.channels.wechat.messages import parse_inbound
from gasdesk.errors import GasdeskError, InvalidInput, PermissionDenied

pytestmark = pytest.mark.no_database

# WeChat's WXBizMsgCrypt sample (the official Python/PHP/Java demos ship these values).
TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"
TIMESTAMP = "1409735669"
NONCE = "1320562132"
MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
ENCRYPTED = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9"
    "FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3y"
    "t+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v"
    "6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
# The random prefix the sample was encrypted with (read back from its plaintext).
SAMPLE_RANDOM16 = b"89465c840c5f116f"


# ---------------------------------------------------------------- signatures


def test_msg_signature_matches_the_published_sample() -> None:
    assert callback_signature(TOKEN, TIMESTAMP, NONCE, ENCRYPTED) == MSG_SIGNATURE
    assert callback_signature(TOKEN, int(TIMESTAMP), NONCE, ENCRYPTED) == MSG_SIGNATURE


def test_plain_signature_is_sha1_of_the_sorted_parts() -> None:
    # Sorted: "1320562132" < "1409735669" < "spamtest".
    assert callback_signature(TOKEN, TIMESTAMP, NONCE) == hashlib.sha1(b"13205621321409735669spamtest").hexdigest()
    # The order of the parts is irrelevant to the rule: swapping nonce and timestamp gives the same hash.
    assert callback_signature(TOKEN, NONCE, TIMESTAMP) == callback_signature(TOKEN, TIMESTAMP, NONCE)
    assert callback_signature(TOKEN, TIMESTAMP, NONCE) != callback_signature("other", TIMESTAMP, NONCE)


def test_check_callback_accepts_the_sample_inside_the_window() -> None:
    now = int(TIMESTAMP)
    check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=MSG_SIGNATURE, now=now, encrypted=ENCRYPTED)
    plain = callback_signature(TOKEN, TIMESTAMP, NONCE)
    for moment in (now - 300, now, now + 300):
        check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=plain, now=moment)
    check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=plain.upper(), now=now)


@pytest.mark.parametrize("signature", ["0" * 40, "", "5d197aaffba7e9b25a30732f161a50dee96bd5f", "签名", None])
def test_a_wrong_signature_is_refused(signature: str | None) -> None:
    with pytest.raises(PermissionDenied) as caught:
        check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=signature, now=int(TIMESTAMP))
    assert caught.value.status_code == 403 and caught.value.code == "wechat_bad_signature"
    assert "签名" in caught.value.message and "signature" in caught.value.message


def test_the_plain_signature_does_not_pass_for_msg_signature() -> None:
    plain = callback_signature(TOKEN, TIMESTAMP, NONCE)
    with pytest.raises(PermissionDenied, match="signature"):
        check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=plain, now=int(TIMESTAMP),
                       encrypted=ENCRYPTED)
    with pytest.raises(PermissionDenied, match="signature"):  # another body under the same signature
        check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=MSG_SIGNATURE, now=int(TIMESTAMP),
                       encrypted=ENCRYPTED[:-4] + "AAA=")


@pytest.mark.parametrize("offset", [301, -301, 86_400, -10**9])
def test_a_stale_or_future_timestamp_is_refused(offset: int) -> None:
    signature = callback_signature(TOKEN, TIMESTAMP, NONCE)
    with pytest.raises(PermissionDenied) as caught:
        check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=signature, now=int(TIMESTAMP) + offset)
    assert caught.value.code == "wechat_stale_request" and caught.value.status_code == 403


@pytest.mark.parametrize("stamp", ["abc", "1e9", "-1409735669", "1409735669.0", "", " 1409735669", "１２３",
                                   "9" * 40])
def test_a_timestamp_that_is_not_an_integer_is_refused_even_when_signed(stamp: str) -> None:
    signature = callback_signature(TOKEN, stamp, NONCE)  # correctly signed, so only the timestamp is wrong
    with pytest.raises(PermissionDenied) as caught:
        check_callback(TOKEN, timestamp=stamp, nonce=NONCE, signature=signature, now=int(TIMESTAMP))
    assert caught.value.code == "wechat_stale_request"


def test_a_narrower_window_is_honoured() -> None:
    signature = callback_signature(TOKEN, TIMESTAMP, NONCE)
    with pytest.raises(PermissionDenied):
        check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=signature, now=int(TIMESTAMP) + 61,
                       window_s=60)


# ---------------------------------------------------------------- the cipher


def test_the_published_sample_decrypts() -> None:
    xml = WeChatCipher(AES_KEY, APP_ID).decrypt(ENCRYPTED)
    message = parse_inbound(xml)
    assert (message.to_user, message.from_user) == ("gh_10f6c3c3ac5a", "oyORnuP8q7ou2gfYjqLzSIWZf0rs")
    assert (message.msg_type, message.content, message.msg_id) == ("text", "abcdteT", "6054768590064713728")
    assert message.create_time == 1409735668


def test_encrypting_with_the_samples_random_prefix_gives_the_sample() -> None:
    cipher = WeChatCipher(AES_KEY, APP_ID)
    assert cipher.encrypt(cipher.decrypt(ENCRYPTED), random16=SAMPLE_RANDOM16) == ENCRYPTED


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 31, 32, 33, 44, 100, 5000])
def test_round_trip_and_padding_to_32_bytes(size: int) -> None:
    cipher = WeChatCipher(AES_KEY, APP_ID)
    text = ("燃气泄漏请立即开窗通风 ]]> <xml>" * 400)[:size]
    encrypted = cipher.encrypt(text)
    raw = base64.b64decode(encrypted)
    # 16 random + 4 length + body + app id, padded to a multiple of 32 (a full 32-byte block when aligned).
    unpadded = 16 + 4 + len(text.encode()) + len(APP_ID)
    assert len(raw) % 32 == 0 and 1 <= len(raw) - unpadded <= 32
    assert cipher.decrypt(encrypted) == text
    assert cipher.encrypt(text) != encrypted  # a fresh random prefix each time


def _key() -> bytes:
    return base64.b64decode(AES_KEY + "=")


def _raw_encrypt(data: bytes) -> str:
    """AES-256-CBC under the sample key without any of WeChat's framing, to build broken plaintexts."""
    key = _key()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def _pad(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


def test_every_tampered_byte_is_refused_by_the_signature_and_never_crashes_decryption() -> None:
    """CBC alone is malleable (a flip in block k garbles block k and flips one byte of block k+1), so the
    msg_signature over the ciphertext is what proves it came from WeChat; decryption of the tampered text
    must still end in plaintext or a typed 4xx, never another exception."""
    cipher = WeChatCipher(AES_KEY, APP_ID)
    raw = base64.b64decode(ENCRYPTED)
    refused_by_framing = 0
    for position in range(len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        text = base64.b64encode(bytes(tampered)).decode()
        with pytest.raises(PermissionDenied):
            check_callback(TOKEN, timestamp=TIMESTAMP, nonce=NONCE, signature=MSG_SIGNATURE, now=int(TIMESTAMP),
                           encrypted=text)
        try:
            cipher.decrypt(text)
        except GasdeskError as exc:
            assert 400 <= exc.status_code < 500 and exc.code in {"wechat_decrypt_failed", "wechat_wrong_app_id"}
            refused_by_framing += 1
    # Most flips break the padding, the length field, the UTF-8 or the app id.
    assert refused_by_framing > len(raw) // 2


@pytest.mark.parametrize("encrypted", ["", "not base64!!", "AAAA", ENCRYPTED[:-8], ENCRYPTED[:64], "====",
                                       base64.b64encode(b"x" * 33).decode(), "A" * 200_000])
def test_malformed_ciphertexts_are_invalid_input(encrypted: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WeChatCipher(AES_KEY, APP_ID).decrypt(encrypted)
    assert caught.value.code == "wechat_decrypt_failed" and caught.value.status_code == 422


def test_another_accounts_message_is_refused() -> None:
    foreign = WeChatCipher(AES_KEY, "wx0000000000000000").encrypt("<xml></xml>")
    with pytest.raises(PermissionDenied) as caught:
        WeChatCipher(AES_KEY, APP_ID).decrypt(foreign)
    assert caught.value.code == "wechat_wrong_app_id"
    # An app id that merely starts like ours is not ours either.
    longer = WeChatCipher(AES_KEY, APP_ID + "x").encrypt("<xml></xml>")
    with pytest.raises(PermissionDenied):
        WeChatCipher(AES_KEY, APP_ID).decrypt(longer)


def test_another_key_does_not_decrypt() -> None:
    other_key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
    with pytest.raises(GasdeskError) as caught:
        WeChatCipher(other_key, APP_ID).decrypt(ENCRYPTED)
    assert caught.value.status_code in (403, 422)


@pytest.mark.parametrize("plaintext, why", [
    (_pad(b"r" * 16 + struct.pack(">I", 1000) + b"<xml/>" + APP_ID.encode()), "length field past the end"),
    (_pad(b"r" * 10), "shorter than prefix and length"),
    (b"r" * 16 + struct.pack(">I", 6) + b"<xml/>" + APP_ID.encode() + b"\x00" * 20, "zero padding byte"),
    (b"r" * 16 + struct.pack(">I", 6) + b"<xml/>" + APP_ID.encode() + b"\x14" * 19 + b"\x13", "uneven padding"),
    (b"r" * 16 + struct.pack(">I", 6) + b"<xml/>" + APP_ID.encode() + b"\x21" * 20, "padding above 32"),
    (_pad(b"r" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + APP_ID.encode()), "body not UTF-8"),
])
def test_each_framing_check(plaintext: bytes, why: str) -> None:
    assert len(plaintext) % 16 == 0, why
    with pytest.raises(InvalidInput, match="decrypted"):
        WeChatCipher(AES_KEY, APP_ID).decrypt(_raw_encrypt(plaintext))


def test_a_well_framed_forgery_decrypts_to_its_body() -> None:
    """The framing checks accept exactly WeChat's layout (the checks above are not simply refusing all)."""
    plaintext = _pad(b"r" * 16 + struct.pack(">I", 6) + b"<xml/>" + APP_ID.encode())
    assert WeChatCipher(AES_KEY, APP_ID).decrypt(_raw_encrypt(plaintext)) == "<xml/>"


@pytest.mark.parametrize("key", ["short", AES_KEY + "A", "!" * 43, ""])
def test_a_malformed_encoding_aes_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValueError):
        WeChatCipher(key, APP_ID)


def test_the_cipher_does_not_show_its_key() -> None:
    assert AES_KEY not in repr(WeChatCipher(AES_KEY, APP_ID))
