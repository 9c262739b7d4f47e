"""Inbound callback XML (each message type as WeChat documents it), hostile XML, dedupe keys, passive replies."""

from __future__ import annotations

import pytest

from gasdesk.channels.wechat.crypto import WeChatCipher
from gasdesk.channels.wechat.messages import (
    MAX_XML_BYTES,
    dedupe_key,
    encrypted_reply_xml,
    parse_envelope,
    parse_inbound,
    text_reply_xml,
)
from gasdesk.channels.wechat.simulate import read_reply
from gasdesk.errors import GasdeskError, InvalidInput, PayloadTooLarge, PermissionDenied

pytestmark = pytest.mark.no_database

OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
ACCOUNT = "gh_10f6c3c3ac5a"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"


def _xml(body: str) -> str:
    """A callback as WeChat's documentation prints it: one element per line."""
    return ("<xml>\n<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
            "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
            "<CreateTime>1348831860</CreateTime>\n" + body + "\n</xml>")


# ---------------------------------------------------------------- message types


def test_text() -> None:
    message = parse_inbound(_xml("<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[ 家里有燃气味\n怎么办 ]]>"
                                 "</Content>\n<MsgId>1234567890123456</MsgId>"))
    assert (message.to_user, message.from_user, message.create_time) == (ACCOUNT, OPENID, 1348831860)
    assert (message.msg_type, message.msg_id, message.supported) == ("text", "1234567890123456", True)
    assert message.content == " 家里有燃气味\n怎么办 "  # kept exactly as typed
    assert "燃气" not in repr(message)  # a logged message does not carry what the resident said


def test_text_as_bytes_with_a_declaration() -> None:
    body = ('<?xml version="1.0" encoding="utf-8"?>' + _xml(
        "<MsgType>text</MsgType><Content>没气了 &amp; 报修</Content><MsgId>1</MsgId>")).encode()
    assert parse_inbound(body).content == "没气了 & 报修"


def test_image() -> None:
    message = parse_inbound(_xml("<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]>"
                                 "</PicUrl><MediaId><![CDATA[media_id_1]]></MediaId><MsgId>1234567890123457</MsgId>"))
    assert (message.msg_type, message.pic_url, message.media_id) == ("image", "http://mmbiz.qpic.cn/x", "media_id_1")
    assert message.supported


def test_voice_with_recognition() -> None:
    message = parse_inbound(_xml("<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_id]]></MediaId>"
                                 "<Format><![CDATA[amr]]></Format><Recognition><![CDATA[燃气表不走字]]></Recognition>"
                                 "<MsgId>1234567890123458</MsgId>"))
    assert (message.msg_type, message.media_id, message.format) == ("voice", "media_id", "amr")
    assert message.recognition == "燃气表不走字"
    without = parse_inbound(_xml("<MsgType>voice</MsgType><MediaId>m</MediaId><Format>speex</Format><MsgId>9</MsgId>"))
    assert without.recognition is None and without.format == "speex"


def test_location() -> None:
    message = parse_inbound(_xml("<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X>"
                                 "<Location_Y>113.358803</Location_Y><Scale>20</Scale>"
                                 "<Label><![CDATA[广州市天河区]]></Label><MsgId>1234567890123459</MsgId>"))
    assert (message.location_x, message.location_y, message.scale) == (23.134521, 113.358803, 20)
    assert message.label == "广州市天河区" and message.supported


def test_link() -> None:
    message = parse_inbound(_xml("<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title>"
                                 "<Description><![CDATA[公众平台官网链接]]></Description>"
                                 "<Url><![CDATA[https://mp.weixin.qq.com]]></Url><MsgId>1234567890123460</MsgId>"))
    assert (message.title, message.description, message.url) == ("公众平台官网链接", "公众平台官网链接",
                                                                 "https://mp.weixin.qq.com")


@pytest.mark.parametrize("event, extra, expected", [
    ("subscribe", "", {"event": "subscribe", "event_key": None, "scene": None}),
    ("subscribe", "<EventKey><![CDATA[]]></EventKey>", {"event": "subscribe", "event_key": "", "scene": None}),
    ("subscribe", "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
     {"event": "subscribe", "event_key": "qrscene_123123", "scene": "123123", "ticket": "TICKET"}),
    ("unsubscribe", "", {"event": "unsubscribe", "scene": None}),
    ("SCAN", "<EventKey><![CDATA[123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
     {"event": "SCAN", "event_key": "123123", "scene": "123123", "ticket": "TICKET"}),
    ("CLICK", "<EventKey><![CDATA[MENU_REPAIR]]></EventKey>", {"event": "CLICK", "event_key": "MENU_REPAIR"}),
    ("VIEW", "<EventKey><![CDATA[https://gas.example.cn/h5]]></EventKey>",
     {"event": "VIEW", "event_key": "https://gas.example.cn/h5"}),
    ("LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
     {"event": "LOCATION", "latitude": 23.137466, "longitude": 113.352425, "precision": 119.38504}),
    ("TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
     {"event": "TEMPLATESENDJOBFINISH", "msg_id": "200163836", "status": "success"}),
    ("click", "<EventKey>K</EventKey>", {"event": "CLICK", "event_key": "K"}),  # case folded to WeChat's spelling
])
def test_each_event(event: str, extra: str, expected: dict[str, object]) -> None:
    message = parse_inbound(_xml(f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}"))
    assert message.msg_type == "event" and message.supported
    for name, value in expected.items():
        assert getattr(message, name) == value, name


@pytest.mark.parametrize("body", [
    "<MsgType>video</MsgType><MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>5</MsgId>",
    "<MsgType>shortvideo</MsgType><MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>5</MsgId>",
    "<MsgType>miniprogrampage</MsgType><Title>x</Title><MsgId>5</MsgId>",
    "<MsgType>event</MsgType><Event>scancode_push</Event><EventKey>k</EventKey>"
    "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>",
    "<MsgType>brand_new_type</MsgType>",
])
def test_unknown_types_parse_but_are_flagged(body: str) -> None:
    message = parse_inbound(_xml(body))
    assert message.supported is False


def test_nested_elements_are_kept_by_path() -> None:
    message = parse_inbound(_xml("<MsgType>event</MsgType><Event>scancode_waitmsg</Event><EventKey>k</EventKey>"
                                 "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>ABC</ScanResult></ScanCodeInfo>"))
    assert message.fields["ScanCodeInfo/ScanResult"] == "ABC"


# ---------------------------------------------------------------- refused XML


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&x;</Content><MsgId>1</MsgId></xml>"""
PARAMETER_ENTITY = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]>
<xml><ToUserName>a</ToUserName></xml>"""


@pytest.mark.parametrize("xml", [
    BILLION_LAUGHS, EXTERNAL, PARAMETER_ENTITY,
    "<!DOCTYPE xml><xml><ToUserName>a</ToUserName></xml>",
    "<!DOCTYPE xml SYSTEM 'http://127.0.0.1:1/x.dtd'><xml/>",
    "<xml><ToUserName>a</xml>", "not xml at all", "", "   ", "<xml></xml><xml></xml>",
    "<root><ToUserName>a</ToUserName></root>", "<xml>" + "<a>" * 20 + "</a>" * 20 + "</xml>",
    "<xml>" + "<a>x</a>" * 600 + "</xml>", "<xml><Content>\x01</Content></xml>",
    _xml("<MsgType>text</MsgType><Content>&undefined;</Content>"),
])
def test_hostile_or_malformed_xml_is_invalid_input(xml: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_inbound(xml)
    assert caught.value.status_code == 422 and caught.value.code == "wechat_bad_xml"


@pytest.mark.parametrize("body", [
    b"<xml>\xff\xfe</xml>", b'<?xml version="1.0" encoding="no-such-codec"?><xml/>', "<xml>\ud800</xml>", 12345,
])
def test_undecodable_bodies_are_invalid_input(body: object) -> None:
    with pytest.raises(InvalidInput):
        parse_inbound(body)  # type: ignore[arg-type]


def test_oversized_bodies_are_refused_before_parsing() -> None:
    big = _xml("<MsgType>text</MsgType><Content>" + "气" * (MAX_XML_BYTES // 3) + "</Content><MsgId>1</MsgId>")
    with pytest.raises(PayloadTooLarge) as caught:
        parse_inbound(big.encode())
    assert caught.value.status_code == 413
    # Just under the cap still parses.
    fits = _xml("<MsgType>text</MsgType><Content>" + "x" * (MAX_XML_BYTES - 400) + "</Content><MsgId>1</MsgId>")
    assert len(parse_inbound(fits).content or "") == MAX_XML_BYTES - 400


@pytest.mark.parametrize("body", [
    "<MsgType>text</MsgType><MsgId>1</MsgId>",  # no Content
    "<MsgType>image</MsgType><MsgId>1</MsgId>",
    "<MsgType>voice</MsgType><MsgId>1</MsgId>",
    "<MsgType>location</MsgType><Location_X>abc</Location_X><Location_Y>1</Location_Y><MsgId>1</MsgId>",
    "<MsgType>location</MsgType><Location_X>nan</Location_X><Location_Y>1</Location_Y><MsgId>1</MsgId>",
    "<MsgType>location</MsgType><Location_X>1</Location_X><MsgId>1</MsgId>",
    "<MsgType>link</MsgType><Title>t</Title><MsgId>1</MsgId>",
    "<MsgType>event</MsgType>",
    "<MsgType>text</MsgType><Content>x</Content><MsgId>12ab</MsgId>",
    "<MsgType>location</MsgType><Location_X>1</Location_X><Location_Y>1</Location_Y><Scale>big</Scale>",
])
def test_a_supported_type_without_its_fields_is_invalid_input(body: str) -> None:
    with pytest.raises(InvalidInput):
        parse_inbound(_xml(body))


@pytest.mark.parametrize("xml", [
    "<xml><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content></xml>",
    "<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content></xml>",
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType><Content>x</Content></xml>",
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>yesterday</CreateTime>"
    "<MsgType>text</MsgType><Content>x</Content></xml>",
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime></xml>",
])
def test_the_header_fields_are_required(xml: str) -> None:
    with pytest.raises(InvalidInput):
        parse_inbound(xml)


# ---------------------------------------------------------------- dedupe keys


def test_a_retried_message_has_the_same_key_and_others_do_not() -> None:
    text = _xml("<MsgType>text</MsgType><Content>x</Content><MsgId>6054768590064713728</MsgId>")
    assert dedupe_key(parse_inbound(text)) == dedupe_key(parse_inbound(text)) == "msg:6054768590064713728"
    other = _xml("<MsgType>text</MsgType><Content>x</Content><MsgId>6054768590064713729</MsgId>")
    assert dedupe_key(parse_inbound(other)) != dedupe_key(parse_inbound(text))


def test_events_are_keyed_by_sender_time_and_event() -> None:
    def key(event: str, create_time: int = 1348831860, openid: str = OPENID, event_key: str = "") -> str:
        xml = (f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{openid}</FromUserName>"
               f"<CreateTime>{create_time}</CreateTime><MsgType>event</MsgType><Event>{event}</Event>"
               f"<EventKey>{event_key}</EventKey></xml>")
        return dedupe_key(parse_inbound(xml))

    assert key("subscribe") == key("subscribe")
    assert key("subscribe") == f"at:{OPENID}:1348831860:event:subscribe:"
    assert len({key("subscribe"), key("unsubscribe"), key("subscribe", 1348831861), key("subscribe", openid="o2xxxx"),
                key("CLICK", event_key="A"), key("CLICK", event_key="B")}) == 6


def test_a_message_without_msg_id_is_keyed_by_sender_and_time() -> None:
    xml = _xml("<MsgType>text</MsgType><Content>x</Content>")
    assert dedupe_key(parse_inbound(xml)) == f"at:{OPENID}:1348831860:text"


# ---------------------------------------------------------------- envelope and passive replies


def test_the_safe_mode_envelope() -> None:
    to_user, encrypted = parse_envelope(f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                                        "<Encrypt><![CDATA[abc+/=]]></Encrypt></xml>")
    assert (to_user, encrypted) == (ACCOUNT, "abc+/=")
    with pytest.raises(InvalidInput):
        parse_envelope(f"<xml><ToUserName>{ACCOUNT}</ToUserName></xml>")
    with pytest.raises(InvalidInput):
        parse_envelope("<!DOCTYPE x><xml><Encrypt>a</Encrypt></xml>")


@pytest.mark.parametrize("text", ["您好，请问有什么可以帮您？", "a]]>b", "]]>", "]]]]>", "<b>&amp;</b>", "行1\n行2",
                                  "控制\x00字符\x08"])
def test_a_text_reply_parses_back(text: str) -> None:
    reply = text_reply_xml(OPENID, ACCOUNT, text, 1700000000)
    message = parse_inbound(reply)
    assert (message.to_user, message.from_user, message.create_time) == (OPENID, ACCOUNT, 1700000000)
    assert message.msg_type == "text"
    assert message.content == text.replace("\x00", "").replace("\x08", "")


def test_an_encrypted_reply_verifies_and_decrypts() -> None:
    cipher = WeChatCipher(AES_KEY, APP_ID)
    reply = text_reply_xml(OPENID, ACCOUNT, "已为您登记报修 ]]> 单号 A1", 1700000000)
    envelope = encrypted_reply_xml(cipher, "spamtest", reply, 1700000001, "n0nce")
    assert read_reply(envelope.encode(), token="spamtest", aes_key=AES_KEY, app_id=APP_ID) == reply
    # Signed with another token → the resident's WeChat would refuse it.
    with pytest.raises(PermissionDenied):
        read_reply(envelope.encode(), token="other", aes_key=AES_KEY, app_id=APP_ID)
    # The same signature over another ciphertext of the same reply.
    original = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    forged = envelope.replace(original, cipher.encrypt(reply))
    assert forged != envelope
    with pytest.raises(PermissionDenied):
        read_reply(forged.encode(), token="spamtest", aes_key=AES_KEY, app_id=APP_ID)


def test_reading_replies_in_each_mode() -> None:
    reply = text_reply_xml(OPENID, ACCOUNT, "好的", 1)
    assert read_reply(b"success", token="t", aes_key=None, app_id=APP_ID) == "success"
    assert read_reply(b"", token="t", aes_key=AES_KEY, app_id=APP_ID) == ""
    assert read_reply(reply.encode(), token="t", aes_key=None, app_id=APP_ID) == reply
    with pytest.raises(GasdeskError):  # safe mode: a plaintext reply is not accepted
        read_reply(reply.encode(), token="t", aes_key=AES_KEY, app_id=APP_ID)
