"""Imports every domain's ORM models so ``Base.metadata`` is complete (Alembic, test set-up)."""

from gasdesk.analytics import models as analytics_models  # noqa: F401
from gasdesk.appointments import models as appointment_models  # noqa: F401
from gasdesk.audit import models as audit_models  # noqa: F401
from gasdesk.auth import models as auth_models  # noqa: F401
from gasdesk.branches import models as branch_models  # noqa: F401
from gasdesk.broadcasts import models as broadcast_models  # noqa: F401
from gasdesk.callbacks import models as callback_models  # noqa: F401
from gasdesk.channels import models as channel_models  # noqa: F401
from gasdesk.conversations import attachments as attachment_models  # noqa: F401
from gasdesk.conversations import models as conversation_models  # noqa: F401
from gasdesk.customers import models as customer_models  # noqa: F401
from gasdesk.db import Base
from gasdesk.emergency import models as emergency_models  # noqa: F401
from gasdesk.followups import models as followup_models  # noqa: F401
from gasdesk.hours import models as hours_models  # noqa: F401
from gasdesk.intent_corrections import models as correction_models  # noqa: F401
from gasdesk.internal_chat import models as internal_chat_models  # noqa: F401
from gasdesk.jobs import models as job_models  # noqa: F401
from gasdesk.kb import models as kb_models  # noqa: F401
from gasdesk.notifications import models as notification_models  # noqa: F401
from gasdesk.outages import models as outage_models  # noqa: F401
from gasdesk.outbound import models as outbound_models  # noqa: F401
from gasdesk.quality import models as quality_models  # noqa: F401
from gasdesk.reports.exports import models as report_file_models  # noqa: F401
from gasdesk.rostering import models as rostering_models  # noqa: F401
from gasdesk.routing import models as routing_models  # noqa: F401
from gasdesk.tags import models as tag_models  # noqa: F401
from gasdesk.telephony import models as telephony_models  # noqa: F401
from gasdesk.tickets import models as ticket_models  # noqa: F401
from gasdesk.training import models as training_models  # noqa: F401
from gasdesk.video import models as video_models  # noqa: F401
from gasdesk.wall import models as wall_models  # noqa: F401
from gasdesk.webhooks import models as webhook_models  # noqa: F401

metadata = Base.metadata
