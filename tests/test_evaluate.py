import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_score, recall_score

from sdssclr.evaluate import classification_metrics


def test_metrics_by_hand_and_against_sklearn():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y_true, y_pred, ["STAR", "GALAXY", "QSO"])
    # precision: STAR 1/2, GALAXY 2/3, QSO 1/1; recall: 1/2, 2/2, 1/2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert m["accuracy"] == accuracy_score(y_true, y_pred)
    assert m["precision"] == precision_score(y_true, y_pred, average="macro")
    assert m["recall"] == recall_score(y_true, y_pred, average="macro")
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["n_test"] == 6 and m["class_names"] == ["STAR", "GALAXY", "QSO"]


def test_a_class_never_predicted_counts_as_zero_precision():
    m = classification_metrics(np.array([0, 1, 1]), np.array([1, 1, 1]), ["STAR", "GALAXY"])
    assert m["precision"] == pytest.approx((0 + 2 / 3) / 2)


def test_paired_bootstrap_on_a_constructed_case():
    from sdssclr.evaluate import paired_bootstrap

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
