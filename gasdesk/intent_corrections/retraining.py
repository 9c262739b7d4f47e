"""``gasdesk bot retrain``: a candidate model from the shipped data plus the approved corrections, compared with
the deployed model on every held-out set, deployed only when ``retrain.compare`` accepts it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.bot.nlu import model_store, retrain
from gasdesk.bot.nlu.classifier import get_classifier, load_examples
from gasdesk.intent_corrections.service import TrainingExample, approved_examples, do_record_deployment


@dataclass(frozen=True)
class RetrainOutcome:
    verdict: retrain.Verdict
    examples: list[TrainingExample]  # the approved corrections trained on
    deployment: model_store.Deployment | None  # None: refused, or a dry run


async def retrain_model(
    session: AsyncSession, actor: Actor, *, sets: Sequence[Path], dry_run: bool = False
) -> RetrainOutcome:
    """Train, compare on ``sets`` and, when the candidate passes and this is no dry run, deploy it and write the
    audit row in ``session``'s transaction. The deployed model is left alone otherwise. Training and scoring run
    in a thread (seconds of CPU)."""
    if not sets:
        raise ValueError("no held-out sets to compare on")
    examples = await approved_examples(session)
    candidate = await asyncio.to_thread(retrain.train_candidate, [(e.text, e.intent) for e in examples])
    current = await asyncio.to_thread(get_classifier)
    verdict = await asyncio.to_thread(retrain.compare, candidate, current, sets)
    if not verdict.acceptable or dry_run:
        return RetrainOutcome(verdict, examples, None)
    deployment = model_store.deploy(
        candidate,
        fingerprint=retrain.current_fingerprint(),
        corrections=len(examples),
        training_examples=len(load_examples()[0]) + len(examples),
        figures=verdict.figures(),
    )
    do_record_deployment(session, actor, deployment, examples)
    return RetrainOutcome(verdict, examples, deployment)


async def export_approved(session: AsyncSession, out: IO[str]) -> int:
    """Write the approved corrections as JSON lines ``{"text", "intent", "correction_id"}`` (the masked text in
    its training form: no phone or 户号 in it); returns how many."""
    examples = await approved_examples(session)
    for e in examples:
        out.write(
            json.dumps(
                {"text": e.text, "intent": e.intent, "correction_id": e.correction_id}, ensure_ascii=False
            )
            + "\n"
        )
    return len(examples)
