"""What the Aliyun and Tencent fakes share: the record of an accepted message and injected failures."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from starlette.requests import Request

# Larger request bodies are refused by the fakes (a SendSms request for one number is well under 2 KB).
FAKE_BODY_CAP = 64 * 1024

_MAINLAND_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")


def mainland_mobile(raw: str) -> str | None:
    """The 11-digit number if ``raw`` is a mainland mobile as the providers accept it (optionally +86/0086/86)."""
    match = _MAINLAND_MOBILE.match(raw.strip())
    return match.group(1) if match else None


async def read_capped_body(request: Request, cap: int = FAKE_BODY_CAP) -> bytes | None:
    """The request body, or None once it exceeds ``cap`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)


@dataclass(frozen=True)
class SentSms:
    """One message a fake accepted (one per phone number)."""

    phone: str
    template: str
    params: dict[str, str] | list[str]
    sign_name: str
    provider_id: str
    at: datetime
    reference: str | None = None


@dataclass
class InjectedFailure:
    http_status: int | None = None
    error_code: str | None = None
    per_number: bool = False


@dataclass
class FailurePlan:
    """``fail_next``'s queue: each request takes the first planned failure, if any."""

    planned: list[InjectedFailure] = field(default_factory=list)

    def add(self, n: int, *, http_status: int | None, error_code: str | None, per_number: bool = False) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if http_status is None and error_code is None:
            http_status = 500
        self.planned.extend(InjectedFailure(http_status, error_code, per_number) for _ in range(n))

    def take_outage(self) -> InjectedFailure | None:
        """An HTTP failure planned for this request (an outage answers before any check)."""
        if self.planned and self.planned[0].http_status is not None:
            return self.planned.pop(0)
        return None

    def take_error(self) -> InjectedFailure | None:
        """An error code planned for this (authenticated) request."""
        if self.planned and self.planned[0].error_code is not None:
            return self.planned.pop(0)
        return None
