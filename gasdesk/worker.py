"""The worker entry point, and what background work exists.

Domains define job handlers, periodic tasks and hooks as plain functions; ``register_handlers`` wires them,
called by the app factory (``web/app.py``) and by ``run_worker`` (``gasdesk worker``). So no domain imports a
registry and the jobs queue imports no domain: the import graph stays free of cycles
(tests/system/test_package_shape.py)."""

from __future__ import annotations

import asyncio

from gasdesk import all_models  # noqa: F401 - every mapper is known before the first flush
from gasdesk.analytics import ingest as analytics_ingest
from gasdesk.analytics.rollup import EVERY_S as ROLLUP_EVERY_S
from gasdesk.analytics.rollup import rollup as analytics_rollup
from gasdesk.appointments.service import on_appointment_booked
from gasdesk.auth.service import prune_auth_state
from gasdesk.broadcasts.service import JOB as BROADCAST_JOB
from gasdesk.broadcasts.service import drain as drain_broadcasts
from gasdesk.broadcasts.service import kick_drain
from gasdesk.callbacks.service import answer_callback_keyword
from gasdesk.channels.inbound import intercept_inbound, prune_receipts
from gasdesk.channels.replies import queue_chat_reply
from gasdesk.channels.sms.optout import sms_opt_out
from gasdesk.channels.sms.sender import send_sms
from gasdesk.channels.wechat.sender import send_wechat
from gasdesk.conversations.idle import scan_every_s, scan_idle_residents
from gasdesk.conversations.service import (
    on_conversation_closed,
    on_conversation_started,
    on_reply_to_remote_resident,
)
from gasdesk.emergency.phone import queue_phone_alert
from gasdesk.emergency.service import SCAN_EVERY_S as EMERGENCY_SCAN_EVERY_S
from gasdesk.emergency.service import advance_due as emergency_advance_due
from gasdesk.emergency.service import register_phone_alerter
from gasdesk.emergency.sms_ack import sms_acknowledge
from gasdesk.followups.remote import RemoteSurvey, answer_by_digit
from gasdesk.followups.service import CHANNELS as SURVEY_CHANNELS
from gasdesk.followups.service import dispatch_due, schedule_followup
from gasdesk.internal_chat.service import RETENTION_EVERY_S as ICHAT_RETENTION_EVERY_S
from gasdesk.internal_chat.service import purge_expired as purge_internal_chat
from gasdesk.jobs.queue import register_job, register_periodic, worker_loop
from gasdesk.outbound.notices import (
    REMINDERS_EVERY_S,
    notify_appointment_booked,
    notify_ticket_created,
    notify_ticket_progress,
    send_appointment_reminders,
)
from gasdesk.outbound.service import JOB as OUTBOUND_JOB
from gasdesk.outbound.service import deliver_outbound, fail_stale_sending, register_sender
from gasdesk.quality.service import SCAN_EVERY_S as QUALITY_SCAN_EVERY_S
from gasdesk.quality.service import score_closed_contacts
from gasdesk.reports.exports.service import SCHEDULE_EVERY_S, make_scheduled_reports
from gasdesk.tags.service import JOB as TAGS_JOB
from gasdesk.tags.service import apply_rules_job, mark_stranger, queue_rules
from gasdesk.telephony.service import RETENTION_EVERY_S, purge_recordings
from gasdesk.tickets.service import on_ticket_created, on_ticket_resolved, on_ticket_transition
from gasdesk.tickets.sla_scan import scan_sla
from gasdesk.video.service import SCAN_EVERY_S as VIDEO_SCAN_EVERY_S
from gasdesk.video.service import end_stale_sessions, end_with_conversation
from gasdesk.webhooks.service import deliver_job


def register_handlers() -> None:
    """Register every job handler, periodic task and cross-domain hook (idempotent)."""
    # Time limits of one attempt (gasdesk/jobs/queue.py; default 300 s): a little above the HTTP timeouts
    # inside, so a hung provider is the handler's own error and a stuck handler is cancelled by the queue.
    register_job("webhooks.deliver", deliver_job, timeout_s=60)
    register_job(OUTBOUND_JOB, deliver_outbound, timeout_s=120)
    register_periodic("outbound.stale_sending", 300, fail_stale_sending)
    register_periodic("channels.prune_receipts", 3600, prune_receipts)
    register_periodic("auth.prune", 3600, prune_auth_state)
    register_periodic("conversations.idle_scan", scan_every_s(), scan_idle_residents)
    register_periodic("followups.dispatch", 60, dispatch_due)
    register_periodic("tickets.sla_scan", 60, scan_sla)
    register_periodic("notices.appointment_reminders", REMINDERS_EVERY_S, send_appointment_reminders)
    register_periodic("telephony.recording_retention", RETENTION_EVERY_S, purge_recordings)
    # Staff chat history past GASDESK_INTERNAL_CHAT_RETENTION_DAYS (messages and their sealed files).
    register_periodic("internal_chat.retention", ICHAT_RETENTION_EVERY_S, purge_internal_chat)
    # Reports: committed events become facts off the request path; the roll-up sums touched hours.
    analytics_ingest.subscribe()
    register_job(analytics_ingest.JOB, analytics_ingest.retry_job, timeout_s=120)
    register_periodic("analytics.rollup", ROLLUP_EVERY_S, analytics_rollup)
    # 质检: every closed conversation and ended call with people involved is scored once (idempotent).
    register_periodic("quality.score_closed", QUALITY_SCAN_EVERY_S, score_closed_contacts)
    register_periodic("reports.scheduled", SCHEDULE_EVERY_S, make_scheduled_reports)
    on_ticket_resolved(schedule_followup)
    # Residents hear of their tickets and appointments on WeChat/SMS (gasdesk/outbound/notices.py).
    on_ticket_created(notify_ticket_created)
    on_ticket_transition(notify_ticket_progress)
    on_appointment_booked(notify_appointment_booked)
    # 回访 where the ticket came from: WeChat, SMS, and by SMS for hotline callers; a "4" answers it.
    SURVEY_CHANNELS.setdefault("wechat", RemoteSurvey("wechat"))
    SURVEY_CHANNELS.setdefault("sms", RemoteSurvey("sms"))
    SURVEY_CHANNELS.setdefault("voice", RemoteSurvey("sms"))
    intercept_inbound(answer_by_digit)
    on_reply_to_remote_resident(queue_chat_reply)
    # Smart tags: strangers' numbers marked when they first write or call; rules run after a close (job).
    on_conversation_started(mark_stranger)
    on_conversation_closed(queue_rules)
    register_job(TAGS_JOB, apply_rules_job)
    # Video assist: a closed conversation's video ends with it; the scan ends transferred, unanswered, stale ones.
    on_conversation_closed(end_with_conversation)
    register_periodic("video.stale_scan", VIDEO_SCAN_EVERY_S, end_stale_sessions)
    register_sender("wechat", send_wechat)
    register_sender("sms", send_sms)
    intercept_inbound(sms_opt_out)
    # Outage notices to every affected customer, at the configured per-channel rate (gasdesk/broadcasts).
    register_job(BROADCAST_JOB, drain_broadcasts, timeout_s=120)
    register_periodic("broadcasts.kick", 60, kick_drain)
    # Emergency escalation: the next step of every event whose acknowledgement time ran out (durable, CAS).
    register_periodic("emergency.escalate", EMERGENCY_SCAN_EVERY_S, emergency_advance_due)
    intercept_inbound(sms_acknowledge)  # staff alerted by SMS reply "QR" to acknowledge
    register_phone_alerter(queue_phone_alert)  # queued here, placed by the hotline process (emergency/phone.py)
    intercept_inbound(answer_callback_keyword)  # 回拨 while queued at peak hours (gasdesk/callbacks)


async def run_worker(poll_s: float = 5.0, stop: asyncio.Event | None = None) -> None:
    """Register the handlers, then run jobs and periodic tasks until ``stop`` is set."""
    register_handlers()
    await worker_loop(poll_s=poll_s, stop=stop)
