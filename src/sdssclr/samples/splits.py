"""Balanced samples and experiment splits: one definition used by every model.

- Classes are balanced by *seeded random* undersampling of each class pool (the paper's ``TOP n``
  without ``ORDER BY`` was not random). Pools are sorted by objID first, so the draw depends only
  on the seed and the pool's content, never on row order.
- Splits are stratified by class: train/val/test each stay balanced
  (:func:`sdssclr.experiments.split_sizes` counts them).
- Experiment 3 keeps experiment 1's train and validation splits and tests on faint+compact objects
  drawn from the faint pool *excluding* every objID in those splits; :func:`write_split` asserts it.
  ``experiments.<name>.keep_parent_overlap`` keeps them instead (the original experiment 3's leak,
  for an exact replication), flagged in the split's :data:`PARENT_FITTED` column and counted.
- Two steps, two files: the *sample* (:func:`write_sample`: the objects drawn, with train/val/test)
  decides which objects are stamped; the *split* (:func:`write_split`) adds what only the models
  read (the calibration carve, experiment 3's copy of its parent's splits), so that changing it
  never re-cuts a stamp.
- The tasks' classes (SG drops quasars) are in :data:`sdssclr.catalog.TASK_CLASSES`.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from ..catalog import OBJECT_CLASSES
from ..experiments import CALIBRATION, SOURCE_CALIBRATION, SPLITS, has_own_dataset, split_bounds
from ..io import data_source, write_parquet_atomic

log = logging.getLogger(__name__)

#: Column of a transfer experiment's split: its own test/calibration objects that its parent's
#: models were fitted on (all false unless ``keep_parent_overlap``).
PARENT_FITTED = "parent_fitted"


class SampleError(ValueError):
    """A pool is too small for the requested sample, or a split breaks an invariant."""


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and stable names (independent streams per experiment)."""
    return np.random.default_rng([int(seed), *(zlib.crc32(n.encode()) for n in names)])


def balanced_sample(pool: pd.DataFrame, per_class: int, rng: np.random.Generator,
                    classes=OBJECT_CLASSES, what: str = "pool") -> pd.DataFrame:
    """``per_class`` rows of each class drawn at random without replacement."""
    parts = []
    for cls in classes:
        sub = pool[pool["class"] == cls].sort_values("objID", kind="stable")
        if len(sub) < per_class:
            counts = pool["class"].value_counts().reindex(classes, fill_value=0).to_dict()
            raise SampleError(f"{what} holds {len(sub)} {cls} objects, fewer than the {per_class} "
                              f"per class requested (pool sizes {counts})")
        parts.append(sub.iloc[np.sort(rng.choice(len(sub), per_class, replace=False))])
    return pd.concat(parts, ignore_index=True)


def stratified_split(sample: pd.DataFrame, ratios, rng: np.random.Generator) -> pd.Series:
    """A train/val/test label per row, in proportions ``ratios`` within every class."""
    labels = np.empty(len(sample), dtype=object)
    for cls in sorted(sample["class"].unique()):
        idx = np.flatnonzero((sample["class"] == cls).to_numpy())
        idx = idx[np.argsort(sample["objID"].to_numpy()[idx], kind="stable")]
        idx = idx[rng.permutation(len(idx))]
        bounds = split_bounds(len(idx), ratios)
        for name, lo, hi in zip(SPLITS, np.r_[0, bounds[:-1]], bounds):
            labels[idx[lo:hi]] = name
    return pd.Series(labels, index=sample.index, name="split")


def make_sample(pool: pd.DataFrame, per_class: int, ratios, seed: int, experiment: str) -> pd.DataFrame:
    """Balanced sample of ``pool`` with a train/val/test ``split`` column, deterministic for ``seed``:
    every object an experiment's models will see (the stamps are cut for these objects)."""
    rng = rng_for(seed, experiment)
    sample = balanced_sample(pool, per_class, rng, what=f"{experiment} pool")
    sample["split"] = stratified_split(sample, ratios, rng).to_numpy()
    return sample


def make_split(pool: pd.DataFrame, per_class: int, ratios, seed: int, experiment: str,
               calibration_fraction: float = 0.0) -> pd.DataFrame:
    """:func:`make_sample` with its calibration objects carved out of the validation split."""
    return carve_calibration(make_sample(pool, per_class, ratios, seed, experiment), calibration_fraction, seed,
                             experiment)


def carve_calibration(sample: pd.DataFrame, fraction: float, seed: int, experiment: str) -> pd.DataFrame:
    """Relabel a stratified ``fraction`` of each class's validation objects ``calib``.

    Every model early-stops on the validation split and MargNet's fusion head is fitted on it, so
    conformal calibration needs objects outside train *and* val: the calibration split is carved
    out of the validation split before any model sees it (the test split stays whole, so Table 1
    compares the same test objects)."""
    if fraction <= 0:
        return sample
    rng = rng_for(seed, experiment, CALIBRATION)
    split = sample["split"].to_numpy(dtype=object).copy()
    for cls in sorted(sample["class"].unique()):
        idx = np.flatnonzero(((sample["class"] == cls) & (sample["split"] == "val")).to_numpy())
        idx = idx[np.argsort(sample["objID"].to_numpy()[idx], kind="stable")]
        n = int(round(fraction * len(idx)))
        if len(idx) and not 0 < n < len(idx):
            raise SampleError(f"{experiment}: a calibration fraction of {fraction} leaves {n} of the {len(idx)} "
                              f"{cls} validation objects for calibration; both parts need at least one")
        split[idx[rng.permutation(len(idx))[:n]]] = CALIBRATION
    return sample.assign(split=split)


def make_transfer_sample(parent_sample: pd.DataFrame, test_pool: pd.DataFrame, test_per_class: int,
                         seed: int, experiment: str, calibration_per_class: int = 0,
                         keep_parent_overlap: bool = False) -> pd.DataFrame:
    """The objects an experiment reusing another's models draws for itself: from ``test_pool``
    with none of the parent's train/val objects in it (its calibration objects are validation
    objects) a balanced ``test`` set and a disjoint balanced ``calib`` set of
    ``calibration_per_class``. Reads the parent's *sample*, so that the parent's calibration
    fraction never redraws (or re-stamps) these objects. The log counts the test-pool objects
    that belong to the parent's sample (the original experiment 3's overlap with experiment 1's
    dataset) and how many of them are dropped (those a parent model was fitted on).

    ``keep_parent_overlap`` keeps the objects a parent model was fitted on as candidates: the
    original experiment 3's leak, for an exact replication of the paper's test set (its
    accuracies are then optimistic, and the split and the table say how many such objects the
    test set holds)."""
    in_parent = test_pool["objID"].isin(parent_sample["objID"]).to_numpy()
    fit_ids = parent_sample.loc[parent_sample["split"].isin(["train", "val", CALIBRATION]), "objID"]
    in_fit = test_pool["objID"].isin(fit_ids).to_numpy()
    if keep_parent_overlap:
        candidates = test_pool
        log.warning("%s: %d of %d test-pool objects belong to the parent's sample; the %d in its train/val/"
                    "calibration stay candidates (keep_parent_overlap: the leak of the original experiment 3, "
                    "kept for an exact replication)", experiment, int(in_parent.sum()), len(test_pool),
                    int(in_fit.sum()))
    else:
        candidates = test_pool[~in_fit]
        log.info("%s: %d of %d test-pool objects belong to the parent's sample; the %d in its train/val/calibration "
                 "are dropped (the leak of the original experiment 3), the %d in its test split stay candidates",
                 experiment, int(in_parent.sum()), len(test_pool), int(in_fit.sum()),
                 int((in_parent & ~in_fit).sum()))
    test = balanced_sample(candidates, test_per_class, rng_for(seed, experiment),
                           what=f"{experiment} test pool")
    test["split"] = "test"
    parts = [test]
    if calibration_per_class > 0:
        rest = candidates[~candidates["objID"].isin(test["objID"])]
        cal = balanced_sample(rest, calibration_per_class, rng_for(seed, experiment, CALIBRATION),
                              what=f"{experiment} calibration pool (test pool without the test objects)")
        cal["split"] = CALIBRATION
        parts.append(cal)
    return pd.concat(parts, ignore_index=True)


def make_transfer_split(parent: pd.DataFrame, own: pd.DataFrame) -> pd.DataFrame:
    """Parent's train/val objects, its calibration objects relabelled ``calib_source`` (a shift
    diagnostic), then the experiment's own test and calibration objects
    (:func:`make_transfer_sample`): the parent's models are evaluated on, and their conformal sets
    calibrated on, the same dataset. A parent object the experiment draws for itself (only with
    ``keep_parent_overlap``) is listed once, in the experiment's own split, and flagged in the
    :data:`PARENT_FITTED` column; the parent's split file still holds it where its models were
    fitted."""
    fit = parent[parent["split"].isin(["train", "val", CALIBRATION])].copy()
    fit.loc[fit["split"] == CALIBRATION, "split"] = SOURCE_CALIBRATION
    fitted = own["objID"].isin(fit["objID"]).to_numpy()
    fit = fit[~fit["objID"].isin(own["objID"])]
    split = pd.concat([fit, own[fit.columns]], ignore_index=True)
    # which of the experiment's own objects a parent model was fitted on (none by default)
    split[PARENT_FITTED] = np.concatenate([np.zeros(len(fit), bool), fitted])
    return split


def parent_overlap(parent: pd.DataFrame, split: pd.DataFrame) -> int:
    """How many of a transfer experiment's test and calibration objects its parent's models were
    fitted on (train, val or calibration): 0 unless ``keep_parent_overlap`` kept them."""
    fit_ids = parent.loc[parent["split"].isin(["train", "val", CALIBRATION]), "objID"]
    return int(split.loc[split["split"].isin(["test", CALIBRATION]), "objID"].isin(fit_ids).sum())


def parent_fitted_ids(split_path) -> np.ndarray:
    """The objIDs a transfer experiment's split flags as fitted by its parent's models (empty for
    an experiment with its own dataset, and unless ``keep_parent_overlap``)."""
    table = pd.read_parquet(split_path)
    if PARENT_FITTED not in table:
        return np.zeros(0, np.int64)
    return table.loc[table[PARENT_FITTED].to_numpy(bool), "objID"].to_numpy(np.int64)


def check_split(split: pd.DataFrame, experiment: str, copied=()) -> None:
    """Assert the invariants every experiment must hold: splits disjoint by objID, each balanced
    (but the ``copied`` ones: a transfer experiment's copy of its parent's splits, less the objects
    it took with ``keep_parent_overlap``; the parent's own file is checked balanced)."""
    seen = split.groupby("objID")["split"].nunique()
    if (seen > 1).any() or split["objID"].duplicated().any():
        bad = seen[seen > 1].index[:5].tolist() or split.loc[split["objID"].duplicated(), "objID"][:5].tolist()
        raise SampleError(f"{experiment}: objIDs appear more than once across splits, e.g. {bad}")
    for name, part in split.groupby("split"):
        if name in copied:
            continue
        counts = part["class"].value_counts()
        if counts.max() - counts.min() > 1 or set(counts.index) != set(OBJECT_CLASSES):
            raise SampleError(f"{experiment}: {name} split is not balanced: {counts.to_dict()}")


def write_sample(experiment: str, exp_config: dict, per_class: int | None, seed: int, out, *, pool_path,
                 parent_sample_path=None) -> pd.DataFrame:
    """Write the objects one experiment draws for split seed ``seed`` (catalogue columns +
    ``split``): its own dataset's balanced train/val/test sample, or, for an experiment reusing
    another's models, its test and calibration objects. ``per_class`` is the size of the
    experiment's own dataset (unused by an experiment reusing another's)."""
    pool = pd.read_parquet(pool_path)
    if has_own_dataset(exp_config):
        sample = make_sample(pool, per_class, exp_config["ratios"], seed, experiment)
    else:
        sample = make_transfer_sample(pd.read_parquet(parent_sample_path), pool, exp_config["test_per_class"], seed,
                                      experiment, exp_config["calibration_per_class"],
                                      exp_config["keep_parent_overlap"])
    check_split(sample, experiment)
    counts = sample.groupby(["split", "class"]).size().unstack(fill_value=0)
    log.info("%s sample (seed %d, source %s):\n%s", experiment, seed, data_source(pool_path), counts.to_string())
    write_parquet_atomic(sample, out, {"source": data_source(pool_path), "experiment": experiment,
                                       "split_seed": str(int(seed))})
    return sample


def write_split(experiment: str, exp_config: dict, seed: int, out, *, sample_path, parent_path=None,
                calibration_fraction: float = 0.0) -> pd.DataFrame:
    """Write one experiment's split table from its sample (:func:`write_sample`), checked: an own
    dataset's sample with its calibration objects carved out of the validation split, or the
    parent's split followed by the experiment's own test and calibration objects."""
    source = data_source(sample_path)
    sample = pd.read_parquet(sample_path)
    metadata = {"source": source, "experiment": experiment, "split_seed": str(int(seed))}
    copied = ()
    if has_own_dataset(exp_config):
        split = carve_calibration(sample, calibration_fraction, seed, experiment)
    else:
        parent = pd.read_parquet(parent_path)
        split = make_transfer_split(parent, sample)
        overlap = parent_overlap(parent, split)
        metadata["parent_overlap"] = str(overlap)
        if overlap and not exp_config["keep_parent_overlap"]:  # the leak of the original experiment 3
            raise SampleError(f"{experiment}: {overlap} test or calibration objects are in "
                              f"{exp_config['train_from']}'s train/val splits")
        if overlap:
            log.warning("%s: %d test or calibration objects are in %s's train/val/calibration splits "
                        "(keep_parent_overlap: an exact replication of the original experiment 3's leak)",
                        experiment, overlap, exp_config["train_from"])
            copied = ("train", "val", SOURCE_CALIBRATION)
    check_split(split, experiment, copied)
    counts = split.groupby(["split", "class"]).size().unstack(fill_value=0)
    log.info("%s split (seed %d, source %s):\n%s", experiment, seed, source, counts.to_string())
    write_parquet_atomic(split, out, metadata)
    return split
