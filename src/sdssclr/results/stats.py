"""Statistics over test objects: the paired bootstrap that compares two models on the same objects,
and equal-count binning (accuracy and coverage against magnitude)."""

from __future__ import annotations

import numpy as np


def equal_count_bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges of (at most) ``n_bins`` equal-count bins of ``values`` and each value's bin index;
    tied quantiles merge bins, the largest value falls in the last bin."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, max(len(edges) - 2, 0))
    return edges, which


def paired_bootstrap(correct_a, correct_b, *, resamples: int = 2000, seed: int = 0, level: float = 0.95,
                     chunk: int = 250) -> tuple[float, float, float]:
    """Accuracy difference a - b on shared test objects, with a paired bootstrap interval.

    ``correct_a`` and ``correct_b`` are (S, N) booleans: whether each of S runs (seeds) got each of
    the same N test objects right. The difference is pooled over the runs (the mean of the S
    per-seed accuracy differences); the interval resamples *objects* with replacement, the same
    objects for every run and both models, so the pairing across models and seeds is kept.
    Returns (difference, lower, upper) of the central ``level`` percentile interval.
    """
    a, b = np.atleast_2d(np.asarray(correct_a, float)), np.atleast_2d(np.asarray(correct_b, float))
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same runs and objects, got {a.shape} and {b.shape}")
    if resamples < 1:
        raise ValueError("resamples must be positive")
    d = (a - b).mean(0)  # per-object difference, averaged over runs
    n = len(d)
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for lo in range(0, resamples, chunk):
        k = min(chunk, resamples - lo)
        stats[lo:lo + k] = d[rng.integers(0, n, (k, n))].mean(1)
    tail = 100 * (1 - level) / 2
    lower, upper = np.percentile(stats, [tail, 100 - tail])
    return float(d.mean()), float(lower), float(upper)
