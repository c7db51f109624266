"""Split-conformal prediction sets (class-conditional, "Mondrian", by default).

A classifier's probabilities become a *set* of classes that holds the true class with probability
at least ``1 - alpha``: the nonconformity score of an object is ``1 - p(true class)``; on a
calibration set no part of the model was fitted or early-stopped on (the ``calib`` part carved
out of the validation split, :func:`sdssclr.samples.splits.carve_calibration`), the threshold is the
``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of the scores, and a new object's set is every
class ``c`` with ``1 - p_c <= threshold``. Mondrian calibration computes one threshold per true
class from that class's calibration objects, so the guarantee holds *for every class* (a rare or
hard class - quasars among faint sources - is not covered at the expense of the easy ones), which
is what the MargFormerCP follow-up reports. With too few calibration objects of a class for the
requested level (``n < 1/alpha - 1``) its threshold is infinite: every set holds that class, and
the log says so. Exchangeability of calibration and test objects is assumed; experiment 3 tests
exactly what happens when it fails (compact calibration, faint test objects); the coverage report
is :mod:`sdssclr.results.coverage`.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The split-conformal threshold of ``scores``: their ``ceil((n+1)(1-alpha))``-th smallest
    value, ``inf`` when that rank exceeds ``n``."""
    scores = np.sort(np.asarray(scores, dtype=float))
    n = len(scores)
    rank = math.ceil((n + 1) * (1 - alpha))
    return float(scores[rank - 1]) if 1 <= rank <= n else math.inf


def thresholds(probas: np.ndarray, labels: np.ndarray, alpha: float, mondrian: bool = True) -> np.ndarray:
    """One threshold per class (Mondrian) or the same for all, from calibration probabilities."""
    probas = np.asarray(probas, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    if not np.isfinite(probas).all():
        raise FloatingPointError("non-finite calibration probabilities")
    scores = 1.0 - probas[np.arange(len(labels)), labels]
    n_classes = probas.shape[1]
    if not mondrian:
        return np.full(n_classes, conformal_quantile(scores, alpha))
    out = np.array([conformal_quantile(scores[labels == c], alpha) for c in range(n_classes)])
    for c in np.flatnonzero(~np.isfinite(out)):
        log.warning("class %d: %d calibration objects are too few for alpha = %g; its threshold is infinite "
                    "(every set holds it)", c, int((labels == c).sum()), alpha)
    return out


def prediction_sets(probas: np.ndarray, thresh: np.ndarray) -> np.ndarray:
    """(N, n_classes) boolean membership: class ``c`` is in an object's set when ``1 - p_c <= t_c``.
    Scores are compared with a 1e-12 tolerance so a float32 round trip never drops a class."""
    return (1.0 - np.asarray(probas, dtype=float)) <= np.asarray(thresh)[None, :] + 1e-12
