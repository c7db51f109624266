"""Training and evaluation runs of the Table 1 models, per experiment x task x model x seed.

A run loads the experiment's objects with usable stamps, optionally thins the training labels
(label efficiency), builds the model (:func:`sdssclr.learn.classifiers.build`), fits it on the
train/val splits, saves its weights-only state (``model.pt``) and evaluates it on the test split:
``metrics.json`` (the model and each of its components) and ``predictions.parquet`` (class
probabilities of every test object for every row, so tables can compare models on the same
objects; :mod:`sdssclr.learn.runfiles`). Experiment 3 evaluates experiment 1's saved models with
:func:`evaluate_run`; both score a model on its test objects with :func:`score_run`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from ..catalog import TASK_CLASSES
from ..experiments import CALIBRATION, SOURCE_CALIBRATION
from ..io import array_hash, file_hash, read_parquet_metadata, write_json_atomic
from ..registry import spec
from ..samples.pretraining_set import check_not_pretrained_on
from ..samples.splits import parent_fitted_ids, rng_for
from ..stamps.objects import Objects, load_objects
from .checkpoints import RunCheckpoint, load_checkpoint, run_key, save_atomic
from .classifiers import build, restore
from .engine import resolve_device, seed_everything
from .metrics import classification_metrics
from .runfiles import write_predictions

log = logging.getLogger(__name__)


def subsample_labels(objs: Objects, fraction: float, seed: int, min_val_per_class: int = 1) -> Objects:
    """A label budget: a stratified ``fraction`` of the training split (at least one object per
    class) and the same fraction of the validation split (at least ``min_val_per_class`` per class,
    or all it has), drawn with a generator seeded by ``seed`` and the fraction; the test split is
    kept whole. Thinning the validation split too counts every label a model uses: early
    stopping, the probe's C and MargNet's fusion head all learn from it."""
    if fraction >= 1.0:
        return objs
    rng = rng_for(seed, "label_efficiency", f"{fraction:.6g}")
    keep = objs.split == "test"
    for split, floor in (("train", 1), ("val", min_val_per_class)):
        for c in np.unique(objs.labels[objs.split == split]):
            idx = np.flatnonzero((objs.split == split) & (objs.labels == c))
            n = min(len(idx), max(floor, int(round(fraction * len(idx)))))
            keep[rng.choice(idx, n, replace=False)] = True
    return objs.subset(keep)


class NeverLearned(RuntimeError):
    """A run's network never left the validation loss of a uniform guess over its classes."""


def run_training(split_path, index_paths, model_name: str, task: str, seed: int, cfg: dict, out_model, out_metrics,
                 out_predictions, *, encoder_path=None, fraction: float = 1.0, min_val_per_class: int = 1,
                 experiment: str = "", device: str = "auto", threads: int = 1, fail_at_chance: bool = True) -> dict:
    """Train ``model_name`` (its own config section ``cfg``) on an experiment's train/val splits for
    ``task``; evaluate it on the test split. A network that never left the loss of a uniform guess
    fails the run (:class:`NeverLearned`) unless ``fail_at_chance`` is false."""
    if spec(model_name).pretrained and encoder_path is None:
        raise ValueError(f"{model_name} needs the pretrained encoder of its dataset (encoder_path)")
    device = resolve_device(device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    objs = subsample_labels(load_objects(split_path, index_paths, task=task), fraction, seed, min_val_per_class)
    counts = {s: int((objs.split == s).sum()) for s in ("train", "val")}
    log.info("%s %s %s seed %d: %d training and %d validation objects (label fraction %g), device %s",
             experiment, task, model_name, seed, counts["train"], counts["val"], fraction, device)
    clf = build(model_name, len(TASK_CLASSES[task]), cfg, device)
    # resumed only for the same objects, pixels, features and encoder (hashed in place, no copy)
    content = {"stamps and features": array_hash(objs.stamps, objs.features)}
    if encoder_path is not None:
        content["encoder"] = file_hash(encoder_path)
    key = run_key([model_name, cfg, task, seed, fraction],
                  {s: objs.objid[objs.split == s] for s in ("train", "val")}, content)
    checkpoint = RunCheckpoint(Path(out_model).with_name("checkpoint.pt"), key)
    with threadpool_limits(max(1, threads)):  # scikit-learn's OpenMP/BLAS threads: the job's own
        report = clf.fit(objs, seed, encoder_path=encoder_path, checkpoint=checkpoint)
    stuck = [stage for stage, r in (report or {}).items() if isinstance(r, dict) and r.get("at_chance")]
    if stuck:
        message = (f"{experiment} {task} {model_name} seed {seed} (label fraction {fraction:g}): "
                   f"{', '.join(stuck)} never left the validation loss of a uniform guess (ln {len(TASK_CLASSES[task])}), "
                   "even when retried with a schedule twice as long; give it a longer warm-up (warmup_steps), more "
                   "epochs or another learning rate")
        if fail_at_chance:
            raise NeverLearned(message)
        log.warning("%s (kept: classifiers.fail_at_chance is false)", message)
    state = clf.state() | {"task": task, "seed": seed, "source": objs.source, "experiment": experiment,
                           "fraction": fraction, "split_seed": split_seed_of(split_path)}
    save_atomic(state, out_model)
    checkpoint.remove()
    return score_run(clf, state, objs.subset(objs.split == "test"), out_metrics, out_predictions,
                     experiment=experiment, calibration=objs.subset(objs.split == CALIBRATION),
                     extra={"n_train": counts["train"], "n_val": counts["val"], "label_fraction": fraction,
                            "training": report})


def evaluate_run(model_path, split_path, index_paths, out_metrics, out_predictions, *, experiment: str,
                 device: str = "auto", pretraining=None) -> dict:
    """Evaluate a saved model on a split's test objects (experiment 3: experiment 1's models), and
    give the probabilities of its calibration objects (``calib``, drawn from the test dataset) and
    of the parent's (``calib_source``). ``pretraining``: the pretraining set of a pretrained model's
    encoder, which must hold none of the test objects (checked here, where they are evaluated)."""
    if pretraining is not None:
        split = pd.read_parquet(split_path, columns=["objID", "split"])
        check_not_pretrained_on(pretraining, split.loc[split["split"] == "test", "objID"],
                                f"{experiment}'s test objects")
    state = load_checkpoint(model_path)
    clf = restore(state, resolve_device(device))
    objs = load_objects(split_path, index_paths, task=state["task"], splits=["test", CALIBRATION, SOURCE_CALIBRATION])
    split_seed = split_seed_of(split_path)
    if split_seed != state.get("split_seed"):
        raise ValueError(f"{model_path} was trained on split seed {state.get('split_seed')}, but {split_path} "
                         f"is split seed {split_seed}")
    test = objs.subset(objs.split == "test")
    fitted = int(np.isin(test.objid, parent_fitted_ids(split_path)).sum())
    if fitted:
        log.warning("%s: %d of the %d test objects were in the training or validation objects of %s "
                    "(keep_parent_overlap): these metrics are optimistic", experiment, fitted, len(test.objid),
                    model_path)
    # both calibration sets: the test dataset's own, and the parent's (the shift diagnostic)
    return score_run(clf, state, test, out_metrics, out_predictions, experiment=experiment,
                     extra={"n_test_parent_fitted": fitted},
                     calibration=objs.subset(np.isin(objs.split, [CALIBRATION, SOURCE_CALIBRATION])))


def split_seed_of(split_path) -> int:
    """The split seed recorded in a split file's metadata (:func:`sdssclr.samples.splits.write_split`)."""
    try:
        return int(read_parquet_metadata(split_path)["split_seed"])
    except KeyError:
        raise ValueError(f"{split_path}: no 'split_seed' in its metadata; rerun its split rule") from None


def score_run(clf, state: dict, test: Objects, out_metrics, out_predictions, *, experiment: str,
              extra: dict | None = None, calibration: Objects | None = None) -> dict:
    """Metrics of the model and of each component on ``test``, and their per-object probabilities
    for the test objects and the calibration objects (``split`` column; conformal sets)."""
    task = state["task"]
    classes = TASK_CLASSES[task]
    def probas_of(objs: Objects) -> dict[str, np.ndarray]:  # the model's and each component's
        return {clf.name: clf.predict_proba(objs), **clf.component_probas(objs)}

    probas = probas_of(test)
    metrics = {}
    for name, p in probas.items():
        if not np.isfinite(p).all():
            raise FloatingPointError(f"{experiment} {task} {name}: non-finite class probabilities")
        metrics[name] = classification_metrics(test.labels, p.argmax(1), classes)
    out = dict(metrics[clf.name], model=clf.name, experiment=experiment, task=task, seed=int(state["seed"]),
               split_seed=int(state["split_seed"]),
               source=test.source, trained_in=state.get("experiment", experiment),
               n_test_per_class={c: int((test.classes == c).sum()) for c in classes},
               components={k: v for k, v in metrics.items() if k != clf.name}, **(extra or {}))
    if calibration is not None and len(calibration):
        cal = probas_of(calibration)
        both = test.concat(calibration)
        probas = {k: np.concatenate([p, cal[k]]) for k, p in probas.items()}
    else:
        both = test
    write_predictions(out_predictions, both, probas, classes,
                      {"source": test.source, "experiment": experiment, "task": task, "seed": state["seed"]})
    write_json_atomic(out_metrics, out)
    for name, m in metrics.items():
        log.info("%s %s %s seed %d: accuracy %.4f, macro precision %.4f, macro recall %.4f (%d test objects)",
                 experiment, task, name, out["seed"], m["accuracy"], m["precision"], m["recall"], m["n_test"])
    return out
