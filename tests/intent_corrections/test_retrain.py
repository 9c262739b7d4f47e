"""``gasdesk bot retrain``: a candidate from the shipped data plus approved corrections is deployed only when it is
not worse than the deployed model on any held-out set (beyond one line in 200) and finds every gas leak; the
deployed model is a file under the var dir that every process picks up (gasdesk/bot/nlu/model_store.py).

Training a candidate costs seconds of CPU: candidates are trained once per distinct set of corrections for this
module (``_train_once``), and the CLI tests use the same sets as the service tests.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.bot.nlu import classifier, model_store, retrain
from gasdesk.bot.nlu.classifier import IntentClassifier, load_examples
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.db import commit
from gasdesk.intent_corrections import service
from gasdesk.intent_corrections.retraining import retrain_model
from tests.factories import agent_with_conversation, invoke_cli, resident_said, staff_user

CLI = Actor.system("test-retrain", "test")
_TRAINED: dict[tuple[tuple[str, str], ...], IntentClassifier] = {}
_REAL_TRAIN = retrain.train_candidate


def _train_once(extra):  # noqa: ANN001, ANN202 - same signature as retrain.train_candidate
    key = tuple(extra)
    if key not in _TRAINED:
        _TRAINED[key] = _REAL_TRAIN(extra)
    return _TRAINED[key]


@pytest.fixture(autouse=True)
def reuse_trained_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrain, "train_candidate", _train_once)


def _shipped(intent: str, n: int, start: int = 0) -> list[str]:
    texts, labels = load_examples()
    return [t for t, label in zip(texts, labels, strict=True) if label == intent][start : start + n]


# Harmless: what agents would mark, worded as the shipped data words it, with the right intent.
HARMLESS = [(t, "payment_howto") for t in _shipped("payment_howto", 4)] + [
    (t, "no_gas") for t in _shipped("no_gas", 3)
]
# Damaging: every shipped gas-leak text and a share of the no-gas ones "corrected" to a greeting.
DAMAGING = [(t, "greeting") for t in _shipped("gas_leak", 400)] + [
    (t, "greeting") for t in _shipped("no_gas", 200, 3)
]


async def _approve(session, factory, pairs: list[tuple[str, str]]) -> None:
    """Each pair as a resident's message an agent corrects and a supervisor approves (the real do_* path)."""
    agent, conversation = await agent_with_conversation(factory)
    supervisor = await staff_user(session, "supervisor")
    for said, intent in pairs:
        message = await resident_said(
            session,
            conversation,
            said,
            bot_intent="out_of_scope" if intent != "out_of_scope" else "greeting",
            committed=False,
        )
        row = await service.do_correct_intent(session, agent, message, conversation, intent)
        await service.do_review_correction(session, supervisor, row, "approve")
    await commit(session)


def _deployed_files() -> dict[str, bytes]:
    folder = get_settings().var_dir / "nlu"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


async def test_a_harmless_model_is_deployed_and_used_a_damaging_one_refused(session, factory) -> None:
    sets = retrain.heldout_sets()
    assert {p.name for p in sets} >= {"heldout.jsonl", "heldout2.jsonl"}
    shipped = classifier.shipped_classifier()
    assert classifier.get_classifier() is shipped  # nothing deployed yet

    await _approve(session, factory, HARMLESS)
    outcome = await retrain_model(session, CLI, sets=sets)
    await commit(session)
    assert outcome.verdict.acceptable, retrain.format_verdict(outcome.verdict)
    deployment = outcome.deployment
    assert deployment is not None and deployment.corrections == len(HARMLESS)
    meta = json.loads((get_settings().var_dir / "nlu" / "deployed.json").read_text())
    assert meta["fingerprint"] == classifier.model_fingerprint() and meta["corrections"] == len(HARMLESS)
    assert set(meta["figures"]) == {p.name for p in sets}
    assert meta["figures"]["heldout.jsonl"]["candidate"]["leak_recall"] == 1.0
    [entry] = await session.scalars(select(AuditEntry).where(AuditEntry.action == "bot.model_deploy"))
    assert entry.changes["after"]["corrections"] == len(HARMLESS)
    # this process (and every other, within nlu_model_check_s) now answers with the deployed model
    in_use = classifier.get_classifier()
    assert in_use is not shipped
    candidate = _TRAINED[tuple((e.text, e.intent) for e in outcome.examples)]
    assert in_use.predict("燃气费在哪交").ranking == candidate.predict("燃气费在哪交").ranking
    before = _deployed_files()

    await _approve(session, factory, DAMAGING)
    refused = await retrain_model(session, CLI, sets=sets)
    await commit(session)
    assert not refused.verdict.acceptable and refused.deployment is None
    assert any(s.problems for s in refused.verdict.sets)
    assert _deployed_files() == before  # the deployed model and its metadata untouched
    assert (
        len(list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "bot.model_deploy"))))
        == 1
    )


_invoke = invoke_cli


async def test_cli_dry_run_prints_the_comparison_and_deploys_nothing(session, factory) -> None:
    await _approve(session, factory, HARMLESS)
    result = await _invoke("bot", "retrain", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "heldout.jsonl" in result.output and "heldout2.jsonl" in result.output
    assert "--dry-run" in result.output and f"approved corrections: {len(HARMLESS)}" in result.output
    assert _deployed_files() == {}


async def test_cli_refuses_a_worse_model_with_the_figures_and_exit_1(session, factory) -> None:
    await _approve(session, factory, HARMLESS)
    await _approve(session, factory, DAMAGING)
    result = await _invoke("bot", "retrain")
    assert result.exit_code == 1, result.output
    assert "不通过 refused" in result.output and "未部署" in result.output and "%" in result.output
    assert _deployed_files() == {}


async def test_cli_exports_approved_corrections_masked(session, factory, tmp_path: Path) -> None:
    agent, conversation = await agent_with_conversation(factory)
    supervisor = await staff_user(session, "supervisor")
    kept = await resident_said(
        session, conversation, "户号2103345678欠多少钱，回电13812345678", bot_intent="payment_howto"
    )
    dropped = await resident_said(session, conversation, "嗯嗯", bot_intent="praise")
    a = await service.do_correct_intent(session, agent, kept, conversation, "balance_query")
    b = await service.do_correct_intent(session, agent, dropped, conversation, "goodbye")
    await service.do_review_correction(session, supervisor, a, "approve")
    await service.do_review_correction(session, supervisor, b, "reject")
    await commit(session)
    out = tmp_path / "corrections.jsonl"
    result = await _invoke("bot", "corrections", "export", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"text": "户号00000000000欠多少钱，回电00000000000", "intent": "balance_query", "correction_id": a.id}
    ]


# ---------------------------------------------------------------- the gate, on figures


def _set(name: str, deployed: tuple[int, int, int], candidate: tuple[int, int, int],
         total: int = 100) -> retrain.SetComparison:
    def figures(correct: int, leaks: int, found: int) -> retrain.Figures:
        return retrain.Figures(total=total, correct=correct, leak_support=leaks, leak_found=found)

    return retrain.SetComparison(name, figures(*deployed), figures(*candidate))


@pytest.mark.no_database
def test_the_gate_allows_equal_and_refuses_worse_or_a_missed_leak() -> None:
    assert retrain.Verdict([_set("a", (90, 5, 5), (90, 5, 5)), _set("b", (80, 0, 0), (81, 0, 0))]).acceptable
    worse = retrain.Verdict([_set("a", (90, 5, 5), (95, 5, 5)), _set("b", (80, 4, 4), (79, 4, 4))])
    assert not worse.acceptable and worse.sets[1].problems and not worse.sets[0].problems
    missed = retrain.Verdict([_set("a", (90, 5, 4), (92, 5, 4))])  # even if the deployed one misses it too
    assert not missed.acceptable and "gas_leak recall" in missed.sets[0].problems[0]
    assert not retrain.Verdict([]).acceptable  # nothing compared, nothing deployed
    table = retrain.format_verdict(worse)
    assert "80.0% → 79.0%" in table and "不通过 refused" in table


@pytest.mark.no_database
def test_the_gate_allows_one_line_in_200_fewer_right_on_a_set() -> None:
    """Noise, not learning: on a 415-line set 2 lines fewer right pass, 3 do not; a set under 200 lines allows none."""
    assert retrain.Verdict([_set("a", (400, 20, 20), (398, 20, 20), total=415)]).acceptable
    worse = retrain.Verdict([_set("a", (400, 20, 20), (397, 20, 20), total=415)])
    assert not worse.acceptable and "accuracy fell" in worse.sets[0].problems[0]
    assert not retrain.Verdict([_set("a", (190, 5, 5), (189, 5, 5), total=199)]).acceptable
    missed = retrain.Verdict([_set("a", (400, 20, 20), (400, 20, 19), total=415)])
    assert not missed.acceptable  # a missed leak is never noise


@pytest.mark.no_database
def test_new_heldout_sets_join_the_gate_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "tests" / "bot" / "nlu"
    folder.mkdir(parents=True)
    for name in ("heldout.jsonl", "heldout3.jsonl", "train.jsonl"):
        (folder / name).write_text('{"text": "你好", "intent": "greeting"}\n')
    assert [p.name for p in retrain.heldout_sets(tmp_path)] == ["heldout.jsonl", "heldout3.jsonl"]


# ---------------------------------------------------------------- the model store (no training)


@dataclass
class Stub:
    """Stands in for a classifier: model_store only pickles and type-checks it."""

    name: str


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GASDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GASDESK_NLU_MODEL_CHECK_S", "30")
    reset_settings_cache()
    return tmp_path / "var" / "nlu"


def _deploy(name: str, fingerprint: str = "fp-1") -> model_store.Deployment:
    return model_store.deploy(
        Stub(name), fingerprint=fingerprint, corrections=3, training_examples=10, figures={}
    )


def _deploy_elsewhere(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `gasdesk bot retrain` in another process: this process only sees the files change."""
    watch = model_store._watch
    _deploy(name)
    monkeypatch.setattr(model_store, "_watch", watch)


@pytest.mark.no_database
def test_other_processes_notice_a_new_deployment_within_the_check_interval(store, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(model_store.time, "monotonic", lambda: clock[0])
    assert model_store.deployed_model(Stub, lambda: "fp-1") is None
    _deploy_elsewhere("a", monkeypatch)
    assert model_store.deployed_model(Stub, lambda: "fp-1") is None  # not looked again yet
    clock[0] += 31
    assert model_store.deployed_model(Stub, lambda: "fp-1") == Stub("a")
    _deploy_elsewhere("b", monkeypatch)
    clock[0] += 5
    assert model_store.deployed_model(Stub, lambda: "fp-1") == Stub("a")
    clock[0] += 30
    assert model_store.deployed_model(Stub, lambda: "fp-1") == Stub("b")
    _deploy("c")  # the deploying process itself switches at once
    assert model_store.deployed_model(Stub, lambda: "fp-1") == Stub("c")
    # the replaced model files are kept for a rollback; nothing half-written is left behind
    assert len(list((store / "models").glob("intent-*.pkl"))) == 3
    assert not [p for p in store.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.no_database
def test_an_unusable_deployment_falls_back_to_the_shipped_model(store, caplog) -> None:
    deployment = _deploy("a", fingerprint="old-code")
    caplog.set_level(logging.WARNING)
    assert model_store.load_deployed(Stub, lambda: "new-code") is None  # trained with other NLU code or data
    assert "other NLU code" in caplog.text
    assert model_store.load_deployed(Stub, lambda: "old-code") == Stub("a")
    assert model_store.load_deployed(IntentClassifier, lambda: "old-code") is None  # not a classifier
    (store / "models" / deployment.model_file).write_bytes(b"tampered")
    assert model_store.load_deployed(Stub, lambda: "old-code") is None
    (store / "deployed.json").write_text("{not json")
    assert model_store.read_deployment() is None
