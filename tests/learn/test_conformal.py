"""Split-conformal prediction sets: the threshold and the sets on hand-checked cases."""

import math

import numpy as np
import pytest

from sdssclr.learn.conformal import conformal_quantile, prediction_sets


def test_the_threshold_is_the_finite_sample_corrected_quantile():
    scores = np.arange(1, 10) / 10  # 0.1 ... 0.9, n = 9
    # ceil((9 + 1) * 0.9) = 9 -> the largest score
    assert conformal_quantile(scores, 0.1) == pytest.approx(0.9)
    # ceil(10 * 0.5) = 5 -> the fifth smallest
    assert conformal_quantile(scores, 0.5) == pytest.approx(0.5)
    # 8 scores are too few for alpha = 0.1: ceil(9 * 0.9) = 9 > 8
    assert conformal_quantile(scores[:8], 0.1) == math.inf


def test_a_set_holds_every_class_within_its_threshold():
    probas = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    sets = prediction_sets(probas, np.array([0.5, 0.7, 0.5]))
    # scores 1 - p: [0.3, 0.8, 0.9] and [0.6, 0.65, 0.75]
    assert sets.tolist() == [[True, False, False], [False, True, False]]
