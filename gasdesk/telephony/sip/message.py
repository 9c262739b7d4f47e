"""Hardened SIP message parsing and serialising (the RFC 3261 subset a UDP user agent server needs).

Everything that arrives on the socket is untrusted: a datagram is capped (:data:`MAX_DATAGRAM`), so are the
number and length of header lines, the request/status line must be exact, compact header forms are expanded,
and Content-Length is honoured (a body shorter than it declares is refused). :func:`parse` raises
:class:`SipParseError` for anything it cannot trust; ``respondable`` tells whether enough of a request was
read to answer ``400 Bad Request`` (the headers a response copies are present), otherwise the datagram is
dropped.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

MAX_DATAGRAM = 8192
MAX_HEADERS = 64
MAX_HEADER_LINE = 1024
MAX_BODY = 4096

# RFC 3261 §7.3.3 compact forms (plus the ones RFC 3265/3515/4028 add that a UAS may meet).
COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
    "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "o": "Event", "r": "Refer-To",
    "b": "Referred-By", "x": "Session-Expires", "u": "Allow-Events",
}
_CANONICAL = {name.lower(): name for name in (
    "Call-ID", "Contact", "Content-Encoding", "Content-Length", "Content-Type", "From", "Subject",
    "Supported", "To", "Via", "CSeq", "Max-Forwards", "Allow", "Accept", "User-Agent", "Server",
    "Record-Route", "Route", "Require", "Unsupported", "Reason", "Event", "Refer-To", "Referred-By",
    "Session-Expires", "Allow-Events", "Retry-After",
)}
# Headers a response copies from its request (RFC 3261 §8.2.6.2): without them no answer is possible.
RESPONSE_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_REQUEST_LINE = re.compile(rf"^({_TOKEN}) ([^\s]+) SIP/2\.0$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2}) ([^\r\n]*)$")
_HEADER_NAME = re.compile(rf"^{_TOKEN}$")
_URI = re.compile(r"^(sips?|tel):[^\s<>\"]+$", re.IGNORECASE)
_CSEQ = re.compile(rf"^([0-9]{{1,10}})\s+({_TOKEN})$")
_TAG = re.compile(r";\s*tag=([^;>\s]+)", re.IGNORECASE)
_BRANCH = re.compile(r";\s*branch=([^;\s,]+)", re.IGNORECASE)
_ANGLE_URI = re.compile(r"<([^>]*)>")

REASONS = {
    100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 405: "Method Not Allowed",
    415: "Unsupported Media Type", 481: "Call/Transaction Does Not Exist", 483: "Too Many Hops",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable", 513: "Message Too Large",
}


class SipParseError(ValueError):
    """The datagram is not a SIP message we accept. ``partial`` is the request as far as it was read when
    a ``400`` can be sent (see :func:`parse`), else None."""

    def __init__(self, reason: str, partial: SipMessage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial

    @property
    def respondable(self) -> bool:
        return self.partial is not None


@dataclass
class SipMessage:
    """A request (``method``/``uri`` set) or a response (``status``/``reason`` set). Headers keep their
    order and repeats; names are canonical (compact forms expanded)."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        """First value of header ``name`` (case-insensitive, compact forms accepted)."""
        key = canonical_name(name).lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, comma-separated values split (outside quotes and <>)."""
        key = canonical_name(name).lower()
        out: list[str] = []
        for k, v in self.headers:
            if k.lower() == key:
                out.extend(split_header_values(v))
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one with ``value``."""
        key = canonical_name(name)
        self.headers = [(k, v) for k, v in self.headers if k.lower() != key.lower()]
        self.headers.append((key, value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical_name(name), value))

    @property
    def call_id(self) -> str:
        return self.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method) from CSeq; parse() guarantees it is well formed on requests it accepted."""
        m = _CSEQ.match(self.get("CSeq").strip())
        if not m:
            return 0, ""
        return int(m.group(1)), m.group(2)

    @property
    def branch(self) -> str:
        m = _BRANCH.search(self.get("Via"))
        return m.group(1) if m else ""

    @property
    def from_tag(self) -> str:
        return header_tag(self.get("From"))

    @property
    def to_tag(self) -> str:
        return header_tag(self.get("To"))

    @property
    def content_type(self) -> str:
        return self.get("Content-Type").split(";", 1)[0].strip().lower()

    def serialize(self) -> bytes:
        """Wire form; Content-Length is always written from the actual body."""
        first = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [first]
        lines.extend(f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def canonical_name(name: str) -> str:
    """Expand a compact form and normalise the case of well-known header names."""
    name = name.strip()
    if len(name) == 1:
        name = COMPACT.get(name.lower(), name)
    return _CANONICAL.get(name.lower(), name)


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quoted strings and <URIs>."""
    out: list[str] = []
    buf: list[str] = []
    quoted = angle = False
    for ch in value:
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        if ch == "," and not quoted and not angle:
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    if buf:
        out.append("".join(buf).strip())
    return [v for v in out if v]


def header_tag(value: str) -> str:
    """The ``tag`` parameter of a From/To value (outside the <URI>)."""
    m = _TAG.search(_ANGLE_URI.sub("<>", value))
    return m.group(1) if m else ""


def header_uri(value: str) -> str:
    """The URI of a name-addr (``"x" <sip:a@b>;tag=1``) or addr-spec (``sip:a@b;tag=1``) value."""
    m = _ANGLE_URI.search(value)
    if m:
        return m.group(1).strip()
    return value.split(";", 1)[0].strip()


def uri_user(uri: str) -> str:
    """The user part of a sip:/tel: URI ('' when there is none)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    if uri.lower().startswith("tel:"):
        return rest.split(";", 1)[0]
    return rest.split("@", 1)[0] if "@" in rest else ""


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def parse(data: bytes) -> SipMessage:
    """Parse one datagram. Raises :class:`SipParseError`; its ``partial`` is set when the datagram is a
    request whose first line and response headers were read, so a ``400`` can be sent."""
    if len(data) > MAX_DATAGRAM:
        raise SipParseError("datagram too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no end of headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("headers are not UTF-8") from exc
    if "\x00" in text:
        raise SipParseError("NUL in headers")
    raw_lines = text.split("\r\n")
    first, rest = raw_lines[0], raw_lines[1:]
    msg = SipMessage()
    m = _REQUEST_LINE.match(first)
    if m:
        msg.method, msg.uri = m.group(1), m.group(2)
    else:
        s = _STATUS_LINE.match(first)
        if not s:
            raise SipParseError("bad request or status line")
        msg.status, msg.reason = int(s.group(1)), s.group(2)
    if len(first) > MAX_HEADER_LINE:
        raise SipParseError("first line too long")

    defects: list[str] = []
    lines: list[str] = []
    for line in rest:
        if "\r" in line or "\n" in line:
            raise SipParseError("bare CR or LF in headers")
        if line[:1] in (" ", "\t") and lines:  # folded continuation (RFC 3261 §7.3.1)
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    if len(lines) > MAX_HEADERS:
        raise SipParseError("too many headers")
    for line in lines:
        if len(line) > MAX_HEADER_LINE:
            raise SipParseError("header line too long")
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.match(name.strip()) or name != name.rstrip(" \t").lstrip():
            defects.append("malformed header line")
            continue
        msg.headers.append((canonical_name(name), value.strip()))

    if msg.is_request:
        if not _URI.match(msg.uri):
            defects.append("bad Request-URI")
        cseq = _CSEQ.match(msg.get("CSeq").strip())
        if msg.get("CSeq") and (not cseq or cseq.group(2) != msg.method):
            defects.append("bad CSeq")
        mf = msg.get("Max-Forwards")
        if mf and not (mf.isdigit() and len(mf) <= 3):
            defects.append("bad Max-Forwards")
    answerable = msg.is_request and all(msg.get(h) for h in RESPONSE_HEADERS)

    cl_values = [v for k, v in msg.headers if k == "Content-Length"]
    if cl_values:
        if len(set(cl_values)) != 1 or not cl_values[0].isdigit() or len(cl_values[0]) > 6:
            _fail("bad Content-Length", msg, answerable)
        length = int(cl_values[0])
        if length > len(body):
            _fail("body shorter than Content-Length", msg, answerable)
        body = body[:length]
    if len(body) > MAX_BODY:
        _fail("body too large", msg, answerable)
    msg.body = body

    if msg.is_request:
        missing = [h for h in RESPONSE_HEADERS if not msg.get(h)]
        if missing:
            raise SipParseError("missing " + ", ".join(missing))
        if not msg.cseq[1]:
            defects.append("bad CSeq")
    if defects:
        _fail(defects[0], msg, answerable)
    return msg


def _fail(reason: str, msg: SipMessage, answerable: bool) -> None:
    raise SipParseError(reason, msg if answerable and _cseq_usable(msg) else None)


def _cseq_usable(msg: SipMessage) -> bool:
    # A response must carry a CSeq the client can match; a garbage CSeq makes the 400 useless.
    return bool(_CSEQ.match(msg.get("CSeq").strip()))


def make_response(request: SipMessage, status: int, *, reason: str = "", to_tag: str = "",
                  headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                  content_type: str = "") -> SipMessage:
    """A response to ``request`` copying Via (all), From, To (adding ``to_tag`` if it has none), Call-ID
    and CSeq (RFC 3261 §8.2.6)."""
    resp = SipMessage(status=status, reason=reason or REASONS.get(status, "Unknown"))
    for k, v in request.headers:
        if k == "Via":
            resp.headers.append((k, v))
    to = request.get("To")
    if to_tag and not header_tag(to) and status != 100:
        to = f"{to};tag={to_tag}"
    resp.headers.extend([("From", request.get("From")), ("To", to), ("Call-ID", request.get("Call-ID")),
                         ("CSeq", request.get("CSeq"))])
    if status == 100 and request.get("Timestamp"):
        resp.headers.append(("Timestamp", request.get("Timestamp")))
    resp.headers.extend(headers or [])
    if body:
        resp.headers.append(("Content-Type", content_type or "application/sdp"))
    resp.body = body
    return resp
