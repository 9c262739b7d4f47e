"""The resident's side (simulate) against our side (crypto, messages): a callback built as WeChat sends it is
verified, decrypted and parsed; our passive reply is read back as the resident's WeChat would."""

from __future__ import annotations

import pytest

from gasdesk.channels.wechat.crypto import WeChatCipher, check_callback
from gasdesk.channels.wechat.messages import (
    InboundMessage,
    encrypted_reply_xml,
    parse_envelope,
    parse_inbound,
    text_reply_xml,
)
from gasdesk.channels.wechat.simulate import (
    build_callback,
    build_verification,
    inbound_event_xml,
    inbound_image_xml,
    inbound_link_xml,
    inbound_location_xml,
    inbound_text_xml,
    inbound_voice_xml,
    read_reply,
)
from gasdesk.errors import PermissionDenied

pytestmark = pytest.mark.no_database

TOKEN = "gasdesk-token"
APP_ID = "wx1234567890abcdef"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aQ"
ACCOUNT = "gh_0123456789ab"
OPENID = "oABCD1234567890abcdefghijklm"
NOW = 1_700_000_000


def receive(params: dict[str, str], body: bytes, *, aes_key: str | None, now: int = NOW) -> InboundMessage:
    """What the callback route will do: verify the query, decrypt in safe mode, parse."""
    check_callback(TOKEN, timestamp=params.get("timestamp"), nonce=params.get("nonce"),
                   signature=params.get("signature"), now=now)
    if params.get("encrypt_type") != "aes":
        return parse_inbound(body)
    assert aes_key is not None
    _to_user, encrypted = parse_envelope(body)
    check_callback(TOKEN, timestamp=params.get("timestamp"), nonce=params.get("nonce"),
                   signature=params.get("msg_signature"), now=now, encrypted=encrypted)
    return parse_inbound(WeChatCipher(aes_key, APP_ID).decrypt(encrypted))


MESSAGES = {
    "text": inbound_text_xml(OPENID, ACCOUNT, "家里燃气灶打不着火 ]]> 怎么办", 6054768590064713728, NOW),
    "image": inbound_image_xml(OPENID, ACCOUNT, "http://mmbiz.qpic.cn/p.jpg", "MEDIA1", 2, NOW),
    "voice": inbound_voice_xml(OPENID, ACCOUNT, "MEDIA2", 3, NOW, recognition="我要报修"),
    "location": inbound_location_xml(OPENID, ACCOUNT, 39.9042, 116.4074, "北京市东城区", 4, NOW),
    "link": inbound_link_xml(OPENID, ACCOUNT, "标题", "描述", "https://example.cn/a", 5, NOW),
    "subscribe": inbound_event_xml(OPENID, ACCOUNT, "subscribe", NOW, event_key="qrscene_branch7", ticket="TK"),
    "click": inbound_event_xml(OPENID, ACCOUNT, "CLICK", NOW, event_key="MENU_REPAIR"),
}


@pytest.mark.parametrize("aes_key", [None, AES_KEY], ids=["plaintext", "safe"])
@pytest.mark.parametrize("kind", list(MESSAGES))
def test_a_callback_verifies_and_parses_in_both_modes(kind: str, aes_key: str | None) -> None:
    params, body = build_callback(MESSAGES[kind], token=TOKEN, app_id=APP_ID, aes_key=aes_key, timestamp=NOW,
                                  nonce="583910")
    assert params["openid"] == OPENID and params["timestamp"] == str(NOW)
    if aes_key:
        assert params["encrypt_type"] == "aes" and OPENID.encode() not in body  # only the ciphertext travels
    message = receive(params, body, aes_key=aes_key)
    assert message.from_user == OPENID and message.to_user == ACCOUNT and message.supported
    assert message == parse_inbound(MESSAGES[kind])


def test_the_builders_fill_each_field() -> None:
    text = parse_inbound(MESSAGES["text"])
    assert text.content == "家里燃气灶打不着火 ]]> 怎么办" and text.msg_id == "6054768590064713728"
    voice = parse_inbound(MESSAGES["voice"])
    assert (voice.media_id, voice.format, voice.recognition) == ("MEDIA2", "amr", "我要报修")
    assert parse_inbound(inbound_voice_xml(OPENID, ACCOUNT, "M", 1, NOW)).recognition is None
    location = parse_inbound(MESSAGES["location"])
    assert (location.location_x, location.location_y, location.scale, location.label) == (
        39.9042, 116.4074, 15, "北京市东城区")
    subscribe = parse_inbound(MESSAGES["subscribe"])
    assert (subscribe.event, subscribe.scene, subscribe.ticket) == ("subscribe", "branch7", "TK")


@pytest.mark.parametrize("aes_key", [None, AES_KEY], ids=["plaintext", "safe"])
def test_a_forged_or_replayed_callback_is_refused(aes_key: str | None) -> None:
    params, body = build_callback(MESSAGES["text"], token="not-our-token", app_id=APP_ID, aes_key=aes_key,
                                  timestamp=NOW, nonce="1")
    with pytest.raises(PermissionDenied):
        receive(params, body, aes_key=aes_key)
    params, body = build_callback(MESSAGES["text"], token=TOKEN, app_id=APP_ID, aes_key=aes_key, timestamp=NOW,
                                  nonce="1")
    with pytest.raises(PermissionDenied) as caught:
        receive(params, body, aes_key=aes_key, now=NOW + 3600)  # replayed an hour later
    assert caught.value.code == "wechat_stale_request"


def test_a_safe_mode_body_swapped_under_a_valid_query_is_refused() -> None:
    params, _ = build_callback(MESSAGES["text"], token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, timestamp=NOW,
                               nonce="1")
    _, other_body = build_callback(MESSAGES["click"], token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, timestamp=NOW,
                                   nonce="1")
    with pytest.raises(PermissionDenied) as caught:
        receive(params, other_body, aes_key=AES_KEY)
    assert caught.value.code == "wechat_bad_signature"


def test_url_verification_query() -> None:
    params = build_verification(token=TOKEN, timestamp=NOW, nonce="n", echostr="echo123")
    check_callback(TOKEN, timestamp=params["timestamp"], nonce=params["nonce"], signature=params["signature"],
                   now=NOW)
    assert params["echostr"] == "echo123"


def test_a_reply_round_trip_in_safe_mode() -> None:
    params, body = build_callback(MESSAGES["text"], token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, timestamp=NOW,
                                  nonce="1")
    message = receive(params, body, aes_key=AES_KEY)
    reply = text_reply_xml(message.from_user, message.to_user, "请立即关闭燃气阀门并开窗通风", NOW + 1)
    envelope = encrypted_reply_xml(WeChatCipher(AES_KEY, APP_ID), TOKEN, reply, NOW + 1, "reply-nonce")
    shown = parse_inbound(read_reply(envelope.encode(), token=TOKEN, aes_key=AES_KEY, app_id=APP_ID))
    assert (shown.to_user, shown.from_user, shown.content) == (OPENID, ACCOUNT, "请立即关闭燃气阀门并开窗通风")
    with pytest.raises(PermissionDenied):  # a reply encrypted for another account
        read_reply(envelope.encode(), token=TOKEN, aes_key=AES_KEY, app_id="wx_someone_else")
