"""The metrics of every table: accuracy and macro precision/recall on hand-checked cases."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_score, recall_score

from sdssclr.learn.metrics import classification_metrics


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
