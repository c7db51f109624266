"""Metrics, defined once: accuracy, and precision and recall macro-averaged over classes
(scikit-learn ``average="macro"``), plus the confusion matrix. The paired comparison of two
models is :func:`sdssclr.results.stats.paired_bootstrap`."""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "precision", "recall")


def classification_metrics(y_true, y_pred, class_names) -> dict:
    # imported here: the tables read METRICS in many short jobs that never compute a metric
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

    labels = list(range(len(class_names)))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(class_names),
        "n_test": int(len(y_true)),
    }
