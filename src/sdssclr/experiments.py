"""The experiments of a configuration and how they depend on each other, answered in one place.

An experiment either has its own dataset (``dataset``: its objects are sampled from that pool and
split train/val/test in proportions ``ratios``) or reuses another experiment's trained models
(``train_from``) and tests them on a balanced sample of another dataset (``test_dataset``), as
experiment 3 reuses experiment 1's. The graph answers what the rules, the pretraining sets and the
config check need: which experiments train, which transfer, the dataset a model trains (and
pretrains) on, the experiment whose training split pretrains a dataset's encoder, every
experiment that uses that encoder, and whose unlabelled objects it sees.

The split vocabulary lives here too (:data:`SPLITS`, :data:`CALIBRATION`, :data:`SOURCE_CALIBRATION`,
:func:`split_sizes`),
so that the config check and the split rule count objects the same way. Light on purpose: the
Snakefile imports it.
"""

from __future__ import annotations

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The part of the validation split set aside for conformal calibration
#: (:func:`sdssclr.samples.splits.carve_calibration`): no model is fitted or early-stopped on it.
CALIBRATION = "calib"
#: In an experiment that tests another experiment's models on another dataset (experiment 3), the
#: parent's calibration objects: a labelled diagnostic of the shift between the datasets (sets
#: calibrated on them carry no coverage guarantee on the test objects). Its ``calib`` objects are
#: drawn from the test dataset's pool instead, disjoint from its test objects.
SOURCE_CALIBRATION = "calib_source"


def split_bounds(n: int, ratios) -> np.ndarray:
    """Cumulative object counts at the end of each split when ``n`` objects are split by ``ratios``."""
    ratios = np.asarray(ratios, dtype=float)
    return np.round(np.cumsum(ratios) / ratios.sum() * n).astype(int)


def split_sizes(n: int, ratios) -> dict[str, int]:
    """Objects per split when ``n`` objects of a class are split in proportions ``ratios``."""
    bounds = split_bounds(n, ratios)
    return dict(zip(SPLITS, np.diff(np.r_[0, bounds]).tolist()))


def has_own_dataset(exp: dict) -> bool:
    """Whether one experiment's config samples a dataset of its own (else it reuses another's models)."""
    return "dataset" in exp


class ExperimentGraph:
    """The ``experiments`` section of a config as a graph of datasets, owners and transfers."""

    def __init__(self, experiments: dict):
        self.experiments = experiments

    @property
    def names(self) -> list[str]:
        """Every experiment, sorted by name."""
        return sorted(self.experiments)

    @property
    def own(self) -> list[str]:
        """Experiments that train models on a dataset of their own, in config order."""
        return [n for n, e in self.experiments.items() if has_own_dataset(e)]

    @property
    def transfers(self) -> list[str]:
        """Experiments that evaluate another experiment's models (no training of their own), sorted."""
        return [n for n in self.names if not has_own_dataset(self.experiments[n])]

    def parent(self, name: str) -> str:
        """The experiment whose trained models a transfer experiment evaluates."""
        return self.experiments[name]["train_from"]

    def sample_dataset(self, name: str) -> str:
        """The pool an experiment's own objects are drawn from: its dataset, or a transfer's test dataset."""
        exp = self.experiments[name]
        return exp["dataset"] if has_own_dataset(exp) else exp["test_dataset"]

    def dataset_of(self, name: str) -> str:
        """The dataset an experiment's models are trained (and pretrained) on."""
        exp = self.experiments[name]
        return exp["dataset"] if has_own_dataset(exp) else self.dataset_of(exp["train_from"])

    def owners(self, dataset: str) -> list[str]:
        """Experiments that train on ``dataset``, in config order."""
        return [n for n, e in self.experiments.items() if e.get("dataset") == dataset]

    def encoder_split(self, dataset: str) -> str:
        """The experiment whose split pretrains (and monitors) the encoder of ``dataset``: its first owner."""
        return self.owners(dataset)[0]

    def pretrained_datasets(self) -> list[str]:
        """Datasets some experiment trains on, sorted (each gets its encoders)."""
        return sorted({e["dataset"] for e in self.experiments.values() if has_own_dataset(e)})

    def encoder_users(self, dataset: str) -> list[str]:
        """Experiments whose models use the encoder pretrained on ``dataset``: its owners, then the
        experiments that reuse an owner's models."""
        own = self.owners(dataset)
        return own + [n for n, e in self.experiments.items() if e.get("train_from") in own]

    def unlabelled_datasets(self, dataset: str) -> list[str]:
        """The datasets whose unlabelled objects the encoder of ``dataset`` pretrains on: its own and
        the test dataset of every experiment reusing it (the target domain, seen without labels)."""
        out = [dataset]
        for name in self.encoder_users(dataset):
            test = self.experiments[name].get("test_dataset")
            if test and test not in out:
                out.append(test)
        return out

    def field_experiments(self, dataset: str | None = None) -> list[str]:
        """The experiments whose samples' fields hold ``dataset``'s unlabelled objects: its owners,
        or when no experiment trains on it the experiments testing on it (default: those of every
        dataset of the graph, sorted)."""
        if dataset is None:
            datasets = {e.get("dataset") or e.get("test_dataset") for e in self.experiments.values()}
            return sorted({n for d in datasets for n in self.field_experiments(d)})
        return self.owners(dataset) or [n for n in self.names if self.sample_dataset(n) == dataset]

    def problems(self) -> list[str]:
        """References that do not resolve, as ``key: reason`` lines for the config check."""
        out = []
        for name, exp in self.experiments.items():
            if "train_from" in exp:
                parent = self.experiments.get(exp["train_from"])
                if parent is None or not has_own_dataset(parent):
                    out.append(f"experiments.{name}.train_from: {exp['train_from']!r} is not an "
                               "experiment with its own dataset")
        return out
