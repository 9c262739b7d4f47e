"""WeChat callback XML: safe parsing of what WeChat posts, and the passive replies we answer with.

Parsing goes straight through expat with everything that can expand or fetch refused: a body over 64 KiB,
any DOCTYPE, entity declaration or external entity, nesting deeper than 8 or more than 512 elements is a
4xx before any handler sees it. Malformed XML → 422 ``invalid_input`` (code ``wechat_bad_xml``).
"""

from __future__ import annotations

import math
import re
import xml.parsers.expat
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gasdesk.channels.wechat.crypto import WeChatCipher, callback_signature
from gasdesk.errors import InvalidInput, PayloadTooLarge

MAX_XML_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_ELEMENTS = 512

SUPPORTED_MSG_TYPES = frozenset({"text", "image", "voice", "location", "link", "event"})
# Canonical spellings as WeChat sends them (subscribe/unsubscribe lower case, the rest upper case).
EVENTS = ("subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH")
_EVENT_BY_FOLDED = {name.casefold(): name for name in EVENTS}
QR_SCENE_PREFIX = "qrscene_"

# Characters XML 1.0 cannot carry at all (a reply holding one would be refused by WeChat's parser).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _bad_xml(why: str) -> InvalidInput:
    return InvalidInput(f"微信消息格式错误 (malformed WeChat XML: {why})", code="wechat_bad_xml")


class _Refused(Exception):
    """Raised inside expat handlers; turned into a typed error outside."""


@dataclass
class _Node:
    tag: str
    text: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)


def _parse_tree(xml_input: bytes | str) -> _Node:
    """The element tree of a WeChat XML document, refusing anything that could expand or fetch."""
    if isinstance(xml_input, str):
        try:
            data = xml_input.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad_xml("not encodable as UTF-8") from None
        encoding: str | None = "UTF-8"
    elif isinstance(xml_input, bytes | bytearray | memoryview):
        data = bytes(xml_input)
        encoding = None
    else:
        raise _bad_xml("not text")
    if len(data) > MAX_XML_BYTES:
        raise PayloadTooLarge("微信消息过大 (WeChat XML over 64 KiB)", code="wechat_xml_too_large")
    if not data.strip():
        raise _bad_xml("empty body")

    parser = xml.parsers.expat.ParserCreate(encoding)
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node] = []
    roots: list[_Node] = []
    count = 0

    def refuse(*_args: object) -> int:
        raise _Refused("DOCTYPE and entities are not allowed")

    def start(tag: str, _attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS or len(stack) >= MAX_DEPTH:
            raise _Refused("too many or too deeply nested elements")
        node = _Node(tag)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].text.append(text)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise _bad_xml(str(exc)) from None
    except xml.parsers.expat.ExpatError as exc:
        raise _bad_xml(xml.parsers.expat.ErrorString(exc.code) or "syntax error") from None
    except (ValueError, LookupError):  # an encoding expat or Python cannot read
        raise _bad_xml("unreadable encoding") from None
    if len(roots) != 1 or roots[0].tag != "xml":
        raise _bad_xml("the root element must be <xml>")
    return roots[0]


def parse_fields(xml_input: bytes | str) -> dict[str, str]:
    """The text of each element under ``<xml>`` by tag (first occurrence wins); nested elements appear as
    ``Parent/Child`` (e.g. ``ScanCodeInfo/ScanResult``)."""
    root = _parse_tree(xml_input)
    found: dict[str, str] = {}

    def collect(node: _Node, prefix: str) -> None:
        for child in node.children:
            name = prefix + child.tag
            if child.children:
                collect(child, name + "/")
            else:
                found.setdefault(name, "".join(child.text))

    collect(root, "")
    return found


@dataclass(frozen=True, repr=False)
class InboundMessage:
    """One message or event WeChat pushed. ``supported`` is False for types gasdesk does not handle (video,
    shortvideo, mini-program cards, unknown events): they parse, and the caller answers "success"."""

    to_user: str
    from_user: str  # the resident's openid
    create_time: int
    msg_type: str
    msg_id: str | None = None
    content: str | None = None
    pic_url: str | None = None
    media_id: str | None = None
    format: str | None = None
    recognition: str | None = None
    thumb_media_id: str | None = None
    location_x: float | None = None
    location_y: float | None = None
    scale: int | None = None
    label: str | None = None
    title: str | None = None
    description: str | None = None
    url: str | None = None
    event: str | None = None
    event_key: str | None = None
    ticket: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    precision: float | None = None
    status: str | None = None
    supported: bool = True
    fields: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __repr__(self) -> str:
        # No content, recognition, location or links: a logged message must not carry what a resident said.
        return (f"InboundMessage(msg_type={self.msg_type!r}, event={self.event!r}, msg_id={self.msg_id!r}, "
                f"create_time={self.create_time}, supported={self.supported})")

    @property
    def scene(self) -> str | None:
        """The QR-code scene: ``qrscene_123`` of a subscribe through a parametric code, or a SCAN's key."""
        if self.event == "subscribe" and self.event_key and self.event_key.startswith(QR_SCENE_PREFIX):
            return self.event_key[len(QR_SCENE_PREFIX):] or None
        if self.event == "SCAN":
            return self.event_key or None
        return None


def _int(fields: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    value = fields.get(name, "").strip()
    if not value:
        if required:
            raise _bad_xml(f"{name} is missing")
        return None
    if not (value.isascii() and value.lstrip("-").isdigit() and len(value) <= 20):
        raise _bad_xml(f"{name} is not an integer")
    return int(value)


def _float(fields: Mapping[str, str], name: str) -> float | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise _bad_xml(f"{name} is not a number") from None
    if not math.isfinite(number):
        raise _bad_xml(f"{name} is not a number")
    return number


def _text(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else value.strip()


def _msg_id(fields: Mapping[str, str]) -> str | None:
    # TEMPLATESENDJOBFINISH spells it MsgID.
    value = (fields.get("MsgId") or fields.get("MsgID") or "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 24):
        raise _bad_xml("MsgId is not a number")
    return value


def parse_inbound(xml_input: bytes | str) -> InboundMessage:
    """One plaintext callback body (or a safe-mode body after decryption) as an ``InboundMessage``."""
    fields = parse_fields(xml_input)
    for name in ("ToUserName", "FromUserName", "MsgType"):
        if not _text(fields, name):
            raise _bad_xml(f"{name} is missing")
    create_time = _int(fields, "CreateTime", required=True)
    assert create_time is not None
    if create_time < 0:
        raise _bad_xml("CreateTime is negative")
    msg_type = (_text(fields, "MsgType") or "").lower()
    event = _text(fields, "Event")
    supported = msg_type in SUPPORTED_MSG_TYPES
    if msg_type == "event":
        if not event:
            raise _bad_xml("Event is missing")
        canonical = _EVENT_BY_FOLDED.get(event.casefold())
        supported = canonical is not None
        event = canonical or event
    message = InboundMessage(
        to_user=_text(fields, "ToUserName") or "",
        from_user=_text(fields, "FromUserName") or "",
        create_time=create_time,
        msg_type=msg_type,
        msg_id=_msg_id(fields),
        content=fields.get("Content"),  # kept as typed: spaces and line breaks are the resident's
        pic_url=_text(fields, "PicUrl"),
        media_id=_text(fields, "MediaId"),
        format=_text(fields, "Format"),
        recognition=_text(fields, "Recognition"),
        thumb_media_id=_text(fields, "ThumbMediaId"),
        location_x=_float(fields, "Location_X"),
        location_y=_float(fields, "Location_Y"),
        scale=_int(fields, "Scale"),
        label=_text(fields, "Label"),
        title=_text(fields, "Title"),
        description=_text(fields, "Description"),
        url=_text(fields, "Url"),
        event=event,
        event_key=_text(fields, "EventKey"),
        ticket=_text(fields, "Ticket"),
        latitude=_float(fields, "Latitude"),
        longitude=_float(fields, "Longitude"),
        precision=_float(fields, "Precision"),
        status=_text(fields, "Status"),
        supported=supported,
        fields=MappingProxyType(dict(fields)),
    )
    _check_required(message)
    return message


def _check_required(message: InboundMessage) -> None:
    """What each supported type cannot do without (an unsupported type is only flagged)."""
    missing = {
        "text": message.content is None,
        "image": not (message.pic_url or message.media_id),
        "voice": not message.media_id,
        "location": message.location_x is None or message.location_y is None,
        "link": not message.url,
    }.get(message.msg_type, False)
    if missing:
        raise _bad_xml(f"a {message.msg_type} message without its content")


def dedupe_key(message: InboundMessage) -> str:
    """The key WeChat's retries share (it retries three times when no answer comes within 5 s): MsgId for
    messages; FromUserName + CreateTime (+ Event, EventKey) for events, as WeChat recommends."""
    if message.msg_type != "event" and message.msg_id:
        return f"msg:{message.msg_id}"
    parts = [message.from_user, str(message.create_time), message.msg_type]
    if message.msg_type == "event":
        parts += [message.event or "", message.event_key or ""]
    return "at:" + ":".join(parts)


def parse_envelope(xml_input: bytes | str) -> tuple[str, str]:
    """A safe-mode callback body: (ToUserName, the ``<Encrypt>`` text)."""
    fields = parse_fields(xml_input)
    encrypted = (fields.get("Encrypt") or "").strip()
    if not encrypted:
        raise _bad_xml("Encrypt is missing")
    return (fields.get("ToUserName") or "").strip(), encrypted


# ---------------------------------------------------------------- building XML


def cdata(text: str) -> str:
    """``text`` as CDATA: characters XML cannot carry are dropped, and a ``]]>`` inside is split across two
    sections so it cannot end the first one early."""
    clean = _XML_ILLEGAL.sub("", text)
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_document(items: list[tuple[str, str | int]]) -> str:
    """``<xml>`` with one element per item: strings as CDATA, integers as plain numbers."""
    body = "".join(f"<{tag}>{value if isinstance(value, int) else cdata(value)}</{tag}>" for tag, value in items)
    return f"<xml>{body}</xml>"


def text_reply_xml(to_user: str, from_user: str, text: str, create_time: int) -> str:
    """A passive text reply: ``to_user`` is the resident's openid, ``from_user`` the account's id."""
    return xml_document([("ToUserName", to_user), ("FromUserName", from_user), ("CreateTime", int(create_time)),
                         ("MsgType", "text"), ("Content", text)])


def encrypted_reply_xml(cipher: WeChatCipher, token: str, reply_xml: str, timestamp: int | str, nonce: str) -> str:
    """A passive reply in safe mode: the encrypted ``reply_xml`` with its MsgSignature, TimeStamp and Nonce."""
    stamp = str(timestamp)
    if not (stamp.isascii() and stamp.isdigit()):
        raise ValueError("timestamp must be an integer")
    encrypted = cipher.encrypt(reply_xml)
    signature = callback_signature(token, stamp, nonce, encrypted)
    return xml_document([("Encrypt", encrypted), ("MsgSignature", signature), ("TimeStamp", int(stamp)),
                         ("Nonce", nonce)])
