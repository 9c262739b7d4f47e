"""The call row's figures: hold time from the held/unheld events, talk time, queue wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gasdesk import clock
from gasdesk.conversations.models import Conversation
from gasdesk.db import commit
from gasdesk.telephony.media import CallInfo
from gasdesk.telephony.models import CallState
from gasdesk.telephony.service import do_end_call, do_note_hold, do_start_call, set_state

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


async def test_queue_wait_talk_and_hold_times(session) -> None:
    clock.set_now(T0)
    call = await do_start_call(session, CallInfo(call_ref="rec-1", caller="02488886666", callee="96777",
                                                 backend="freeswitch"), script_version=None)
    assert call.caller == "02488886666" and call.customer_id is None  # a landline not on file: a stranger
    set_state(call, CallState.ivr)
    clock.set_now(T0 + timedelta(seconds=20))
    set_state(call, CallState.queued)
    clock.set_now(T0 + timedelta(seconds=50))
    set_state(call, CallState.talking)
    clock.set_now(T0 + timedelta(seconds=60))
    await do_note_hold(session, call, True)
    clock.set_now(T0 + timedelta(seconds=75))
    await do_note_hold(session, call, False)
    clock.set_now(T0 + timedelta(seconds=90))
    await do_note_hold(session, call, True)  # still on hold when the caller hangs up
    clock.set_now(T0 + timedelta(seconds=100))
    await do_end_call(session, call, by="caller", cause="NORMAL_CLEARING")
    await commit(session)
    assert (call.queue_wait_s, call.talk_s, call.hold_s) == (30, 50, 25)
    assert (call.state, call.hangup_by) == ("ended", "caller")
    # finalising twice changes nothing (a back-end may report the hang-up after we hung up)
    await do_end_call(session, call, by="system", cause="late")
    assert call.hangup_by == "caller"


async def test_a_withheld_number_is_a_stranger_of_its_own(session) -> None:
    first = await do_start_call(session, CallInfo(call_ref="rec-2", caller="anonymous", callee="96777", backend="sip"),
                                script_version=None)
    second = await do_start_call(session, CallInfo(call_ref="rec-3", caller="", callee="96777", backend="sip"),
                                 script_version=None)
    await commit(session)
    assert first.caller is None and first.caller_index is None and first.customer_id is None
    a = await session.get(Conversation, first.conversation_id)
    b = await session.get(Conversation, second.conversation_id)
    assert a.visitor_id != b.visitor_id and a.visitor_id.startswith("voice:anonymous:")
