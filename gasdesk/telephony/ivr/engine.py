"""Runs an IVR script against one call: plays prompts and collects digits through the ``MediaSession``, and
asks :class:`CallActions` (the controller: records and the domains' ``do_*``) for everything else.

The engine holds no database session and knows no back-end: the same script gives the same sequence of
media operations on the embedded SIP agent and on FreeSWITCH. A hang-up is ``CallHungUp`` raised by the media
session; the engine lets it through and the controller finalises the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from gasdesk.bot.nlu.intents import GAS_LEAK
from gasdesk.callbacks.peak import peak
from gasdesk.telephony.ivr.script import (
    BalanceNode,
    EmergencyNode,
    HangupNode,
    HoursNode,
    IdentifyNode,
    MenuNode,
    OutageNoticesNode,
    ProgressNode,
    QueueNode,
    SayNode,
    Script,
    SmsLinkNode,
    SpeechMenuNode,
    prompt_key,
)
from gasdesk.telephony.media import MediaSession, Prompt
from gasdesk.telephony.models import VisitOutcome

# A caller who keeps choosing (返回主菜单 again and again) is let go after this many nodes.
MAX_STEPS = 60
ACCOUNT_MAX_DIGITS = 12
LOCKED_PROMPT = "核实尝试过于频繁，请稍后再试，或转人工服务。"
TOO_LONG_PROMPT = "感谢您的来电，再见。"


class PromptRenderer(Protocol):
    """Turns a prompt's text into something to play (the TTS; tests use a silent-WAV double)."""

    async def render(self, text: str, *, key: str | None = None) -> Prompt:
        """An 8 kHz mono 16-bit WAV of ``text`` (cached by the implementation); the recording uploaded for the
        prompt ``key`` instead, when there is one (``ivr.script.prompt_key``)."""


IdentifyResult = Literal["ok", "failed", "locked"]


class CallActions(Protocol):
    """What a node does beyond audio: the controller implements it with the domains' ``do_*``."""

    speech_enabled: bool  # a speech recogniser is configured (else speech menus pass to their fallback)

    async def enter(self, node_id: str) -> None:
        """A node starts (its visit is recorded)."""

    async def leave(self, outcome: VisitOutcome) -> None:
        """The current node ends with ``outcome``."""

    async def dtmf(self, digits: str, *, secret: bool = False) -> None:
        """The caller pressed ``digits`` (a ``secret`` entry, e.g. a 户号, is recorded by its length only)."""

    async def report_leak(self) -> None:
        """Gas leak: the urgent ticket, the alert to everyone on duty, the hand-off at emergency priority."""

    async def outage_texts(self) -> tuple[bool, list[str]]:
        """(whether the caller's area is known, the outage notices that concern it — all of them if unknown)."""

    async def has_customer(self) -> bool:
        """Whether the call has its customer (number on file, or the identity check passed)."""

    async def identify(self, account_no: str, last4: str) -> IdentifyResult:
        """The identity check (户号 + last four digits of the registered phone)."""

    async def balance_text(self) -> str:
        """The identified customer's balance, to be read out."""

    async def progress_texts(self) -> list[str]:
        """The identified customer's open tickets and appointments, to be read out."""

    async def send_sms_link(self) -> bool:
        """Queue the self-service link by SMS to the calling mobile; False if it cannot go."""

    async def hours_open(self, group: str, branch_id: int | None) -> bool:
        """Whether the skill group (and branch, with its holidays) is open now."""

    async def expected_wait(self, group: str) -> tuple[int, int] | None:
        """(callers and chats waiting, expected wait in seconds) of the queue the call would join."""

    async def hand_off(self, group: str) -> bool:
        """Queue the call's conversation for people (the same ACD as chats); False if nobody can take it."""

    async def request_callback(self, group: str) -> int | None:
        """Queue the call's conversation and book a callback to the calling mobile (its place kept after the
        caller hangs up): the number of callers ahead, or None when it cannot be booked."""

    async def holiday_notice(self) -> str | None:
        """The holiday notice callers hear after answering (gasdesk/hours), or None outside its window."""

    async def recognize(self, pcm: bytes) -> tuple[str, float] | None:
        """The caller's answer (8 kHz 16-bit PCM) → text → the bot's (intent, confidence); None when the
        recogniser failed. The text itself is not recorded in clear."""


@dataclass
class Outcome:
    """How the script ended: the call waits in the queue (``queued``) or the script hung up (``hangup``)."""

    kind: Literal["queued", "hangup"]
    emergency: bool = False
    path: list[str] = field(default_factory=list)


def _long_wait(node: QueueNode, wait_s: int) -> bool:
    """The node's own threshold when set, else the peak-hour threshold shared with the chat channels."""
    return wait_s >= node.hint_over_s if node.hint_over_s is not None else peak(wait_s)


class _Fill(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


async def run_script(script: Script, media: MediaSession, prompts: PromptRenderer, actions: CallActions, *,
                     max_steps: int = MAX_STEPS) -> Outcome:
    """Run ``script`` from its start node until the call is queued or the script hangs up."""
    runner = _Runner(script, media, prompts, actions)
    notice = await actions.holiday_notice()
    if notice:  # before the welcome menu; a key pressed to skip it waits in the buffer for the menu
        await media.play(await prompts.render(f"温馨提示：{notice}。"), barge_in=True)
    node_id: str | None = script.start
    while node_id is not None:
        node = script.nodes[node_id]
        if isinstance(node, SpeechMenuNode) and not actions.speech_enabled:
            node_id = node.fallback  # no recogniser: as if the speech menu were not there (no visit, no prompt)
            continue
        if len(runner.path) >= max_steps:
            await media.play(await prompts.render(TOO_LONG_PROMPT), barge_in=False)
            return Outcome("hangup", path=runner.path)
        runner.path.append(node_id)
        runner.node_id = node_id
        await actions.enter(node_id)
        result = await runner.step(node)
        if isinstance(result, Outcome):
            result.path = runner.path
            return result
        node_id = result
    return Outcome("hangup", path=runner.path)  # unreachable for a checked script


class _Runner:
    def __init__(self, script: Script, media: MediaSession, prompts: PromptRenderer, actions: CallActions) -> None:
        self.script, self.media, self.prompts, self.actions = script, media, prompts, actions
        self.path: list[str] = []
        self.node_id = script.start

    async def render(self, text: str, field: str | None) -> Prompt:
        """A prompt of the current node; ``field`` names a fixed prompt (an uploaded recording may replace it),
        None a text built for this call."""
        return await self.prompts.render(text, key=prompt_key(self.node_id, field) if field else None)

    async def say(self, text: str, field: str | None = None, *, barge_in: bool = True) -> str:
        if not text:
            return ""
        return await self.media.play(await self.render(text, field), barge_in=barge_in)

    async def step(self, node: object) -> str | Outcome:
        handler = getattr(self, "_" + type(node).__name__)
        return await handler(node)

    async def _MenuNode(self, node: MenuNode) -> str:  # noqa: N802 - named after the node class
        prompt = await self.render(node.prompt, "prompt")
        outcome = VisitOutcome.timeout
        attempts = node.retries + 1
        for attempt in range(attempts):
            digit = await self.media.collect_digits(prompt, max_digits=1, timeout_s=node.timeout_s, terminators="")
            if digit:
                await self.actions.dtmf(digit)
            if digit in node.options:
                await self.actions.leave(VisitOutcome.digit)
                return node.options[digit]
            outcome = VisitOutcome.invalid if digit else VisitOutcome.timeout
            if digit and attempt < attempts - 1:
                await self.say(node.invalid_prompt, "invalid_prompt")
        await self.actions.leave(outcome)
        return node.on_fail

    async def _SayNode(self, node: SayNode) -> str:  # noqa: N802
        await self.say(node.prompt, "prompt")
        await self.actions.leave(VisitOutcome.next)
        return node.next

    async def _HoursNode(self, node: HoursNode) -> str:  # noqa: N802
        is_open = await self.actions.hours_open(node.group, node.branch_id)
        await self.actions.leave(VisitOutcome.next)
        return node.open if is_open else node.closed

    async def _EmergencyNode(self, node: EmergencyNode) -> Outcome:  # noqa: N802
        # Staff are alerted and the call is first in the queue before the caller hears a word: a caller who
        # hangs up during the instructions has still reported the leak.
        await self.actions.report_leak()
        await self.actions.leave(VisitOutcome.next)
        await self.say(node.prompt, "prompt", barge_in=False)
        return Outcome("queued", emergency=True)

    async def _OutageNoticesNode(self, node: OutageNoticesNode) -> str:  # noqa: N802
        known, texts = await self.actions.outage_texts()
        if texts:
            await self.say((node.intro if known else node.unknown_area_prompt) + "；".join(texts[:5]) + "。")
        else:
            await self.say(node.none_prompt, "none_prompt")
        await self.actions.leave(VisitOutcome.next)
        return node.next

    async def _IdentifyNode(self, node: IdentifyNode) -> str:  # noqa: N802
        if await self.actions.has_customer():
            await self.actions.leave(VisitOutcome.next)
            return node.ok
        outcome = VisitOutcome.timeout
        for _ in range(node.retries + 1):
            account = await self.media.collect_digits(await self.render(node.account_prompt, "account_prompt"),
                                                      max_digits=ACCOUNT_MAX_DIGITS, timeout_s=node.timeout_s)
            if not account:
                outcome = VisitOutcome.timeout
                continue
            await self.actions.dtmf(account, secret=True)
            last4 = await self.media.collect_digits(await self.render(node.last4_prompt, "last4_prompt"), max_digits=4,
                                                    timeout_s=node.timeout_s)
            if not last4:
                outcome = VisitOutcome.timeout
                continue
            await self.actions.dtmf(last4, secret=True)
            result = await self.actions.identify(account, last4)
            if result == "ok":
                await self.actions.leave(VisitOutcome.next)
                return node.ok
            outcome = VisitOutcome.invalid
            if result == "locked":
                await self.say(LOCKED_PROMPT)
                break
            await self.say(node.failed_prompt, "failed_prompt")
        await self.actions.leave(outcome)
        return node.on_fail

    async def _BalanceNode(self, node: BalanceNode) -> str:  # noqa: N802
        if not await self.actions.has_customer():
            await self.actions.leave(VisitOutcome.next)
            return node.unidentified
        await self.say(await self.actions.balance_text())
        await self.actions.leave(VisitOutcome.next)
        return node.next

    async def _ProgressNode(self, node: ProgressNode) -> str:  # noqa: N802
        if not await self.actions.has_customer():
            await self.actions.leave(VisitOutcome.next)
            return node.unidentified
        texts = await self.actions.progress_texts()
        if texts:
            await self.say("您近期的工单和预约：" + "；".join(texts) + "。")
        else:
            await self.say(node.none_prompt, "none_prompt")
        await self.actions.leave(VisitOutcome.next)
        return node.next

    async def _SmsLinkNode(self, node: SmsLinkNode) -> str:  # noqa: N802
        sent = await self.actions.send_sms_link()
        await self.say(*((node.sent_prompt, "sent_prompt") if sent else (node.failed_prompt, "failed_prompt")))
        await self.actions.leave(VisitOutcome.next)
        return node.next

    async def _QueueNode(self, node: QueueNode) -> str | Outcome:  # noqa: N802
        offers = node.hint_prompt and (node.offer_node or node.callback_digit)
        expected = await self.actions.expected_wait(node.group) if offers else None
        if expected is not None and _long_wait(node, expected[1]):
            waiting, wait_s = expected
            text = node.hint_prompt.format_map(_Fill(waiting=waiting, minutes=max(1, round(wait_s / 60))))
            digit = await self.media.collect_digits(await self.render(text, None), max_digits=1,
                                                    timeout_s=node.hint_timeout_s, terminators="")
            if digit:
                await self.actions.dtmf(digit)
            if digit and digit == node.offer_digit and node.offer_node:
                await self.actions.leave(VisitOutcome.digit)
                return node.offer_node
            if digit and digit == node.callback_digit:
                ahead = await self.actions.request_callback(node.group)
                if ahead is not None:  # else (no mobile number, or an agent took the call at once) wait as usual
                    await self.actions.leave(VisitOutcome.digit)
                    await self.say(node.callback_prompt.format_map(_Fill(ahead=ahead)), barge_in=False)
                    return Outcome("hangup")
        await self.say(node.prompt, "prompt", barge_in=False)
        queued = await self.actions.hand_off(node.group)
        await self.actions.leave(VisitOutcome.next)
        return Outcome("queued") if queued else node.unavailable

    async def _SpeechMenuNode(self, node: SpeechMenuNode) -> str:  # noqa: N802
        # Outcomes: digit = an intent chose the way; timeout = nothing said (or a key pressed: it waits in the
        # buffer for the fallback menu); invalid = not understood well enough; next = the recogniser failed.
        pcm = await self.media.listen(await self.render(node.prompt, "prompt"), max_s=node.max_s,
                                      silence_s=node.silence_s)
        if not pcm:
            await self.actions.leave(VisitOutcome.timeout)
            return node.fallback
        heard = await self.actions.recognize(pcm)
        if heard is None:
            await self.actions.leave(VisitOutcome.next)
            return node.fallback
        intent, confidence = heard
        target = node.intents.get(intent)
        if target and (intent == GAS_LEAK or confidence >= node.min_confidence):
            await self.actions.leave(VisitOutcome.digit)
            return target
        await self.actions.leave(VisitOutcome.invalid)
        return node.fallback

    async def _HangupNode(self, node: HangupNode) -> Outcome:  # noqa: N802
        await self.say(node.prompt, "prompt", barge_in=False)
        await self.actions.leave(VisitOutcome.next)
        return Outcome("hangup")
