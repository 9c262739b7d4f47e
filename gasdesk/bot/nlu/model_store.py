"""The deployed intent model: a model retrained from production corrections (``gasdesk bot retrain``) that
replaces the shipped one in every process.

Layout under ``<var_dir>/nlu/``: ``models/intent-<time>-<hash>.pkl`` (the pickled classifier) and
``deployed.json`` (which model file, its SHA-256, the fingerprint of the NLU code it was trained with, when,
the figures it passed with, how many corrections it learnt from). Deploying writes the model file under a new
name, then replaces ``deployed.json`` with ``os.replace``: a reader sees the old deployment or the new one,
never half of either, and the previous model file stays on disk for a manual rollback.

Every process notices a new deployment by itself: ``deployed_model`` looks at ``deployed.json``'s modification
time at most once every ``GASDESK_NLU_MODEL_CHECK_S`` seconds (30 by default) and loads the model when it
changed. A deployment that cannot be used — a missing or altered model file, or one trained with other NLU
code, lexicon, training data or library versions (its fingerprint differs) — is ignored with a warning: the
shipped model answers until someone retrains.

This module knows nothing of the classifier itself (``classifier.py`` passes its type and fingerprint in), so
``classifier.get_classifier`` can call it without an import cycle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from gasdesk.clock import utcnow
from gasdesk.config import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")
METADATA_NAME = "deployed.json"
MODELS_FOLDER = "models"
# Model files kept besides the deployed one (the previous ones, for a manual rollback).
KEEP_PREVIOUS = 2


def store_folder() -> Path:
    """Where deployed models live: ``<var_dir>/nlu``."""
    return get_settings().var_dir / "nlu"


@dataclass(frozen=True)
class Deployment:
    """What ``deployed.json`` says about the deployed model."""

    model_file: str  # name under models/
    sha256: str
    fingerprint: str  # classifier.model_fingerprint() of the code and data it was trained with
    deployed_at: str  # ISO-8601, UTC
    corrections: int  # approved corrections it learnt from
    training_examples: int
    figures: dict[str, Any]  # per held-out set: the candidate's and the replaced model's figures

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            model_file=str(data["model_file"]),
            sha256=str(data["sha256"]),
            fingerprint=str(data["fingerprint"]),
            deployed_at=str(data["deployed_at"]),
            corrections=int(data["corrections"]),
            training_examples=int(data["training_examples"]),
            figures=dict(data.get("figures") or {}),
        )


def read_deployment(folder: Path | None = None) -> Deployment | None:
    """The deployment described in ``deployed.json``, or None when there is none (or it is unreadable)."""
    path = (folder or store_folder()) / METADATA_NAME
    try:
        return Deployment.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("deployed NLU model metadata unreadable (%s): using the shipped model", exc)
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def deploy(
    model: object,
    *,
    fingerprint: str,
    corrections: int,
    training_examples: int,
    figures: dict[str, Any],
    at: datetime | None = None,
) -> Deployment:
    """Make ``model`` the deployed one: its file first, then ``deployed.json`` (atomic replace). Older model
    files beyond the previous ``KEEP_PREVIOUS`` are removed."""
    folder = store_folder()
    models = folder / MODELS_FOLDER
    models.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(blob).hexdigest()
    moment = at or utcnow()
    name = f"intent-{moment.strftime('%Y%m%dT%H%M%S')}-{digest[:12]}.pkl"
    _write_atomically(models / name, blob)
    deployment = Deployment(
        model_file=name,
        sha256=digest,
        fingerprint=fingerprint,
        deployed_at=moment.isoformat(),
        corrections=corrections,
        training_examples=training_examples,
        figures=figures,
    )
    meta = json.dumps(deployment.__dict__, ensure_ascii=False, indent=2, sort_keys=True).encode()
    _write_atomically(folder / METADATA_NAME, meta)
    _prune(models, keep=name)
    global _watch
    _watch = _Watch()  # the deploying process uses it at once; others within nlu_model_check_s
    return deployment


def _prune(models: Path, keep: str) -> None:
    older = sorted(
        (p for p in models.glob("intent-*.pkl") if p.name != keep), key=lambda p: p.stat().st_mtime
    )
    for path in older[:-KEEP_PREVIOUS] if KEEP_PREVIOUS else older:
        path.unlink(missing_ok=True)


def load_deployed(kind: type[T], fingerprint: Callable[[], str], folder: Path | None = None) -> T | None:
    """The deployed model if there is one and it is usable (file intact, same NLU fingerprint, of ``kind``)."""
    folder = folder or store_folder()
    deployment = read_deployment(folder)
    if deployment is None:
        return None
    path = folder / MODELS_FOLDER / Path(deployment.model_file).name
    try:
        blob = path.read_bytes()
    except OSError as exc:
        log.warning("deployed NLU model %s unreadable (%s): using the shipped model", path, exc)
        return None
    if hashlib.sha256(blob).hexdigest() != deployment.sha256:
        log.warning("deployed NLU model %s does not match its checksum: using the shipped model", path)
        return None
    if deployment.fingerprint != fingerprint():
        log.warning(
            "deployed NLU model was trained with other NLU code or data (%s): using the shipped model; "
            "run `gasdesk bot retrain` again",
            deployment.fingerprint,
        )
        return None
    try:
        model = pickle.loads(blob)  # noqa: S301 - written by `gasdesk bot retrain` of this install, checksum above
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
        log.warning("deployed NLU model %s cannot be loaded (%s): using the shipped model", path, exc)
        return None
    return model if isinstance(model, kind) else None


@dataclass(frozen=True)
class _Watch:
    folder: Path | None = None
    stamp: tuple[int, int] | None = None  # deployed.json's (mtime_ns, size) when last loaded
    checked_at: float = float("-inf")  # time.monotonic() of the last look
    model: Any = None


_watch = _Watch()
_watch_lock = threading.Lock()


def _stamp(folder: Path) -> tuple[int, int] | None:
    try:
        status = (folder / METADATA_NAME).stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def deployed_model(kind: type[T], fingerprint: Callable[[], str]) -> T | None:
    """The deployed model for this process, or None (use the shipped one). Cheap enough for every prediction:
    between looks at ``deployed.json`` (every ``nlu_model_check_s`` seconds) it is one clock read."""
    global _watch
    settings = get_settings()
    folder = settings.var_dir / "nlu"
    watch = _watch
    now = time.monotonic()
    if watch.folder == folder and now - watch.checked_at < settings.nlu_model_check_s:
        return watch.model
    with _watch_lock:
        watch = _watch
        stamp = _stamp(folder)
        if watch.folder != folder or stamp != watch.stamp:
            model = load_deployed(kind, fingerprint, folder) if stamp is not None else None
            if model is not None:
                log.info("deployed NLU model loaded from %s", folder)
            watch = _Watch(folder, stamp, now, model)
        else:
            watch = _Watch(folder, stamp, now, watch.model)
        _watch = watch
    return watch.model
