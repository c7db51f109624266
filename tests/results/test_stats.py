"""The paired bootstrap of the tables' "vs MargNet" column, on a constructed case."""

import numpy as np
import pytest

from sdssclr.results.stats import paired_bootstrap


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
