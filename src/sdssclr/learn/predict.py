"""Classify the survey: every object stamped for an experiment's dataset (labelled or not), with
conformal prediction sets.

For one experiment x task x model, the saved model of every seed predicts class probabilities for
every object with a usable stamp in the stamp sets it is given (the rule gives the experiment's
own set and its dataset's unlabelled objects), shard by shard (never more than one shard of stamps in memory);
the seeds' probabilities are averaged (a seed ensemble). The ensemble is calibrated on the
experiment's ``calib`` objects, which no seed was fitted or early-stopped on
(:mod:`sdssclr.learn.conformal`), and every object gets its prediction set. Written to
``results/predictions/{experiment}/{task}/{model}.parquet``: objID, ``labelled``, the
spectroscopic class where there is one, the object's split in the experiment (``none`` for objects
outside it), dereddened r, ``p_{CLASS}``, ``predicted``, ``in_set_{CLASS}`` and ``set_size``.

A star/galaxy (SG) model assigns every object to STAR or GALAXY, quasars included: it was never
shown one.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from ..catalog import FEATURES, TASK_CLASSES
from ..experiments import CALIBRATION
from ..io import data_source, write_parquet_atomic
from ..stamps.objects import load_objects, objects_of_rows
from ..stamps.shards import usable_index
from .checkpoints import load_checkpoint
from .classifiers import restore
from .conformal import prediction_sets, thresholds
from .engine import resolve_device

log = logging.getLogger(__name__)


def ensemble_proba(classifiers, objs) -> np.ndarray:
    return np.mean([clf.predict_proba(objs) for clf in classifiers], axis=0)


def predict_survey(model_paths, split_path, index_paths, out, *, alpha: float, mondrian: bool = True,
                   device: str = "auto", threads: int = 1) -> pd.DataFrame:
    device = resolve_device(device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads))
    states = [load_checkpoint(p) for p in model_paths]
    tasks = {s["task"] for s in states}
    if len(tasks) != 1:
        raise ValueError(f"models of several tasks: {sorted(tasks)}")
    task = tasks.pop()
    classes = TASK_CLASSES[task]
    clfs = [restore(s, device) for s in states]

    cal = load_objects(split_path, index_paths, task=task, splits=[CALIBRATION])
    if not len(cal):
        raise ValueError(f"{split_path}: no calibration objects (conformal.calibration_fraction is 0?)")
    thresh = thresholds(ensemble_proba(clfs, cal), cal.labels, alpha, mondrian)
    log.info("%s %s: %d seeds, calibrated on %d objects; thresholds %s", task, clfs[0].name, len(clfs), len(cal),
             dict(zip(classes, np.round(thresh, 4))))

    split = pd.read_parquet(split_path, columns=["objID", "split"]).set_index("objID")["split"]
    index = usable_index(index_paths)
    parts = []
    for shard, rows in index.groupby("shard_file", sort=True):
        objs = objects_of_rows(rows)
        p = ensemble_proba(clfs, objs)
        sets = prediction_sets(p, thresh)
        part = pd.DataFrame({"objID": objs.objid,
                             "labelled": rows["labelled"].to_numpy(bool) if "labelled" in rows else True,
                             "class": pd.array(np.where(objs.classes == "", None, objs.classes), dtype="string"),
                             "split": split.reindex(objs.objid).fillna("none").to_numpy(str),
                             "r_mag": objs.features[:, FEATURES.index("dered_r")]})
        for k, c in enumerate(classes):
            part[f"p_{c}"] = p[:, k].astype(np.float32)
        part["predicted"] = np.asarray(classes)[p.argmax(1)]
        for k, c in enumerate(classes):
            part[f"in_set_{c}"] = sets[:, k]
        part["set_size"] = sets.sum(1).astype(np.int8)
        parts.append(part)
        log.info("shard %s: %d objects", shard, len(part))
    df = pd.concat(parts, ignore_index=True)
    sizes = df["set_size"].value_counts().sort_index().to_dict()
    log.info("%d objects (%d unlabelled); prediction set sizes %s", len(df), int((~df["labelled"]).sum()), sizes)
    write_parquet_atomic(df, out, {"source": data_source(split_path), "task": task, "model": clfs[0].name,
                                   "alpha": alpha, "mondrian": mondrian, "seeds": len(clfs)})
    return df
