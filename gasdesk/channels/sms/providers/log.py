"""The standalone default: no SMS account, nothing leaves the server.

``send`` checks the number and the template variables as a real provider would, then returns a generated
provider id; the integration keeps such messages in its outbox page, where staff read what would have been
sent. The log line carries the template code and the id only — no number, no text.
"""

from __future__ import annotations

import logging
import uuid

from gasdesk.channels.sending import SendResult
from gasdesk.channels.sms.providers.base import SmsTemplateRef, mobile_or_send_failed, ordered_params

logger = logging.getLogger(__name__)

LOG_ID_PREFIX = "log-"


class LogSmsProvider:
    """Sends nothing; ``SendResult.provider_id`` is ``log-<32 hex digits>``."""

    name = "log"

    async def send(self, phone: str, template: SmsTemplateRef, params: dict[str, str], *,
                   reference: str | None = None) -> SendResult:
        mobile_or_send_failed(phone)
        ordered_params(template, params)
        provider_id = f"{LOG_ID_PREFIX}{uuid.uuid4().hex}"
        logger.info("sms not sent (log provider): template %s, id %s", template.code, provider_id)
        return SendResult(provider_id=provider_id)
