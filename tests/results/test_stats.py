"""Table 1's intervals (test objects, seeds, split seeds) on hand-checked cases and by simulation;
the benchmarks' object bootstrap on a constructed case."""

import numpy as np
import pytest

from sdssclr.results.stats import Difference, paired_bootstrap, run_difference


def test_paired_bootstrap_on_a_constructed_case():
    rng = np.random.default_rng(0)
    # identical models: difference and interval are exactly zero
    same = rng.random((2, 500)) < 0.8
    assert paired_bootstrap(same, same, resamples=1000) == (0.0, 0.0, 0.0)
    # a population in which model a is right on 85% of objects and b on 80%: true difference +0.05.
    # Intervals from many independent test sets cover it about 95% of the time.
    covered, widths = 0, []
    for trial in range(200):
        u = rng.random((2, 1000))
        a, b = u < 0.85, u < 0.80  # paired: b is right only where a is (correlated errors)
        d, lo, hi = paired_bootstrap(a, b, resamples=1000, seed=trial)
        covered += lo <= 0.05 <= hi
        widths.append(hi - lo)
        assert lo <= d <= hi
    assert 0.90 <= covered / 200 <= 0.99
    # the pairing narrows the interval: the binomial sd of a 5% difference of nested errors
    expect = 2 * 1.96 * np.sqrt(0.05 * 0.95 / 2000)
    assert np.median(widths) == pytest.approx(expect, rel=0.2)
    d, lo, hi = paired_bootstrap(a, b, resamples=1000, seed=1)
    assert (d, lo, hi) == paired_bootstrap(a, b, resamples=1000, seed=1)  # seeded
    with pytest.raises(ValueError, match="same runs and objects"):
        paired_bootstrap(a, b[:, :10])


def test_run_difference_on_a_hand_checked_case():
    """Three seeds on one split of 50 objects; b is right on the first 45 + seed objects, a on two
    more in every run (+4 points). Run means agree (no training part); the per-object differences
    1/3, 2/3, 2/3, 1/3 on four objects give an objects' part of (var 0.021043 - noise 0.008889)/50."""
    b = np.array([np.arange(50) < 45 + s for s in range(3)])
    a = np.array([np.arange(50) < 47 + s for s in range(3)])
    d = run_difference({2023: (a, b)})
    half = 1.959964 * np.sqrt((0.0210431 - 0.0088889) / 50)
    assert d.estimate == pytest.approx(0.04)
    assert (d.lower, d.upper) == pytest.approx((0.04 - half, 0.04 + half), abs=1e-5)
    assert d.conditional_on == "split" and d.runs == 3 and d.verdict(0.003) == "benefit"
    one = run_difference({2023: (a[:1], b[:1])})  # one run: the objects' part alone, conditional
    assert one.conditional_on == "trained models"
    with pytest.raises(ValueError, match="same number of training seeds"):
        run_difference({1: (a, b), 2: (a[:2], b[:2])})
    with pytest.raises(ValueError, match="split seed 1"):
        run_difference({1: (a, b[:, :10])})


def test_verdicts_follow_the_interval():
    def diff(lo, hi):
        return Difference((lo + hi) / 2, lo, hi, "", 6)
    assert diff(0.001, 0.01).verdict(0.003) == "benefit"
    assert diff(-0.002, 0.0025).verdict(0.003) == "no harm"
    assert diff(-0.004, 0.002).verdict(0.003) == "inconclusive"
    assert diff(-0.01, -0.001).verdict(0.003) == "harm"


def _simulated_table(rng, n_splits, n_seeds, n_objects, seed_sd, split_sd=0.0):
    """Per-object correctness of two models whose true accuracy difference is zero: object
    difficulty shared by both, each run's model shifted by its own training noise (``seed_sd`` in
    logit, ~0.15 accuracy points per 0.012), each split drawing new objects (and ``split_sd``)."""
    groups = {}
    for s in range(n_splits):
        z = rng.normal(0, 1.5, n_objects)
        shift = rng.normal(0, split_sd, 2)
        runs = [[rng.random(n_objects) < 1 / (1 + np.exp(-(2 + z + rng.normal(0, seed_sd) + shift[m])))
                 for m in (0, 1)] for _ in range(n_seeds)]
        groups[s] = (np.array([r[0] for r in runs]), np.array([r[1] for r in runs]))
    return groups


@pytest.mark.parametrize("n_seeds, n_objects, seed_sd", [(3, 6000, 0.012), (3, 30000, 0.03)])
def test_interval_coverage_by_simulation(n_seeds, n_objects, seed_sd):
    """Over 1000 simulated tables with a true difference of zero, the nominal 95% interval covers
    it within 2 points of 95%; the interval over test objects alone (what the tables printed before
    split seeds) falls short once training randomness matters."""
    rng = np.random.default_rng(7)
    ours = objects_only = 0
    for _ in range(1000):
        groups = _simulated_table(rng, 1, n_seeds, n_objects, seed_sd)
        d = run_difference(groups)
        ours += d.lower <= 0 <= d.upper
        a, b = groups[0]
        per_object = (a.astype(float) - b).mean(0)
        half = 1.96 * per_object.std(ddof=1) / np.sqrt(n_objects)
        objects_only += abs(per_object.mean()) <= half
    assert abs(ours / 1000 - 0.95) <= 0.02
    if seed_sd >= 0.03:
        assert objects_only / 1000 < 0.85


def test_split_seeds_widen_the_interval_by_the_split_to_split_spread():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(300):
        d = run_difference(_simulated_table(rng, 3, 3, 3000, 0.012, split_sd=0.03))
        covered += d.lower <= 0 <= d.upper
        assert d.conditional_on == ""
    assert covered / 300 >= 0.93
