"""Checkpoints: atomic, weights-only files, and the resumable state of a training run.

One mechanism for pretraining and the supervised runs: :class:`RunCheckpoint` keeps the finished
stages of a run (MargNet trains three networks in turn) and the progress of the stage under way,
in one file beside the run's outputs, and is resumed only when its key matches. The key
(:func:`run_key`) hashes what the run computes from: its scientific identity (model or
pretraining configuration, task, seed, label budget), the exact objects it trains on, and the
content it reads (stamp pixels, features, the pretrained encoder's file:
:func:`sdssclr.io.array_hash`, :func:`sdssclr.io.file_hash`), so a checkpoint written before any of its inputs changed is discarded, with
a log line naming what changed, instead of being resumed into a model of the old inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..io import array_hash, atomic_path

log = logging.getLogger(__name__)


def run_key(identity, objids: dict, content: dict | None = None) -> dict[str, str]:
    """What a checkpoint must have been written for to be resumed, part by part: ``identity``
    (any JSON-able description of the run: configuration, task, seed...), per name the exact set
    of objIDs (order does not matter), and per name the hash of content the run reads
    (:func:`sdssclr.io.array_hash`, :func:`sdssclr.io.file_hash`)."""
    parts = {"configuration": hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()}
    parts |= {f"objects {name}": array_hash(np.sort(np.asarray(v, dtype=np.int64))) for name, v in objids.items()}
    parts |= {name: str(v) for name, v in (content or {}).items()}
    return parts


def key_of(parts) -> str:
    """The single key string of :func:`run_key`'s parts (a plain string is its own key)."""
    if isinstance(parts, str):
        return parts
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def save_atomic(obj, path) -> None:
    """torch.save to a temporary file beside ``path``, then rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class CheckpointError(RuntimeError):
    """A checkpoint or model file cannot be read (truncated, corrupt, or not one of ours)."""


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint written by :func:`save_atomic` with ``weights_only=True``; an unreadable
    file raises :class:`CheckpointError` naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError...
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc


class RunCheckpoint:
    """The resumable state of one training run, which may train several networks in stages
    (MargNet's ANN, CNN and fusion head; pretraining has one stage, ``simclr``), kept in one file
    beside the run's outputs.

    A finished stage is stored with its weights and report, so a rerun skips it; the stage in
    progress is stored by :meth:`save_progress` (on SIGTERM, and every ``interval_s`` of
    supervised training or ``checkpoint_every`` epochs of pretraining), so a rerun continues there
    and, on CPU, ends with the same weights as an uninterrupted run. The file is resumed only when
    its ``key`` (:func:`run_key`) matches; a file that cannot be read is named in the log and the
    run starts clean.
    """

    def __init__(self, path, key, interval_s: float = 600.0):
        parts = key if isinstance(key, dict) else {}
        key = key_of(key)
        self.path, self.key, self.interval_s = Path(path), key, interval_s
        self.state = {"key": key, "parts": parts, "done": {}, "current": None}
        if self.path.exists():
            try:
                saved = load_checkpoint(self.path)
            except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: start clean
                log.warning("%s: unreadable training checkpoint (%s: %s); starting from scratch", self.path,
                            type(exc).__name__, exc)
            else:
                if saved.get("key") == key:
                    self.state = saved
                    log.info("%s: resuming (finished stages: %s)", self.path, ", ".join(saved["done"]) or "none")
                else:
                    old = saved.get("parts") or {}
                    changed = sorted(k for k in set(parts) | set(old) if parts.get(k) != old.get(k))
                    log.warning("%s: written for other inputs (changed: %s); discarded, starting from scratch",
                                self.path, ", ".join(changed) or "the run's identity")

    def done(self, stage: str) -> dict | None:
        return self.state["done"].get(stage)

    def progress(self, stage: str) -> dict | None:
        cur = self.state["current"]
        return cur if cur is not None and cur["stage"] == stage else None

    def finish(self, stage: str, weights: dict, report: dict) -> None:
        # the random state after the stage, so a rerun that skips it continues the same stream
        self.state["done"][stage] = {"weights": weights, "report": report, "rng_state": torch.get_rng_state()}
        self.state["current"] = None
        self.save()

    def save_progress(self, progress: dict) -> None:
        self.state["current"] = progress
        self.save()

    def save(self) -> None:
        save_atomic(self.state, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
