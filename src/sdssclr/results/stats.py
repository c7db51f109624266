"""Statistics of Table 1: the interval of an accuracy difference over everything that varies
(test objects, training seeds, split seeds), and equal-count binning (accuracy and coverage
against magnitude).

A difference between two models is measured on runs: each run is one training seed on one split
seed's sample, and both models of a run are scored on the same test objects. Its variance is the
sum of three parts, estimated from the runs themselves:

- test objects: within a split, the variance over objects of the per-object difference (averaged
  over that split's seeds) less the runs' object-by-object noise, divided by their number;
- training randomness: within a split, the variance over seeds of the run differences (which holds
  that noise) divided by the number of seeds;
- samples and splits: the variance of the split means beyond what the first two explain (zero
  when it is smaller), estimated only with two or more split seeds.

The interval is Student's t with Welch-Satterthwaite degrees of freedom, so that a handful of
seeds widens it as it should (tested by simulation: ``tests/results/test_stats.py``). With one
seed the training part cannot be estimated, with one split seed the split part cannot: the
interval is then *conditional* on what was held fixed, and :class:`Difference` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit


@dataclass(frozen=True)
class Difference:
    """An accuracy difference a - b (fractions) with its interval."""
    estimate: float
    lower: float
    upper: float
    #: What the interval holds fixed, when not everything could vary: "trained models" (one run
    #: per split), "split" (one split seed), or "" (seeds and split seeds both varied).
    conditional_on: str
    runs: int

    def __iter__(self):  # (estimate, lower, upper), as the figures plot it
        return iter((self.estimate, self.lower, self.upper))

    def verdict(self, margin: float) -> str:
        """"benefit" when the interval lies above zero, "no harm" when it lies within +-``margin``,
        "harm" when it lies below zero, else "inconclusive" (``margin`` a fraction, like the
        difference)."""
        if self.lower > 0:
            return "benefit"
        if -margin <= self.lower and self.upper <= margin:
            return "no harm"
        if self.upper < 0:
            return "harm"
        return "inconclusive"


def run_difference(groups: dict, *, level: float = 0.95) -> Difference:
    """Difference of two models' accuracies over runs, with its ``level`` interval.

    ``groups`` maps each split seed to (a, b): (T, N) booleans of whether each of that split's T
    training seeds got each of its N test objects right, model a and model b (same seeds, same
    objects, in the same order). Split seeds may differ in N but not in T."""
    if not groups:
        raise ValueError("no runs to compare")
    means, obj_var, run_var, seeds = [], [], [], set()
    for split, (a, b) in groups.items():
        a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
        if a.shape != b.shape or a.shape[1] == 0:
            raise ValueError(f"split seed {split}: a paired comparison needs the same runs and (some) objects, "
                             f"got {a.shape} and {b.shape}")
        d = a - b
        t, n = d.shape
        seeds.add(t)
        means.append(d.mean())
        if t == 1:  # conditional on the trained models: the objects' part is all there is
            obj_var.append(d[0].var(ddof=1) / n if n > 1 else 0.0)
            run_var.append(0.0)
            continue
        # the objects' part: the spread over objects of the seed-averaged difference, less the
        # runs' object-by-object noise (the spread over seeds on each object, averaged), which
        # the runs' part holds: the spread of the run means (t - 1 degrees of freedom)
        noise = d.var(0, ddof=1).mean() / t
        obj_var.append(max(0.0, d.mean(0).var(ddof=1) - noise) / n)
        run_var.append(d.mean(1).var(ddof=1) / t)
    if len(seeds) != 1:
        raise ValueError(f"every split seed needs the same number of training seeds, got {sorted(seeds)}")
    (t,), s = seeds, len(means)
    means = np.asarray(means)
    # the variance of the overall mean, part by part, each with its degrees of freedom
    parts = [(np.mean(obj_var) / s, np.inf), (np.mean(run_var) / s, s * (t - 1) if t > 1 else np.inf)]
    if s > 1:
        parts.append((max(0.0, means.var(ddof=1) - np.mean(obj_var) - np.mean(run_var)) / s, s - 1))
    var = sum(v for v, _ in parts)
    estimate = float(means.mean())
    if var <= 0:
        return Difference(estimate, estimate, estimate, conditional_on(t, s), s * t)
    denom = sum(v * v / df for v, df in parts if v > 0 and np.isfinite(df))
    df = var * var / denom if denom > 0 else np.inf
    half = float(stdtrit(df, 0.5 + level / 2) * np.sqrt(var))  # Student's t quantile
    return Difference(estimate, estimate - half, estimate + half, conditional_on(t, s), s * t)


def conditional_on(seeds: int, splits: int) -> str:
    """What an interval over ``seeds`` training seeds on each of ``splits`` split seeds holds
    fixed (:attr:`Difference.conditional_on`)."""
    if seeds == 1:
        return "trained models"
    return "split" if splits == 1 else ""


def paired_bootstrap(correct_a, correct_b, *, resamples: int = 2000, seed: int = 0, level: float = 0.95,
                     chunk: int = 250) -> tuple[float, float, float]:
    """Accuracy difference a - b of fixed models on shared test objects, with a bootstrap interval
    over the objects only (the benchmarks' single-fit comparisons; Table 1 uses
    :func:`run_difference`). ``correct_a``/``correct_b`` are (S, N) booleans; the same resampled
    objects serve every run and both models. Returns (difference, lower, upper)."""
    a, b = np.atleast_2d(np.asarray(correct_a, float)), np.atleast_2d(np.asarray(correct_b, float))
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same runs and objects, got {a.shape} and {b.shape}")
    if resamples < 1:
        raise ValueError("resamples must be positive")
    d = (a - b).mean(0)  # per-object difference, averaged over runs
    n = len(d)
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    for lo in range(0, resamples, chunk):
        k = min(chunk, resamples - lo)
        boot[lo:lo + k] = d[rng.integers(0, n, (k, n))].mean(1)
    tail = 100 * (1 - level) / 2
    lower, upper = np.percentile(boot, [tail, 100 - tail])
    return float(d.mean()), float(lower), float(upper)


def equal_count_bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges of (at most) ``n_bins`` equal-count bins of ``values`` and each value's bin index;
    tied quantiles merge bins, the largest value falls in the last bin."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, max(len(edges) - 2, 0))
    return edges, which
