"""Metrics, defined once: accuracy, and precision and recall macro-averaged over classes
(scikit-learn ``average="macro"``), plus the confusion matrix; and the paired bootstrap that
compares two models on the same test objects."""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "precision", "recall")


def classification_metrics(y_true, y_pred, class_names) -> dict:
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
