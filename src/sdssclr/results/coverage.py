"""The conformal coverage report: do the prediction sets hold the true class as often as promised?

Per experiment x task x table row, the split-conformal sets of :mod:`sdssclr.learn.conformal`
are calibrated on each run's ``calib`` objects and evaluated on its test objects, pooled over
seeds: empirical coverage and mean set size per class and overall, with a tolerance band
(:func:`tolerance`) that marks a coverage below target (or above its finite-sample ceiling)
beyond chance, and coverage against r magnitude. An experiment testing another's models on
another dataset (experiment 3) is calibrated on labelled objects of its test dataset; the
parent's calibration objects (``calib_source``) give a second row, the shift diagnostic: sets
calibrated on another dataset carry no guarantee.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..catalog import TASK_CLASSES
from ..experiments import CALIBRATION, SOURCE_CALIBRATION
from ..io import read_parquet_metadata, write_text_atomic
from ..learn.conformal import prediction_sets, thresholds
from ..registry import LABELS, row_names
from .plotting import pyplot, save_png
from .stats import equal_count_bins


def coverage_table(sets: np.ndarray, labels: np.ndarray, classes, alpha: float, objid=None) -> pd.DataFrame:
    """Per true class and overall: objects, empirical coverage and mean set size. With ``objid``
    (the rows pool several seeds' sets for the same objects) ``n`` counts distinct objects: the
    seeds of one object are not independent draws."""
    labels = np.asarray(labels, dtype=np.int64)
    objid = np.arange(len(labels)) if objid is None else np.asarray(objid)
    covered = sets[np.arange(len(labels)), labels]
    size = sets.sum(1)
    rows = [{"class": name, "n": len(np.unique(objid[labels == c])), "coverage": float(covered[labels == c].mean()),
             "mean_set_size": float(size[labels == c].mean()), "empty": float((size[labels == c] == 0).mean())}
            for c, name in enumerate(classes) if (labels == c).any()]
    rows.append({"class": "all", "n": len(np.unique(objid)), "coverage": float(covered.mean()),
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


def tolerance(n: int, alpha: float, n_cal: int | None = None, z: float = 3.0) -> tuple[float, float]:
    """How far below ``1 - alpha`` and how far above it the empirical coverage of ``n`` test
    objects may fall by chance (``z`` sigma): the binomial spread of the test objects plus, with
    ``n_cal`` calibration objects, the spread of the coverage a finite calibration set gives
    (Beta-distributed, variance about ``alpha (1 - alpha) / (n_cal + 2)``). Split conformal
    guarantees at least ``1 - alpha`` and at most ``1 - alpha + 1 / (n_cal + 1)``, so that
    finite-sample excess widens the band above the target only."""
    var = alpha * (1 - alpha) / max(n, 1)
    excess = 0.0
    if n_cal is not None:
        var += alpha * (1 - alpha) / (n_cal + 2)
        excess = 1.0 / (n_cal + 1)
    spread = z * math.sqrt(var)
    return spread, spread + excess


#: Calibration sets a predictions file can hold, and how the report names them.
CALIBRATIONS = {CALIBRATION: "own dataset", SOURCE_CALIBRATION: "parent's dataset (shift diagnostic, no guarantee)"}


def run_sets(predictions: pd.DataFrame, row: str, classes, alpha: float, mondrian: bool = True,
             calibration: str = CALIBRATION):
    """(labels, sets, r_mag, calibration objects per class, objID) of the test objects of one
    run's predictions file for table row ``row``, calibrated on its ``calibration`` objects."""
    lookup = {c: i for i, c in enumerate(classes)}
    cols = [f"{row}.p_{c}" for c in classes]
    cal = predictions[predictions["split"] == calibration]
    test = predictions[predictions["split"] == "test"]
    if cal.empty:
        raise ValueError(f"{row}: no {calibration!r} objects in the predictions (conformal.calibration_fraction "
                         "is 0?)")
    cal_labels = cal["class"].map(lookup).to_numpy()
    t = thresholds(cal[cols].to_numpy(), cal_labels, alpha, mondrian)
    return (test["class"].map(lookup).to_numpy(), prediction_sets(test[cols].to_numpy(), t),
            test["r_mag"].to_numpy(), np.bincount(cal_labels, minlength=len(classes)), test["objID"].to_numpy())


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
            if f"{row}.p_{classes[0]}" not in df.columns:
                continue
            for cal in CALIBRATIONS:
                if cal == CALIBRATION or (df["split"] == cal).any():
                    pooled.setdefault((meta["experiment"], meta["task"], row, cal), []).append(
                        run_sets(df, row, classes, alpha, mondrian, cal))
    if len(sources) != 1:
        raise ValueError(f"predictions from several sources: {sorted(sources)}")
    source = sources.pop()
    kind = "class-conditional (Mondrian)" if mondrian else "marginal"
    lines = [f"# Conformal prediction sets, alpha = {alpha:g} ({kind})", ""]
    if source == "synthetic":
        lines += ["> **SYNTHETIC survey: not SDSS data.**", ""]
    lines += [f"Calibrated on the `calib` objects of each experiment, evaluated on its test split, pooled over "
              f"seeds: for an experiment with its own dataset they are carved out of its validation split (no model "
              f"was fitted or early-stopped on them); experiment 3 draws them from its own test dataset's pool (none "
              f"a test object), so calibration and test objects are exchangeable. Its rows calibrated on experiment "
              f"1's objects instead are a shift diagnostic: sets calibrated on another dataset have no guarantee. "
              f"Target coverage {100 * (1 - alpha):.0f}%; `!` marks a coverage below it, `^` one above its "
              f"finite-sample ceiling 1 - alpha + 1/(n_cal + 1), by more than the 3-sigma spread of the test "
              f"objects (counted once, however many seeds) and of a finite calibration set "
              f"(`sdssclr.results.coverage.tolerance`).", "",
              "A set can be empty (no class is plausible at this level: the `1 - p` score of split conformal "
              "allows it); the column 'Empty' gives their share, which pulls the mean set size below 1.", "",
              "| Experiment | Task | Model | Calibrated on | Coverage per class | Coverage (all) | Mean set size | "
              "Empty | Test objects |",
              "|---|---|---|---|---|---|---|---|---|"]
    summary, by_mag = [], []
    order = list(CALIBRATIONS)
    for (exp, task, row, cal), parts in sorted(pooled.items(), key=lambda kv: (
            kv[0][0], kv[0][1], order.index(kv[0][3]), row_names(models).index(kv[0][2]))):
        labels = np.concatenate([p[0] for p in parts])
        sets = np.concatenate([p[1] for p in parts])
        mag = np.concatenate([p[2] for p in parts])
        objid = np.concatenate([p[4] for p in parts])
        n_cal = parts[0][3]  # the same calibration objects for every seed
        classes = TASK_CLASSES[task]
        tab = coverage_table(sets, labels, classes, alpha, objid)
        # the calibration objects behind each row's threshold: its class's (Mondrian), or all of them
        cal_of = {c: int(n_cal[k]) if mondrian else int(n_cal.sum()) for k, c in enumerate(classes)}
        cal_of["all"] = int(n_cal.min() if mondrian else n_cal.sum())
        bands = [tolerance(int(n), alpha, cal_of[c]) for c, n in zip(tab["class"], tab["n"])]
        tab["tol_below"], tab["tol_above"] = [b[0] for b in bands], [b[1] for b in bands]
        tab["below"] = tab["coverage"] < 1 - alpha - tab["tol_below"]
        tab["above"] = tab["coverage"] > 1 - alpha + tab["tol_above"]
        mark = lambda r: "!" if r["below"] else "^" if r["above"] else ""  # noqa: E731
        per = ", ".join(f"{r['class']} {100 * r['coverage']:.1f}{mark(r)}"
                        for _, r in tab.iterrows() if r["class"] != "all")
        a = tab[tab["class"] == "all"].iloc[0]
        lines.append(f"| {exp} | {task} | {LABELS[row]} | {CALIBRATIONS[cal]} | {per} | "
                     f"{100 * a['coverage']:.1f}{mark(a)} | {a['mean_set_size']:.2f} | {100 * a['empty']:.1f}% | "
                     f"{a['n']} |")
        summary.append(tab.assign(experiment=exp, task=task, model=row, calibration=cal))
        if cal == CALIBRATION:
            by_mag.append(coverage_by_magnitude(sets, labels, mag, n_bins).assign(experiment=exp, task=task,
                                                                                  model=row))
    write_text_atomic(out_md, "\n".join(lines) + "\n")

    plt = pyplot()
    mags = pd.concat(by_mag, ignore_index=True)
    panels = sorted({(e, t) for e, t, _, _ in pooled})
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
