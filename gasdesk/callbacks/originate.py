"""回拨 placed by gasdesk: when this process runs the hotline with an outbound route (``telephony/originate.py
outbound()``), the console's 回拨 calls the resident and, once they answer, bridges them to the agent — the
browser softphone in the one-process embedded mode (the same ``call.offered`` ring as an inbound call), the
agent's FreeSWITCH endpoint (``freeswitch_agent_dial``) in production. Without a route the agent dials from
their own phone (``service.do_dial_callback`` reveals the number), as before.

The call runs in a task of its own, outside any transaction; each record is a short transaction: a system
message in the conversation when the resident does not answer (busy, no answer…), the ``Call`` row
(``do_start_outbound_call``) when they do, ``do_end_call`` at the end. The agent records the outcome
(reached / no answer / cancelled) as for a call they dialled themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gasdesk.callbacks.models import CallbackRequest
from gasdesk.config import get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation
from gasdesk.db import transaction
from gasdesk.telephony import service as telephony
from gasdesk.telephony.controller import default_endpoint
from gasdesk.telephony.freeswitch.session import BridgeFailed
from gasdesk.telephony.media import AgentDidNotAnswer, BridgeTarget, CallHungUp
from gasdesk.telephony.models import Call, HangupBy
from gasdesk.telephony.originate import OUTCOME_LABELS, OutboundCalls
from gasdesk.telephony.runtime import freeswitch_endpoint_for
from gasdesk.telephony.sip.session import BridgeUnavailable

log = logging.getLogger(__name__)

_running: set[asyncio.Task[str]] = set()


def agent_endpoint(calls: OutboundCalls, agent_id: int) -> str:
    """Where the resident is bridged to: the agent's FreeSWITCH dial string, or their browser softphone."""
    if calls.backend == "freeswitch":
        return freeswitch_endpoint_for(get_settings())(agent_id)
    return default_endpoint(agent_id)


async def _note(conversation_id: int, text: str, **payload: object) -> None:
    async with transaction() as session:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is not None:
            await conversations.post_system(session, conversation, text, payload={"event": "callback_call", **payload})


async def place_callback(calls: OutboundCalls, *, callback_id: int, agent_id: int) -> str:
    """Call the resident of ``callback_id`` and bridge them to ``agent_id``. Returns how it went: an
    :class:`Outcome` value when nobody answered, else ``talked`` / ``agent_missed`` / ``hung_up``."""
    async with transaction() as session:
        row = await session.get(CallbackRequest, callback_id)
        if row is None:
            return "gone"
        number, conversation_id = row.phone, row.conversation_id
    result = await calls.originate(number)
    if not result.answered or result.session is None:
        await _note(conversation_id, f"自动回拨未接通（{OUTCOME_LABELS.get(result.outcome, result.outcome.value)}），"
                    "请记录结果或稍后再拨。", callback_id=callback_id, outcome=result.outcome.value)
        return result.outcome.value
    media = result.session
    async with transaction() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        call = await telephony.do_start_outbound_call(session, media.info, conversation, number)
        call_id = call.id
    by, cause, outcome = HangupBy.system.value, "NORMAL_CLEARING", "talked"
    try:
        await asyncio.wait_for(media.bridge(BridgeTarget(agent_id, agent_endpoint(calls, agent_id))),
                               timeout=get_settings().telephony_agent_answer_timeout_s)
        async with transaction() as session:
            talking = await session.get(Call, call_id)
            assert talking is not None
            telephony.mark_bridged(session, talking, agent_id)
        by = await media.wait_hangup()
    except (TimeoutError, AgentDidNotAnswer, BridgeFailed, BridgeUnavailable):
        by, cause, outcome = HangupBy.system.value, "agent_not_answered", "agent_missed"
    except CallHungUp as exc:
        by, cause, outcome = exc.by, exc.cause, "hung_up"
    finally:
        with contextlib.suppress(Exception):
            await media.hangup()
    async with transaction() as session:
        ended = await session.get(Call, call_id)
        assert ended is not None
        await telephony.do_end_call(session, ended, by=by if by in ("caller", "agent") else HangupBy.system.value,
                                    cause=cause)
    return outcome


def start_callback_call(calls: OutboundCalls, *, callback_id: int, agent_id: int) -> asyncio.Task[str]:
    """Run :func:`place_callback` in the background (the 回拨 request returns at once)."""
    task = asyncio.get_running_loop().create_task(place_callback(calls, callback_id=callback_id, agent_id=agent_id))
    _running.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Task[str]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("callback call failed", exc_info=task.exception())
