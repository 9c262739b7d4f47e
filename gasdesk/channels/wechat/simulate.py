"""The resident's side of the callback protocol, as WeChat's servers would produce it: the XML of each
message type, the signed query string and (safe mode) encrypted body of a callback, and the reading of our
passive reply. Used by tests and the development simulator; nothing here runs in production paths.
"""

from __future__ import annotations

import hmac

from gasdesk.channels.wechat.crypto import WeChatCipher, callback_signature
from gasdesk.channels.wechat.messages import parse_fields, xml_document
from gasdesk.errors import InvalidInput, PermissionDenied


def inbound_text_xml(openid: str, to_user: str, text: str, msg_id: int, create_time: int) -> str:
    return xml_document([("ToUserName", to_user), ("FromUserName", openid), ("CreateTime", create_time),
                         ("MsgType", "text"), ("Content", text), ("MsgId", msg_id)])


def inbound_image_xml(openid: str, to_user: str, pic_url: str, media_id: str, msg_id: int,
                      create_time: int) -> str:
    return xml_document([("ToUserName", to_user), ("FromUserName", openid), ("CreateTime", create_time),
                         ("MsgType", "image"), ("PicUrl", pic_url), ("MediaId", media_id), ("MsgId", msg_id)])


def inbound_voice_xml(openid: str, to_user: str, media_id: str, msg_id: int, create_time: int, *,
                      format: str = "amr", recognition: str | None = None) -> str:
    """A voice message; ``recognition`` is WeChat's speech-to-text (sent when the account turned it on)."""
    items: list[tuple[str, str | int]] = [
        ("ToUserName", to_user), ("FromUserName", openid), ("CreateTime", create_time), ("MsgType", "voice"),
        ("MediaId", media_id), ("Format", format)]
    if recognition is not None:
        items.append(("Recognition", recognition))
    items.append(("MsgId", msg_id))
    return xml_document(items)


def inbound_location_xml(openid: str, to_user: str, latitude: float, longitude: float, label: str,
                         msg_id: int, create_time: int, *, scale: int = 15) -> str:
    """A location message (Location_X is the latitude, Location_Y the longitude)."""
    return xml_document([("ToUserName", to_user), ("FromUserName", openid), ("CreateTime", create_time),
                         ("MsgType", "location"), ("Location_X", repr(float(latitude))),
                         ("Location_Y", repr(float(longitude))), ("Scale", scale), ("Label", label),
                         ("MsgId", msg_id)])


def inbound_link_xml(openid: str, to_user: str, title: str, description: str, url: str, msg_id: int,
                     create_time: int) -> str:
    return xml_document([("ToUserName", to_user), ("FromUserName", openid), ("CreateTime", create_time),
                         ("MsgType", "link"), ("Title", title), ("Description", description), ("Url", url),
                         ("MsgId", msg_id)])


def inbound_event_xml(openid: str, to_user: str, event: str, create_time: int, *, event_key: str | None = None,
                      ticket: str | None = None) -> str:
    """An event: subscribe (``event_key="qrscene_<scene>"`` + ``ticket`` through a parametric QR code),
    unsubscribe, SCAN (``event_key`` = scene), CLICK (menu key), VIEW (menu URL)."""
    items: list[tuple[str, str | int]] = [
        ("ToUserName", to_user), ("FromUserName", openid), ("CreateTime", create_time), ("MsgType", "event"),
        ("Event", event)]
    if event_key is not None:
        items.append(("EventKey", event_key))
    if ticket is not None:
        items.append(("Ticket", ticket))
    return xml_document(items)


def build_verification(*, token: str, timestamp: int, nonce: str, echostr: str) -> dict[str, str]:
    """The query of WeChat's GET that verifies the server URL (the answer must be ``echostr``)."""
    return {"signature": callback_signature(token, str(timestamp), nonce), "timestamp": str(timestamp),
            "nonce": nonce, "echostr": echostr}


def build_callback(xml: str, *, token: str, app_id: str, aes_key: str | None, timestamp: int,
                   nonce: str) -> tuple[dict[str, str], bytes]:
    """The query parameters and body of WeChat's POST for the message ``xml``: plaintext without
    ``aes_key``; in safe mode the ``<Encrypt>`` envelope with ``encrypt_type=aes`` and ``msg_signature``."""
    fields = parse_fields(xml)
    params = {"signature": callback_signature(token, str(timestamp), nonce), "timestamp": str(timestamp),
              "nonce": nonce, "openid": fields.get("FromUserName", "").strip()}
    if aes_key is None:
        return params, xml.encode("utf-8")
    encrypted = WeChatCipher(aes_key, app_id).encrypt(xml)
    params["encrypt_type"] = "aes"
    params["msg_signature"] = callback_signature(token, str(timestamp), nonce, encrypted)
    body = xml_document([("ToUserName", fields.get("ToUserName", "").strip()), ("Encrypt", encrypted)])
    return params, body.encode("utf-8")


def read_reply(body: bytes, *, token: str, aes_key: str | None, app_id: str) -> str:
    """What the resident's WeChat makes of our answer to a callback: ``"success"`` or ``""`` (nothing to
    show), the plaintext reply XML, or (safe mode) the reply decrypted after its MsgSignature is verified.
    In safe mode a reply that is neither ``success`` nor encrypted is refused, as WeChat would."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInput("回复不是 UTF-8 (reply is not UTF-8)", code="wechat_bad_xml") from None
    if text in ("", "success"):
        return text
    fields = parse_fields(text)
    if "Encrypt" not in fields:
        if aes_key is not None:
            raise InvalidInput("安全模式下回复未加密 (plaintext reply in safe mode)", code="wechat_reply_not_encrypted")
        return text
    if aes_key is None:
        raise InvalidInput("明文模式下收到加密回复 (encrypted reply in plaintext mode)", code="wechat_reply_encrypted")
    encrypted = fields["Encrypt"].strip()
    expected = callback_signature(token, fields.get("TimeStamp", "").strip(), fields.get("Nonce", "").strip(),
                                  encrypted)
    if not hmac.compare_digest(expected.encode(), fields.get("MsgSignature", "").strip().encode()):
        raise PermissionDenied("回复签名无效 (reply MsgSignature does not match)", code="wechat_bad_signature")
    return WeChatCipher(aes_key, app_id).decrypt(encrypted)
