"""One call, start to finish, whatever back-end carries it: ``handle_call`` is what the embedded SIP agent and
the FreeSWITCH driver call for each new call.

Ringing → the caller's customer and a ``voice`` conversation → the IVR script (``ivr/engine.py``) → the same
ACD queue as chats (emergencies first) → bridged to the agent the ACD chose, recorded → finalised, whoever
hangs up at whatever point. Each step is its own short transaction: no database connection is held while
the caller listens. Beyond ``telephony_max_concurrent_calls`` callers hear the overflow prompt and the call
ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.appointments.service import progress_for
from gasdesk.auth.models import User
from gasdesk.bot.base import BotReply
from gasdesk.bot.nlu.engine import understand
from gasdesk.bot.nlu.intents import GAS_LEAK
from gasdesk.bot.nlu.safety import is_gas_leak
from gasdesk.branches.service import access_branch
from gasdesk.callbacks.service import do_request_callback
from gasdesk.config import get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation, ConversationState, SenderType
from gasdesk.customers.billing import billing_system_for
from gasdesk.customers.contacts import find_contact
from gasdesk.customers.identity import verify_account_holder
from gasdesk.customers.models import Address, ContactKind, Customer
from gasdesk.customers.validation import MOBILE_RE
from gasdesk.db import transaction
from gasdesk.errors import GasdeskError, InvalidInput, NotFound, RateLimited
from gasdesk.hours.service import holiday_notice, opening_state
from gasdesk.outages.service import describe, notices_for_customer, outages_affecting
from gasdesk.outbound.models import OutboundStatus, Purpose
from gasdesk.outbound.notices import sms_params
from gasdesk.outbound.service import do_queue_outbound
from gasdesk.routing import service as acd
from gasdesk.routing.handoff import decide_handoff
from gasdesk.routing.models import Presence, SkillGroup
from gasdesk.security import limits
from gasdesk.security.pii import redact_pii
from gasdesk.telephony import service
from gasdesk.telephony.asr import AsrUnavailable, DtmfOnlyRecognizer, Recognizer
from gasdesk.telephony.ivr.engine import CallActions, IdentifyResult, PromptRenderer, run_script
from gasdesk.telephony.ivr.script import SCRIPT_PROMPTS, Script, prompt_key
from gasdesk.telephony.media import AgentDidNotAnswer, BridgeTarget, CallHungUp, MediaSession, RecordingInfo
from gasdesk.telephony.models import Call, CallEventKind, CallState, HangupBy, IvrNodeVisit, VisitOutcome
from gasdesk.tickets.emergency import do_report_gas_leak

__all__ = ["PromptRenderer", "active_call_count", "handle_call"]

log = logging.getLogger(__name__)

EMERGENCY_GROUP = "gas"
SMS_SERVICE_NAME = "燃气业务在线自助办理"
# Said before the menu to a caller whose address an outage notice covers.
AREA_NOTICE_INTRO = "您好，您所在区域有停气停暖通知："
# Calls this process carries now (the capacity setting is per process: each back-end process answers its own).
_ACTIVE: set[str] = set()

EndpointFor = Callable[[int], str]


def default_endpoint(agent_id: int) -> str:
    """The agent's softphone as the back-ends name it unless told otherwise."""
    return f"agent:{agent_id}"


def active_call_count() -> int:
    """Calls in progress in this process."""
    return len(_ACTIVE)


async def handle_call(media: MediaSession, *, prompts: PromptRenderer,
                      endpoint_for: EndpointFor = default_endpoint, recognizer: Recognizer | None = None) -> None:
    """Carry one call from ringing to its records. Never raises for what the caller or the network does (a
    hang-up anywhere, a flood beyond capacity); ``asyncio.CancelledError`` is re-raised after the records are
    finalised. ``recognizer`` turns the caller's speech into text for the script's speech menus (default:
    none, keys only)."""
    key = f"{media.info.backend}:{media.info.call_ref}"
    if len(_ACTIVE) >= get_settings().telephony_max_concurrent_calls or key in _ACTIVE:
        await _refuse(media, prompts)
        return
    _ACTIVE.add(key)
    try:
        await _run(media, prompts, endpoint_for, recognizer or DtmfOnlyRecognizer())
    finally:
        _ACTIVE.discard(key)


async def _refuse(media: MediaSession, prompts: PromptRenderer) -> None:
    try:
        async with transaction() as session:
            overflow = service.script_of(await service.active_ivr_script(session)).prompts.overflow
        await media.answer()
        await media.play(await prompts.render(overflow, key=prompt_key(SCRIPT_PROMPTS, "overflow")), barge_in=False)
        await media.hangup("USER_BUSY")
    except CallHungUp:
        pass
    except Exception:  # noqa: BLE001 - a refused call must not take the back-end down
        log.exception("overflow prompt failed")
        with contextlib.suppress(Exception):
            await media.hangup("USER_BUSY")
    try:
        async with transaction() as session:
            await service.do_refuse_call(session, media.info, cause="over_capacity")
    except Exception:  # noqa: BLE001 - e.g. the database itself is overloaded: the caller is gone either way
        log.exception("could not record a refused call")


async def _run(media: MediaSession, prompts: PromptRenderer, endpoint_for: EndpointFor,
               recognizer: Recognizer) -> None:
    try:
        async with transaction() as session:
            row = await service.active_ivr_script(session)
            script, version = service.script_of(row), row.version
            call = await service.do_start_call(session, media.info, script_version=version)
    except Exception:  # noqa: BLE001 - e.g. the database is down: the call cannot be served or recorded
        log.exception("could not start a call")
        with contextlib.suppress(Exception):
            await media.hangup("NORMAL_TEMPORARY_FAILURE")
        return
    live = LiveCall(call.id, call.conversation_id, version, media, recognizer)
    by, cause = HangupBy.system.value, "NORMAL_CLEARING"
    cancelled = False
    try:
        await media.answer()
        await live.answered()
        notices = await live.area_notices()
        if notices:  # the caller's own outage first: most callers during one need nothing more
            await media.play(await prompts.render(AREA_NOTICE_INTRO + "；".join(notices[:3]) + "。"), barge_in=True)
        outcome = await run_script(script, media, prompts, live)
        if outcome.kind == "queued":
            by, cause = await _connect(live, script, prompts, endpoint_for)
        else:
            await media.hangup()
            by, cause = HangupBy.system.value, "ivr_done"
    except CallHungUp as exc:
        by, cause = exc.by, exc.cause
    except asyncio.CancelledError:
        by, cause, cancelled = HangupBy.system.value, "cancelled", True
    except Exception:  # noqa: BLE001 - the records must still be finalised; no call data in the log
        log.exception("call %s failed", call.id)
        by, cause = HangupBy.system.value, "error"
        with contextlib.suppress(Exception):
            await media.hangup("NORMAL_TEMPORARY_FAILURE")
    try:
        await live.finish(by, cause)
    except Exception:  # noqa: BLE001
        log.exception("could not finalise call %s", call.id)
    if cancelled:
        raise asyncio.CancelledError


async def _connect(live: LiveCall, script: Script, prompts: PromptRenderer,
                   endpoint_for: EndpointFor) -> tuple[str, str]:
    """Wait in the queue (the wait prompt repeating), bridge to the assigned agent, record, and wait for the
    end. Returns (who hung up, cause)."""
    settings = get_settings()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.telephony_queue_wait_limit_s
    media = live.media
    on_hold = False
    while True:
        agent_id = await _wait_for_agent(live, script, prompts, deadline) if loop.time() < deadline else None
        if agent_id is None:
            await live.note(CallEventKind.queued, "排队等待超时，来电已结束", timeout=True)
            await media.play(await prompts.render(script.prompts.queue_timeout,
                                                   key=prompt_key(SCRIPT_PROMPTS, "queue_timeout")), barge_in=False)
            await media.hangup()
            return HangupBy.system.value, "queue_timeout"
        try:
            await asyncio.wait_for(media.bridge(BridgeTarget(agent_id, endpoint_for(agent_id))),
                                   timeout=settings.telephony_agent_answer_timeout_s)
        except (TimeoutError, AgentDidNotAnswer):
            await live.agent_missed(agent_id)
            continue
        if on_hold:
            await media.hold(False)
            on_hold = False
        await live.connected(agent_id)
        if not live.recording:  # one recording for the whole call, across transfers
            await live.start_recording()
        by = await _talk(live, agent_id)
        if by is None:  # transferred: the caller holds while the next agent is found and rings
            await media.hold(True)
            on_hold = True
            await live.note(CallEventKind.transferred, agent_id=agent_id, reason="agent")
            deadline = loop.time() + settings.telephony_queue_wait_limit_s
            continue
        await live.stop_recording()
        return by, "NORMAL_CLEARING"


async def _talk(live: LiveCall, agent_id: int) -> str | None:
    """Wait for the end of the call while connected to ``agent_id``: who hung up, or None once the agent
    transferred the conversation (to a colleague or back into a group's queue). An agent who closes the
    conversation ends the call."""
    media = live.media
    poll = max(get_settings().telephony_queue_poll_s, 0.2)
    ended = asyncio.ensure_future(media.wait_hangup())
    try:
        while True:
            done, _ = await asyncio.wait({ended}, timeout=poll)
            if done:
                return ended.result()
            state, now_agent = await live.conversation_state()
            if state == ConversationState.closed.value:
                await media.hangup()
                return HangupBy.agent.value
            if state != ConversationState.assigned.value or now_agent != agent_id:
                return None
    finally:
        ended.cancel()


async def _wait_for_agent(live: LiveCall, script: Script, prompts: PromptRenderer, deadline: float) -> int | None:
    """The agent the ACD assigned the call to, or None when the wait limit passed or the conversation was
    closed. The wait prompt repeats meanwhile; a hang-up raises ``CallHungUp``."""
    loop = asyncio.get_running_loop()
    poll = get_settings().telephony_queue_poll_s
    wait_prompt = await prompts.render(script.prompts.wait, key=prompt_key(SCRIPT_PROMPTS, "wait"))
    playing: asyncio.Task[str] | None = None
    try:
        while True:
            if playing is not None and playing.done():
                playing.result()  # raises CallHungUp
                playing = None
            state, agent_id = await live.conversation_state()
            if state == ConversationState.assigned.value and agent_id is not None:
                return agent_id
            if state == ConversationState.closed.value or loop.time() >= deadline:
                return None
            if playing is None:
                playing = asyncio.create_task(live.media.play(wait_prompt, barge_in=False))
            await asyncio.wait({playing}, timeout=max(0.01, min(poll, deadline - loop.time())))
    finally:
        if playing is not None and not playing.done():
            playing.cancel()
            with contextlib.suppress(asyncio.CancelledError, CallHungUp):
                await playing


class LiveCall(CallActions):
    """The controller's side of one call: the engine's ``CallActions``, each a short transaction."""

    def __init__(self, call_id: int, conversation_id: int | None, version: int, media: MediaSession,
                 recognizer: Recognizer | None = None) -> None:
        self.call_id, self.conversation_id, self.version, self.media = call_id, conversation_id, version, media
        self.recognizer: Recognizer = recognizer or DtmfOnlyRecognizer()
        self.speech_enabled = self.recognizer.enabled
        self.visit_id: int | None = None
        self.node_id: str | None = None
        self.path: list[str] = []
        self.recording: bool = False

    # ---------------------------------------------------------------- plumbing

    async def _load(self, session: AsyncSession) -> tuple[Call, Conversation]:
        call = await session.get(Call, self.call_id)
        conversation = await session.get(Conversation, self.conversation_id)
        assert call is not None and conversation is not None
        return call, conversation

    async def note(self, kind: CallEventKind, text: str | None = None, **data: Any) -> None:
        """An event of the call and, when ``text`` is given, a system message in its conversation."""
        async with transaction() as session:
            call, conversation = await self._load(session)
            service.add_event(session, call, kind, **data)
            if text:
                await conversations.post_system(session, conversation, text,
                                                payload={"event": f"call_{kind.value}", "call_id": call.id})

    async def answered(self) -> None:
        async with transaction() as session:
            call, _ = await self._load(session)
            service.set_state(call, CallState.ivr)
            service.add_event(session, call, CallEventKind.answered)

    async def conversation_state(self) -> tuple[str, int | None]:
        async with transaction() as session:
            row = (await session.execute(select(Conversation.state, Conversation.agent_id).where(
                Conversation.id == self.conversation_id))).one()
            return row[0], row[1]

    async def finish(self, by: str, cause: str) -> None:
        if self.recording:
            with contextlib.suppress(Exception):
                await self.stop_recording()
        async with transaction() as session:
            call = await session.get(Call, self.call_id)
            assert call is not None
            await service.do_end_call(session, call, by=by, cause=cause)

    # ---------------------------------------------------------------- the engine's actions

    async def enter(self, node_id: str) -> None:
        self.node_id = node_id
        self.path.append(node_id)
        async with transaction() as session:
            call, _ = await self._load(session)
            visit = service.enter_node(session, call, self.version, node_id)
            await session.flush()
            self.visit_id = visit.id

    async def leave(self, outcome: VisitOutcome) -> None:
        if self.visit_id is None:
            return
        async with transaction() as session:
            visit = await session.get(IvrNodeVisit, self.visit_id)
            if visit is not None:
                service.leave_node(visit, outcome)
        self.visit_id = None

    async def dtmf(self, digits: str, *, secret: bool = False) -> None:
        data: dict[str, Any] = {"node": self.node_id}
        data.update({"count": len(digits)} if secret else {"digits": digits[:4]})
        async with transaction() as session:
            service.add_event(session, self.call_id, CallEventKind.dtmf, **data)

    async def report_leak(self) -> None:
        async with transaction() as session:
            call, conversation = await self._load(session)
            customer = await session.get(Customer, conversation.customer_id) if conversation.customer_id else None
            address = await _first_address(session, customer)
            ticket = await do_report_gas_leak(
                session, service.HOTLINE, conversation_id=conversation.id, channel=conversation.channel,
                customer_id=conversation.customer_id, title="燃气泄漏（热线报警）",
                description="热线来电人在语音导航中报告燃气泄漏，请立即回拨并派抢修。",
                contact_phone=call.caller, district=address.district if address else None)
            await conversations.post_system(session, conversation, f"来电人报告燃气泄漏，已生成紧急工单 {ticket.number}",
                                            payload={"event": "call_gas_leak", "ticket_id": ticket.id})
            reply = BotReply(intent="gas_leak", emergency=True, skill_hint=EMERGENCY_GROUP)
            decision = await decide_handoff(session, conversation, "", reply)
            if decision is not None:
                group, priority, reason = decision.group, decision.priority, decision.reason
            else:  # the emergency rule was switched off: a leak still goes first to the gas group
                group, priority, reason = await _group(session, EMERGENCY_GROUP), conversations.EMERGENCY_PRIORITY, \
                    "emergency"
            priority = max(priority, conversations.EMERGENCY_PRIORITY)
            await self._queue(session, call, conversation, group, priority, reason, intent="gas_leak")

    async def _queue(self, session: AsyncSession, call: Call, conversation: Conversation, group: SkillGroup,
                     priority: int, reason: str, intent: str | None = None) -> bool:
        outcome = await conversations.do_handoff(session, conversation, group=group, reason=reason,
                                                 priority=priority,
                                                 summary={"intent": intent, "ivr_path": self.path[-20:]})
        if not outcome.queued:
            service.add_event(session, call, CallEventKind.queued, group=group.code, queued=False,
                              reason=outcome.reason)
            return False
        service.set_state(call, CallState.queued)
        service.add_event(session, call, CallEventKind.queued, group=group.code, priority=priority)
        spot = outcome.spot
        text = f"来电转人工：{group.name}" + (f"，前面还有 {spot.position - 1} 位" if spot else "")
        await conversations.post_system(session, conversation, text, payload={
            "event": "queued", "position": spot.position if spot else None,
            "estimated_wait_s": spot.estimated_wait_s if spot else None})
        return True

    async def outage_texts(self) -> tuple[bool, list[str]]:
        async with transaction() as session:
            _, conversation = await self._load(session)
            customer = await session.get(Customer, conversation.customer_id) if conversation.customer_id else None
            address = await _first_address(session, customer)
            if customer is None or address is None or not address.district:
                return False, [describe(o) for o in await outages_affecting(session, district=None)]
            # The caller's homes down to the building, and the 户号 lists staff imported for a notice.
            return True, [describe(o) for o in await notices_for_customer(session, customer.id)]

    async def area_notices(self) -> list[str]:
        """The notices in force for a known caller's address, announced before the menu (none when the caller
        is not known: the menu's 停气停暖 option reads them all)."""
        async with transaction() as session:
            _, conversation = await self._load(session)
            if conversation.customer_id is None:
                return []
            return [describe(o) for o in await notices_for_customer(session, conversation.customer_id)]

    async def has_customer(self) -> bool:
        async with transaction() as session:
            return await session.scalar(select(Conversation.customer_id).where(
                Conversation.id == self.conversation_id)) is not None

    async def identify(self, account_no: str, last4: str) -> IdentifyResult:
        async with transaction() as session:
            call, conversation = await self._load(session)
            # A call has no IP address: its per-source limit counts the calling line instead of one shared
            # "unknown" that every caller's mistakes would lock.
            source = limits.client_ip.set(f"voice:{(call.caller_index or conversation.visitor_id or '')[:40]}")
            try:
                customer = await verify_account_holder(session, account_no, last4,
                                                       visitor_id=conversation.visitor_id or "")
            except RateLimited:
                return "locked"
            except InvalidInput:  # a mismatch (the lock-out counters and alert are kept: this commits)
                return "failed"
            finally:
                limits.client_ip.reset(source)
            await conversations.do_link_customer(session, service.HOTLINE, conversation, customer,
                                                 how="resident_identity")
            call.customer_id = customer.id
            await conversations.post_system(session, conversation, "来电人已通过户号和手机号后四位核实身份",
                                            payload={"event": "call_identified", "call_id": call.id})
            return "ok"

    async def balance_text(self) -> str:
        async with transaction() as session:
            customer = await self._customer(session)
            if customer is None or not customer.accounts:
                return "没有查到您名下的户号，请转人工服务核实。"
            billing = billing_system_for(session)
            lines = []
            for account in customer.accounts[:3]:
                tail = account.account_no[-4:]
                try:
                    info = await billing.summary(account.account_no)
                except GasdeskError as exc:
                    lines.append(f"户号尾号{tail}：{exc.message}")
                    continue
                line = f"户号尾号{tail}，账户余额{info.balance}元"
                if info.arrears > 0:
                    line += f"，欠费{info.arrears}元，请尽快缴纳，避免停气"
                lines.append(line)
            return "；".join(lines) + "。"

    async def progress_texts(self) -> list[str]:
        async with transaction() as session:
            customer = await self._customer(session)
            if customer is None or not customer.accounts:
                return []
            items = await progress_for(session, account_no=customer.accounts[0].account_no)
            texts = []
            for item in items[:3]:
                text = f"工单{item['ticket_number']}，{item['type_label']}，{item['status_label']}"
                if item.get("slot") and item.get("appointment_status") != "cancelled":
                    text += f"，上门时间{item['slot']}"
                texts.append(text)
            return texts

    async def _customer(self, session: AsyncSession) -> Customer | None:
        _, conversation = await self._load(session)
        customer = await session.get(Customer, conversation.customer_id) if conversation.customer_id else None
        if customer is not None:
            await session.refresh(customer, ["accounts", "phones"])
        return customer

    async def send_sms_link(self) -> bool:
        link = get_settings().guidance_url
        async with transaction() as session:
            call, conversation = await self._load(session)
            if not link or not call.caller or not MOBILE_RE.match(call.caller):
                return False
            params = sms_params(Purpose.guidance, {"service": SMS_SERVICE_NAME, "link": link,
                                                   "hotline": get_settings().service_hotline})
            if params is None:
                return False
            contact = await find_contact(session, ContactKind.sms, call.caller)
            row = await do_queue_outbound(
                session, channel="sms", purpose=Purpose.guidance, method="sms", recipient=call.caller,
                contact=contact, customer_id=conversation.customer_id, conversation_id=conversation.id,
                template_key=Purpose.guidance.value, params=params, dedupe_key=f"ivr_sms_link:{call.id}",
                actor=service.HOTLINE)
            sent = row.status != OutboundStatus.skipped.value
            if sent:
                await conversations.post_system(session, conversation, "已向来电号码发送自助办理短信链接",
                                                payload={"event": "call_sms_link", "outbound_id": row.id})
            return sent

    async def hours_open(self, group: str, branch_id: int | None) -> bool:
        async with transaction() as session:
            is_open = True
            if group:
                found = await session.scalar(select(SkillGroup).where(SkillGroup.code == group))
                is_open = found is not None and (await opening_state(session, found)).is_open
            if branch_id is not None:
                try:
                    branch = await access_branch(session, branch_id)
                except NotFound:
                    return False
                is_open = is_open and (await opening_state(session, branch)).is_open
            return is_open

    async def expected_wait(self, group: str) -> tuple[int, int] | None:
        async with transaction() as session:
            _, conversation = await self._load(session)
            target = await self._target_group(session, conversation, group)
            if target is None:
                return None
            found, _ = target
            # Callers ahead of this one, served one call per agent (chats wait for other slots).
            spot = await acd.expected_wait(session, found.id, conversation.channel)
            return spot.waiting, spot.estimated_wait_s

    async def _target_group(self, session: AsyncSession, conversation: Conversation,
                            group: str) -> tuple[SkillGroup, int] | None:
        """The group a 转人工 goes to: the node's, else the hand-off rules' (as a chat's 转人工 button)."""
        if group:
            found = await session.scalar(select(SkillGroup).where(SkillGroup.code == group))
            if found is not None:
                return found, 0
        decision = await decide_handoff(session, conversation, "", None, requested=True)
        if decision is not None:
            return decision.group, decision.priority
        return None

    async def hand_off(self, group: str) -> bool:
        async with transaction() as session:
            call, conversation = await self._load(session)
            target = await self._target_group(session, conversation, group)
            if target is None:
                return False
            return await self._queue(session, call, conversation, target[0], target[1], "request")

    async def request_callback(self, group: str) -> int | None:
        async with transaction() as session:
            call, conversation = await self._load(session)
            if not call.caller or not MOBILE_RE.match(call.caller):
                return None
            if conversation.state == ConversationState.bot.value:
                target = await self._target_group(session, conversation, group)
                if target is None or not await self._queue(session, call, conversation, target[0], target[1],
                                                           "request"):
                    return None
            if conversation.state != ConversationState.queued.value:
                return None
            booked = await do_request_callback(session, service.HOTLINE, conversation, call.caller)
            service.add_event(session, call, CallEventKind.queued, callback_id=booked.callback.id)
            return booked.spot.position - 1 if booked.spot else 0

    async def holiday_notice(self) -> str | None:
        async with transaction() as session:
            notice = await holiday_notice(session)
            return notice.text if notice else None

    async def recognize(self, pcm: bytes) -> tuple[str, float] | None:
        """Transcribe, then the bot's understanding (the gas-leak rules first, on the text as recognised).
        The call's events get the intent and confidence only; the conversation gets the text with phone, ID
        and account numbers redacted, as the caller's message (agents see what was said)."""
        audio_s = round(len(pcm) / 16000, 2)
        try:
            text = await self.recognizer.transcribe(pcm, sample_rate=8000)
        except AsrUnavailable as exc:
            log.warning("speech recognition failed on call %s (%s)", self.call_id, exc.code)
            async with transaction() as session:
                service.add_event(session, self.call_id, CallEventKind.speech, node=self.node_id, error=exc.code,
                                  audio_s=audio_s)
            return None
        if not text:
            intent, confidence = "", 0.0
        elif is_gas_leak(text):
            intent, confidence = GAS_LEAK, 1.0
        else:
            understood = await asyncio.to_thread(understand, text)  # CPU-bound: off the event loop
            intent, confidence = understood.intent, understood.confidence
        async with transaction() as session:
            call, conversation = await self._load(session)
            service.add_event(session, call, CallEventKind.speech, node=self.node_id, intent=intent or None,
                              confidence=round(confidence, 3), audio_s=audio_s)
            if text:
                await conversations.do_post_message(
                    session, conversation, SenderType.resident, text=redact_pii(text)[:conversations.MAX_TEXT],
                    payload={"source": "speech", "intent": intent, "confidence": round(confidence, 3)})
        return intent, confidence

    # ---------------------------------------------------------------- with an agent

    async def agent_missed(self, agent_id: int) -> None:
        """The assigned agent's phone rang out: back into the group's queue (another agent first)."""
        async with transaction() as session:
            call, conversation = await self._load(session)
            agent = await session.get(User, agent_id)
            service.add_event(session, call, CallEventKind.transferred, agent_id=agent_id, reason="no_answer")
            if agent is not None:
                # Redirect on no answer: the agent is set away so the ACD offers the call (and the next ones)
                # to someone else until they are back (their console shows it).
                await acd.do_set_presence(session, agent, Presence.away.value)
            if agent is not None and conversation.state == ConversationState.assigned.value and \
                    conversation.skill_group_id is not None:
                await conversations.do_transfer(session, agent, conversation, to_group_id=conversation.skill_group_id,
                                                note="坐席未接听，重新排队")

    async def connected(self, agent_id: int) -> None:
        async with transaction() as session:
            call, conversation = await self._load(session)
            agent = await session.get(User, agent_id)
            service.mark_bridged(session, call, agent_id)
            if agent is not None and conversation.accepted_at is None:
                await conversations.do_accept(session, agent, conversation)  # answering the phone accepts it

    async def start_recording(self) -> None:
        async with transaction() as session:
            call, _ = await self._load(session)
            path = service.recording_path(call)
        await self.media.start_recording(path)
        self.recording = True
        async with transaction() as session:
            service.add_event(session, self.call_id, CallEventKind.recording_started)

    async def stop_recording(self) -> None:
        self.recording = False
        try:
            info: RecordingInfo | None = await self.media.stop_recording()
        except CallHungUp:
            info = None
        if info is None:
            return
        async with transaction() as session:
            call, _ = await self._load(session)
            await service.do_store_recording(session, call, info)


async def _first_address(session: AsyncSession, customer: Customer | None) -> Address | None:
    if customer is None:
        return None
    return await session.scalar(select(Address).where(Address.customer_id == customer.id).order_by(Address.id).limit(1))


async def _group(session: AsyncSession, code: str) -> SkillGroup:
    found = await session.scalar(select(SkillGroup).where(SkillGroup.code == code))
    return found if found is not None else await acd.default_group(session)
