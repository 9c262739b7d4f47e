"""Flows beyond booking and balance, registered by the dispatcher (``gasdesk.bot.nlu_bot``) by intent."""

from __future__ import annotations

from gasdesk.bot.dialogue.branch import BranchFlow
from gasdesk.bot.dialogue.feedback import ComplaintFlow, PraiseFlow
from gasdesk.bot.dialogue.flow import Flow
from gasdesk.bot.dialogue.meter import MeterGuidanceFlow
from gasdesk.bot.dialogue.outage import OutageQueryFlow
from gasdesk.bot.dialogue.progress import ProgressFlow
from gasdesk.bot.dialogue.reschedule import ChangeAppointmentFlow
from gasdesk.bot.dialogue.selfcheck import HeatingFlow, NoGasFlow

FLOWS: list[type[Flow]] = [
    ProgressFlow, ChangeAppointmentFlow, BranchFlow, MeterGuidanceFlow, NoGasFlow, HeatingFlow, ComplaintFlow,
    PraiseFlow, OutageQueryFlow,
]
