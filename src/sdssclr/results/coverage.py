"""The conformal coverage report: do the prediction sets hold the true class as often as promised?

Per experiment x task x table row, the split-conformal sets of :mod:`sdssclr.learn.conformal`
are calibrated on each run's ``calib`` objects and evaluated on its test objects, pooled over
seeds: empirical coverage and mean set size per class and overall, with a tolerance band
(:func:`tolerance`) that marks a coverage below target beyond chance, and coverage against r
magnitude.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..catalog import TASK_CLASSES
from ..io import read_parquet_metadata, write_text_atomic
from ..learn.conformal import prediction_sets, thresholds
from ..registry import LABELS, row_names
from .plotting import pyplot, save_png
from .stats import equal_count_bins


def coverage_table(sets: np.ndarray, labels: np.ndarray, classes, alpha: float) -> pd.DataFrame:
    """Per true class and overall: objects, empirical coverage and mean set size."""
    labels = np.asarray(labels, dtype=np.int64)
    covered = sets[np.arange(len(labels)), labels]
    size = sets.sum(1)
    rows = [{"class": name, "n": int((labels == c).sum()), "coverage": float(covered[labels == c].mean()),
             "mean_set_size": float(size[labels == c].mean()), "empty": float((size[labels == c] == 0).mean())}
            for c, name in enumerate(classes) if (labels == c).any()]
    rows.append({"class": "all", "n": len(labels), "coverage": float(covered.mean()),
                 "mean_set_size": float(size.mean()), "empty": float((size == 0).mean())})
    return pd.DataFrame(rows).assign(target=1 - alpha)


def coverage_by_magnitude(sets: np.ndarray, labels: np.ndarray, mag: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Coverage and mean set size in ``n_bins`` equal-count bins of a magnitude."""
    labels = np.asarray(labels, dtype=np.int64)
    covered = sets[np.arange(len(labels)), labels]
    size = sets.sum(1)
    edges, which = equal_count_bins(mag, n_bins)
    rows = []
    for b in range(len(edges) - 1):
        m = which == b
        if m.any():
            rows.append({"mag_lo": float(edges[b]), "mag_hi": float(edges[b + 1]), "n": int(m.sum()),
                         "coverage": float(covered[m].mean()), "mean_set_size": float(size[m].mean())})
    return pd.DataFrame(rows)


def tolerance(n: int, alpha: float, n_cal: int | None = None, z: float = 3.0) -> float:
    """A ``z``-sigma band for the empirical coverage of ``n`` test objects around ``1 - alpha``:
    the binomial spread of the test objects plus, with ``n_cal`` calibration objects, the spread of
    the coverage a finite calibration set gives (Beta-distributed, variance about
    ``alpha (1 - alpha) / (n_cal + 2)``), plus the finite-sample excess ``1 / (n_cal + 1)``."""
    var = alpha * (1 - alpha) / max(n, 1)
    excess = 0.0
    if n_cal is not None:
        var += alpha * (1 - alpha) / (n_cal + 2)
        excess = 1.0 / (n_cal + 1)
    return z * math.sqrt(var) + excess


def run_sets(predictions: pd.DataFrame, row: str, classes, alpha: float, mondrian: bool = True):
    """(labels, sets, r_mag) of the test objects of one run's predictions file for table row ``row``,
    calibrated on the file's ``calib`` objects, and the calibration objects per class."""
    lookup = {c: i for i, c in enumerate(classes)}
    cols = [f"{row}.p_{c}" for c in classes]
    cal = predictions[predictions["split"] == "calib"]
    test = predictions[predictions["split"] == "test"]
    if cal.empty:
        raise ValueError(f"{row}: no calibration objects in the predictions (conformal.calibration_fraction is 0?)")
    cal_labels = cal["class"].map(lookup).to_numpy()
    t = thresholds(cal[cols].to_numpy(), cal_labels, alpha, mondrian)
    return (test["class"].map(lookup).to_numpy(), prediction_sets(test[cols].to_numpy(), t),
            test["r_mag"].to_numpy(), np.bincount(cal_labels, minlength=len(classes)))


def write_conformal_report(prediction_paths, out_md, out_png, *, models, alpha: float, mondrian: bool,
                           n_bins: int) -> pd.DataFrame:
    """Empirical coverage and mean set size per class (pooled over seeds) of every experiment x task
    x table row, and coverage against r magnitude; rows outside the 3-sigma binomial tolerance of
    ``1 - alpha`` are marked."""
    pooled: dict[tuple, list] = {}
    sources = set()
    for p in map(str, prediction_paths):
        meta = read_parquet_metadata(p)
        sources.add(meta["source"])
        df = pd.read_parquet(p)
        classes = TASK_CLASSES[meta["task"]]
        for row in row_names(models):
            if f"{row}.p_{classes[0]}" in df.columns:
                pooled.setdefault((meta["experiment"], meta["task"], row), []).append(
                    run_sets(df, row, classes, alpha, mondrian))
    if len(sources) != 1:
        raise ValueError(f"predictions from several sources: {sorted(sources)}")
    source = sources.pop()
    kind = "class-conditional (Mondrian)" if mondrian else "marginal"
    lines = [f"# Conformal prediction sets, alpha = {alpha:g} ({kind})", ""]
    if source == "synthetic":
        lines += ["> **SYNTHETIC survey: not SDSS data.**", ""]
    lines += [f"Calibrated on the `calib` objects carved out of each experiment's validation split (no model was "
              f"fitted or early-stopped on them; experiment 3 uses experiment 1's), evaluated on the test split, "
              f"pooled over seeds. Target coverage {100 * (1 - alpha):.0f}%; `!` marks a coverage below it by more "
              f"than its 3-sigma tolerance (binomial spread of the test objects and of a finite calibration set, "
              f"`sdssclr.results.coverage.tolerance`).", "",
              "A set can be empty (no class is plausible at this level: the `1 - p` score of split conformal "
              "allows it); the column 'Empty' gives their share, which pulls the mean set size below 1.", "",
              "| Experiment | Task | Model | Coverage per class | Coverage (all) | Mean set size | Empty | Test objects |",
              "|---|---|---|---|---|---|---|---|"]
    summary, by_mag = [], []
    for (exp, task, row), parts in sorted(pooled.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                        row_names(models).index(kv[0][2]))):
        labels = np.concatenate([p[0] for p in parts])
        sets = np.concatenate([p[1] for p in parts])
        mag = np.concatenate([p[2] for p in parts])
        n_cal = parts[0][3]  # the same calibration objects for every seed
        classes = TASK_CLASSES[task]
        tab = coverage_table(sets, labels, classes, alpha)
        # the calibration objects behind each row's threshold: its class's (Mondrian), or all of them
        cal_of = {c: int(n_cal[k]) if mondrian else int(n_cal.sum()) for k, c in enumerate(classes)}
        cal_of["all"] = int(n_cal.min() if mondrian else n_cal.sum())
        tab["tolerance"] = [tolerance(int(n), alpha, cal_of[c]) for c, n in zip(tab["class"], tab["n"])]
        below = tab["coverage"] < 1 - alpha - tab["tolerance"]
        tab["below"] = below
        per = ", ".join(f"{r['class']} {100 * r['coverage']:.1f}" + ("!" if r["below"] else "")
                        for _, r in tab.iterrows() if r["class"] != "all")
        a = tab[tab["class"] == "all"].iloc[0]
        flag = "!" if a["below"] else ""
        lines.append(f"| {exp} | {task} | {LABELS[row]} | {per} | {100 * a['coverage']:.1f}{flag} | "
                     f"{a['mean_set_size']:.2f} | {100 * a['empty']:.1f}% | {a['n']} |")
        summary.append(tab.assign(experiment=exp, task=task, model=row))
        by_mag.append(coverage_by_magnitude(sets, labels, mag, n_bins).assign(experiment=exp, task=task, model=row))
    write_text_atomic(out_md, "\n".join(lines) + "\n")

    plt = pyplot()
    mags = pd.concat(by_mag, ignore_index=True)
    panels = sorted({(e, t) for e, t, _ in pooled})
    fig, axes = plt.subplots(2, len(panels), figsize=(3.6 * len(panels), 6.0), squeeze=False)
    for k, (exp, task) in enumerate(panels):
        for row in [m for m in row_names(models) if m in models]:
            s = mags[(mags["experiment"] == exp) & (mags["task"] == task) & (mags["model"] == row)]
            if s.empty:
                continue
            mid = (s["mag_lo"] + s["mag_hi"]) / 2
            axes[0, k].plot(mid, 100 * s["coverage"], marker="o", label=LABELS[row])
            axes[1, k].plot(mid, s["mean_set_size"], marker="o", label=LABELS[row])
        axes[0, k].axhline(100 * (1 - alpha), color="grey", ls="--", lw=0.8)
        axes[0, k].set_title(f"{exp} {task}", fontsize=9)
        axes[0, k].set_ylabel("coverage (%)")
        axes[1, k].set_ylabel("mean set size")
        axes[1, k].set_xlabel("dereddened r (mag)")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"Conformal coverage vs r magnitude, alpha = {alpha:g}; "
                 f"{'SYNTHETIC survey (not SDSS data)' if source == 'synthetic' else source}", fontsize=9)
    fig.tight_layout()
    save_png(fig, out_png, dpi=110)
    return pd.concat(summary, ignore_index=True)
