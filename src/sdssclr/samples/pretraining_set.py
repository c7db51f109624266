"""What each SimCLR encoder pretrains on, written out so that a reader can audit it.

The encoder of a dataset (``compact``, ``faint_compact``) is used by every experiment that trains
on that dataset and by every experiment that reuses such an experiment's models (experiment 3
reuses experiment 1's). Its pretraining set is

- the labelled training objects of the experiments that train on the dataset,
- for the ``all`` set (what every pretrained model but the labelled-only row uses) also the
  unlabelled objects of the dataset's regime
  (:mod:`sdssclr.samples.unlabelled`) and, for an experiment reusing the encoder on another dataset, the
  unlabelled objects of that dataset (experiment 3's encoder sees faint+compact objects without
  labels: the target domain),
- restricted to usable stamps,
- never a test object of any experiment that uses the encoder: an owner's test objects are removed
  (counted) and their absence is then asserted here; an experiment reusing the encoder (experiment
  3) draws its test objects outside its parent's training objects, and the unlabelled objects are
  photometric objects without spectra, so none of them can be in the set: the evaluation of that
  experiment asserts it (:func:`check_not_pretrained_on`), so that redrawing its test objects never
  reruns a pretraining. No unlabelled object may be a labelled object of an owner (asserted).

``results/pretrain/{dataset}/split{S}/{all,labelled}/objects.parquet`` lists objID and where each
object comes from; the ``labelled`` set is the labelled training objects alone.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..experiments import ExperimentGraph
from ..io import data_source, path_list, write_parquet_atomic
from ..registry import PRETRAINING_SETS

log = logging.getLogger(__name__)


class LeakageError(AssertionError):
    """A pretraining set holds an object it must never see."""


def build(dataset: str, experiments: dict, splits: dict[str, pd.DataFrame], unlabelled: dict[str, pd.DataFrame],
          usable_ids, mode: str = "all") -> pd.DataFrame:
    """The pretraining set of ``dataset``'s encoder (see the module docstring) from the splits of
    its owners."""
    if mode not in PRETRAINING_SETS:
        raise ValueError(f"a pretraining set is one of {PRETRAINING_SETS}, got {mode!r}")
    graph = ExperimentGraph(experiments)
    users = graph.encoder_users(dataset)
    own = graph.owners(dataset)
    parts = [pd.DataFrame({"objID": s.loc[s["split"] == "train", "objID"].to_numpy(np.int64),
                           "origin": "labelled_train"}) for n, s in splits.items() if n in own]
    if mode == "all":
        for ds in graph.unlabelled_datasets(dataset):
            parts.append(pd.DataFrame({"objID": unlabelled[ds]["objID"].to_numpy(np.int64),
                                       "origin": f"unlabelled_{ds}"}))
    objects = pd.concat(parts, ignore_index=True).drop_duplicates("objID", keep="first")
    labelled_ids = set(np.concatenate([s["objID"].to_numpy(np.int64) for s in splits.values()]))
    spectroscopic = objects["origin"].str.startswith("unlabelled") & objects["objID"].isin(labelled_ids)
    if spectroscopic.any():
        raise LeakageError(f"{dataset}: {int(spectroscopic.sum())} unlabelled objects are labelled objects of an "
                           f"experiment, e.g. {objects.loc[spectroscopic, 'objID'].head(3).tolist()}")
    usable = objects["objID"].isin(np.asarray(usable_ids, dtype=np.int64))
    counts = {"no usable stamp": int((~usable).sum())}
    objects = objects[usable]
    tests = set()
    for name in own:
        tests |= set(splits[name].loc[splits[name]["split"] == "test", "objID"].to_numpy(np.int64))
    in_test = objects["objID"].isin(tests)
    counts["test objects of an experiment training on the dataset"] = int(in_test.sum())
    objects = objects[~in_test].sort_values("objID").reset_index(drop=True)
    if objects["objID"].isin(tests).any():  # the guarantee itself, asserted where the set is built
        raise LeakageError(f"{dataset}: the pretraining set holds test objects of {own}")
    log.info("pretraining set of the %s encoder (used by %s, objects: %s): %s; removed %s", dataset,
             ", ".join(users), mode, objects["origin"].value_counts().to_dict(), counts)
    return objects


def write_pretraining_set(dataset: str, experiments: dict, split_paths: dict, unlabelled_paths: dict, index_paths,
                          mode: str, out) -> pd.DataFrame:
    """Write ``results/pretrain/{dataset}/split{S}/{set}/objects.parquet`` from the owners'
    splits, the unlabelled pools and the stamp sets (their ``usable`` column)."""
    splits = {name: pd.read_parquet(p, columns=["objID", "split"]) for name, p in split_paths.items()}
    unlabelled = {ds: pd.read_parquet(p, columns=["objID"]) for ds, p in unlabelled_paths.items()}
    objects = build(dataset, experiments, splits, unlabelled, usable_objids(index_paths), mode)
    write_parquet_atomic(objects, out, {"source": data_source(path_list(index_paths)[0]), "dataset": dataset, "objects": mode})
    return objects


def usable_objids(index_paths) -> np.ndarray:
    """objIDs of the usable stamps of one or several stamp sets (their indexes' ``usable`` column)."""
    paths = path_list(index_paths)
    index = pd.concat([pd.read_parquet(p, columns=["objID", "usable"]) for p in paths], ignore_index=True)
    return np.unique(index.loc[index["usable"], "objID"].to_numpy(np.int64))


def check_not_pretrained_on(pretraining_path, objids, what: str) -> None:
    """Raise :class:`LeakageError` if the pretraining set at ``pretraining_path`` holds any of
    ``objids`` (e.g. experiment 3's test objects, checked where they are evaluated)."""
    seen = pd.read_parquet(pretraining_path, columns=["objID"])["objID"]
    leaked = seen[seen.isin(np.asarray(objids, dtype=np.int64))]
    if len(leaked):
        raise LeakageError(f"{pretraining_path}: the encoder pretrained on {len(leaked)} of {what}, e.g. "
                           f"{leaked.head(3).tolist()}")
    log.info("%s: none of %d %s in the encoder's pretraining set", pretraining_path, len(objids), what)
