"""Results tables assembled from the per-run ``metrics.json`` and ``predictions.parquet``.

Every number in a table is computed here from those files: mean and sample standard deviation
(ddof=1) over seeds, in percent ("n/a" with one seed), and each row's accuracy difference to the
baseline (MargNet) with a paired bootstrap interval over the shared test objects, pooled over
seeds (:func:`sdssclr.results.stats.paired_bootstrap`). The reference rows of
:mod:`sdssclr.results.published` are printed under their own names with their sources. A missing run is an error naming it, never
a silent gap; a table mixing data sources is refused.
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_text_atomic
from ..learn.metrics import METRICS
from ..learn.runfiles import read_predictions
from ..registry import LABELS, row_names
from .published import PUBLISHED, citation
from .stats import paired_bootstrap

log = logging.getLogger(__name__)


class MissingRunError(FileNotFoundError):
    pass


def collect(paths) -> pd.DataFrame:
    """One row per run and table row: a run's model, then each of its components (same run)."""
    rows, missing = [], []
    for p in map(Path, paths):
        if not p.exists():
            missing.append(str(p))
            continue
        m = json.loads(p.read_text())
        common = {k: m[k] for k in ("experiment", "task", "seed", "source")} | {
            "n_train": m.get("n_train"), "n_val": m.get("n_val"), "label_fraction": m.get("label_fraction", 1.0),
            "run": str(p.parent)}
        for name, part in {m["model"]: m, **m.get("components", {})}.items():
            rows.append(common | {"model": name, "n_test": part["n_test"], "confusion_matrix": part["confusion_matrix"],
                                  "class_names": part["class_names"]} | {k: part[k] for k in METRICS})
    if missing:
        raise MissingRunError("missing run results:\n  " + "\n  ".join(missing))
    return pd.DataFrame(rows)


def check_complete(df: pd.DataFrame, experiments, tasks, models, seeds) -> None:
    have = set(zip(df["experiment"], df["task"], df["model"], df["seed"]))
    want = {(e, t, m, s) for e in experiments for t in tasks for m in models for s in seeds}
    if want - have:
        gaps = sorted(want - have)
        raise MissingRunError("runs missing from the table: " + ", ".join(f"{e}/{t}/{m}/seed{s}" for e, t, m, s in gaps))


def single_source(df: pd.DataFrame) -> str:
    sources = sorted(set(df["source"]))
    if len(sources) != 1:
        raise ValueError(f"results from different data sources cannot share a table: {sources}")
    return sources[0]


def summarise(df: pd.DataFrame, by=("experiment", "task", "model")) -> pd.DataFrame:
    g = df.groupby(list(by), sort=False)
    out = g[list(METRICS)].agg(["mean", "std", "count"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    return out.reset_index()


def fmt(mean, std) -> str:
    """``mean ± std`` in percent; the spread of a single run is not known: ``± n/a``."""
    spread = "n/a" if np.isnan(std) else f"{100 * std:.1f}"
    return f"{100 * mean:.1f} ± {spread}"


def fmt_diff(diff: tuple[float, float, float] | None) -> str:
    """``+1.2 [-0.3, +2.7]`` in percentage points, with ``*`` when the interval excludes zero."""
    if diff is None:
        return ""
    d, lo, hi = (100 * v for v in diff)
    mark = " *" if lo > 0 or hi < 0 else ""
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]{mark}"


def header(source: str, seeds, title: str) -> list[str]:
    today = datetime.date.today().isoformat()
    lines = [f"# {title}", ""]
    if source == "synthetic":
        lines += ["> **SYNTHETIC SURVEY, NOT SDSS DATA.** These numbers come from the workflow's embedded offline",
                  "> synthetic survey (a demo and a software test). They say nothing about SDSS; do not quote",
                  "> them as survey results.", ""]
    spread = ("mean ± sample standard deviation over seeds" if len(seeds) > 1
              else "one seed, so no spread over seeds (n/a)")
    lines += [f"- Data source: **{'synthetic survey (sdssclr)' if source == 'synthetic' else source}**",
              f"- Seeds: {len(seeds)} ({', '.join(map(str, seeds))}); {spread}, in %. The spread covers training "
              "randomness only: the samples and splits are fixed by `split_seed`.",
              f"- Generated: {today}",
              "- Metrics: accuracy, precision and recall macro-averaged over classes (scikit-learn `average=\"macro\"`)", ""]
    return lines


def comparison_note(comparison: dict) -> list[str]:
    return [f"\"vs {LABELS[comparison['baseline']]}\": accuracy difference to it in percentage points, pooled over "
            f"seeds, with its {100 * comparison['level']:.0f}% interval from a paired bootstrap over the shared test "
            f"objects ({comparison['resamples']} resamples, seed {comparison['seed']}); * marks an interval that "
            "excludes zero.", ""]


def paired_difference(df: pd.DataFrame, row: str, baseline: str, comparison: dict) -> tuple[float, float, float]:
    """Accuracy difference of table row ``row`` to ``baseline`` over the runs in ``df`` (one
    experiment x task [x label budget]): the same seeds and the same test objects, matched by objID."""
    correct = {}
    for name in (row, baseline):
        runs = df[df["model"] == name].sort_values("seed")
        per_seed = []
        for _, r in runs.iterrows():
            classes = r["class_names"]
            objid, truth, pred = read_predictions(Path(r["run"]) / "predictions.parquet", name, classes)
            order = np.argsort(objid)
            per_seed.append((objid[order], truth[order] == pred[order]))
        correct[name] = (list(runs["seed"]), per_seed)
    (seeds_a, a), (seeds_b, b) = correct[row], correct[baseline]
    if seeds_a != seeds_b:
        raise MissingRunError(f"{row} and {baseline} were not run with the same seeds ({seeds_a} vs {seeds_b})")
    for (ia, _), (ib, _) in zip(a, b):
        if not np.array_equal(ia, ib):
            raise ValueError(f"{row} and {baseline} were not evaluated on the same test objects")
    return paired_bootstrap(np.stack([c for _, c in a]), np.stack([c for _, c in b]), resamples=comparison["resamples"],
                            seed=comparison["seed"], level=comparison["level"])


def result_rows(df: pd.DataFrame, summary: pd.DataFrame, experiments, tasks, models, comparison) -> list[str]:
    base = comparison["baseline"]
    lines = [f"| Exp | Task | Model | Accuracy | Precision | Recall | vs {LABELS[base]} | Seeds |",
             "|---|---|---|---|---|---|---|---|"]
    s = summary.set_index(["experiment", "task", "model"])
    for e in experiments:
        for t in tasks:
            runs = df[(df["experiment"] == e) & (df["task"] == t)]
            for m in row_names(models):
                r = s.loc[(e, t, m)]
                diff = None if m == base else paired_difference(runs, m, base, comparison)
                lines.append(f"| {e} | {t} | {LABELS[m]} | {fmt(r.accuracy_mean, r.accuracy_std)} | "
                             f"{fmt(r.precision_mean, r.precision_std)} | {fmt(r.recall_mean, r.recall_std)} | "
                             f"{fmt_diff(diff)} | {int(r.accuracy_count)} |")
    return lines


def published_rows(experiments, tasks) -> list[str]:
    lines = ["| Exp | Task | Model (published) | Accuracy | Precision | Recall | Source |", "|---|---|---|---|---|---|---|"]
    for e in experiments:
        for t in tasks:
            for model, (a, p, r) in PUBLISHED.get((e, t), {}).items():
                lines.append(f"| {e} | {t} | {model} | {a:.1f} | {p:.1f} | {r:.1f} | {citation(model)} |")
    return lines


#: What a reader must know about how the models of this workflow differ from their sources.
DEPARTURES = [
    "MargNet follows the released graph and schedules (sidchaini/MargNet) with three departures: the 24 features "
    "are mapped to a normal distribution by their training quantiles (the release fed them raw), the stamps are "
    "arcsinh-scaled per band with training statistics (the release fed raw fluxes), and the fusion head keeps "
    "part of the validation split aside for its early stopping (the release kept the lowest training loss). "
    "Its ANN and CNN rows are the fused model's own members, from the same runs.",
    "The tree, MargNet's ANN and every model with features see the same 24 features; the SimCLR and MargFormer "
    "models also see the stamps (centred crop), like MargNet's CNN. `margformer` is `simclr-margformer`'s network "
    "from random initialisation: the difference between the two rows is what pretraining adds.",
]


def write_results_table(metric_paths, out, *, experiments, tasks, models, seeds, title, comparison) -> pd.DataFrame:
    df = collect(metric_paths)
    check_complete(df, experiments, tasks, models, seeds)
    source = single_source(df)
    summary = summarise(df)
    lines = header(source, seeds, title)
    lines += ["## This workflow", ""] + result_rows(df, summary, experiments, tasks, models, comparison)
    lines += [""] + comparison_note(comparison)
    lines += ["Experiment 3 evaluates the experiment-1 models on faint+compact test objects none of which is in",
              "experiment 1's train or validation split (no retraining).", ""]
    lines += [f"- {d}" for d in DEPARTURES] + [""]
    lines += ["## Published reference rows (SDSS DR16; not produced by this workflow)", ""]
    lines += published_rows(experiments, tasks) + [""]
    write_text_atomic(out, "\n".join(lines))
    log.info("wrote %s (%d runs, source %s)", out, len(df), source)
    return summary


def label_efficiency_summary(metric_paths, *, models, fractions, seeds, comparison) -> tuple[pd.DataFrame, str]:
    """Per model and label fraction: labels used, mean accuracy and its spread over seeds, and the
    paired interval against the baseline at the same budget; and the data source."""
    df = collect(metric_paths)
    source = single_source(df)
    base = comparison["baseline"]
    rows = row_names(models)
    df = df[df["model"].isin(rows)]
    df["label_fraction"] = df["label_fraction"].round(6)
    have = set(zip(df["model"], df["label_fraction"], df["seed"]))
    want = {(m, round(f, 6), s) for m in rows for f in fractions for s in seeds}
    if want - have:
        raise MissingRunError("label-efficiency runs missing: " + ", ".join(f"{m}/frac{f}/seed{s}" for m, f, s in sorted(want - have)))
    df["n_labels"] = df["n_train"] + df["n_val"]
    g = df.groupby(["model", "label_fraction"])
    summ = g.agg(n_labels=("n_labels", "mean"), n_train=("n_train", "mean"), acc=("accuracy", "mean"),
                 acc_std=("accuracy", "std"), runs=("accuracy", "count")).reset_index()
    diffs = {}
    for f in fractions:
        runs = df[np.isclose(df["label_fraction"], f)]
        for m in rows:
            diffs[(m, round(f, 6))] = None if m == base else paired_difference(runs, m, base, comparison)
    summ["diff"] = [diffs[(m, f)] for m, f in zip(summ["model"], summ["label_fraction"])]
    return summ, source


def write_label_efficiency_table(summ: pd.DataFrame, source: str, out_md, *, experiment, models, fractions, seeds,
                                 task, comparison) -> None:
    """The label-efficiency table of :func:`label_efficiency_summary`."""
    base = comparison["baseline"]
    rows = row_names(models)
    lines = header(source, seeds, f"Label efficiency on {experiment}, task {task}")
    lines += ["Each budget keeps the same fraction of the training *and* the validation labels (stratified, at "
              "least one training object and a floor of validation objects per class), so the label count is "
              "every label a model used: fitting, early stopping, the probe's C and MargNet's fusion head.", ""]
    lines += [f"| Model | Label fraction | Labels used (train + val) | Accuracy | vs {LABELS[base]} | Seeds |",
              "|---|---|---|---|---|---|"]
    for m in rows:
        for f in sorted(fractions):
            r = summ[(summ["model"] == m) & np.isclose(summ["label_fraction"], f)].iloc[0]
            lines.append(f"| {LABELS[m]} | {f:g} | {r.n_labels:.0f} | {fmt(r.acc, r.acc_std)} | {fmt_diff(r['diff'])} | "
                         f"{int(r.runs)} |")
    lines += [""] + comparison_note(comparison)
    write_text_atomic(out_md, "\n".join(lines))
