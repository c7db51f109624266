"""Results tables and figures assembled from the per-run ``metrics.json`` files.

Every number in a table is computed here from the metrics files (mean and sample standard
deviation, ddof=1, over seeds, in percent), except the reference rows of :mod:`sdssclr.published`,
which are printed under their own names with their sources. A missing run is an error naming
it, never a silent gap; a table mixing data sources is refused.
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluate import METRICS
from .io import atomic_path, write_text_atomic
from .published import PUBLISHED, source_of

log = logging.getLogger(__name__)
MODEL_LABELS = {"margnet": "MargNet (ours)", "simclr": "SimCLR fine-tuned + features",
                "simclr-linear": "SimCLR linear probe + features"}


class MissingRunError(FileNotFoundError):
    pass


def collect(paths) -> pd.DataFrame:
    rows, missing = [], []
    for p in map(Path, paths):
        if not p.exists():
            missing.append(str(p))
            continue
        m = json.loads(p.read_text())
        rows.append({k: m[k] for k in ("experiment", "task", "model", "seed", "source", *METRICS)}
                    | {"n_test": m["n_test"], "n_train": m.get("n_train"), "label_fraction": m.get("label_fraction", 1.0),
                       "confusion_matrix": m["confusion_matrix"], "class_names": m["class_names"]})
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
    std = 0.0 if np.isnan(std) else std
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def header(source: str, seeds, title: str) -> list[str]:
    today = datetime.date.today().isoformat()
    lines = [f"# {title}", ""]
    if source == "synthetic":
        lines += ["> **SYNTHETIC SURVEY, NOT SDSS DATA.** These numbers come from the workflow's embedded offline",
                  "> synthetic survey (a demo and a software test). They say nothing about SDSS; do not quote",
                  "> them as survey results.", ""]
    lines += [f"- Data source: **{'synthetic survey (sdssclr)' if source == 'synthetic' else source}**",
              f"- Seeds: {len(seeds)} ({', '.join(map(str, seeds))}); mean ± sample standard deviation over seeds, in %",
              f"- Generated: {today}",
              "- Metrics: accuracy, precision and recall macro-averaged over classes (scikit-learn `average=\"macro\"`)", ""]
    return lines


def result_rows(summary: pd.DataFrame, experiments, tasks, models) -> list[str]:
    lines = ["| Exp | Task | Model | Accuracy | Precision | Recall | Seeds |", "|---|---|---|---|---|---|---|"]
    s = summary.set_index(["experiment", "task", "model"])
    for e in experiments:
        for t in tasks:
            for m in models:
                r = s.loc[(e, t, m)]
                lines.append(f"| {e} | {t} | {MODEL_LABELS.get(m, m)} | {fmt(r.accuracy_mean, r.accuracy_std)} | "
                             f"{fmt(r.precision_mean, r.precision_std)} | {fmt(r.recall_mean, r.recall_std)} | "
                             f"{int(r.accuracy_count)} |")
    return lines


def published_rows(experiments, tasks) -> list[str]:
    lines = ["| Exp | Task | Model (published) | Accuracy | Precision | Recall | Source |", "|---|---|---|---|---|---|---|"]
    for e in experiments:
        for t in tasks:
            for model, (a, p, r) in PUBLISHED.get((e, t), {}).items():
                lines.append(f"| {e} | {t} | {model} | {a:.1f} | {p:.1f} | {r:.1f} | {source_of(model)} |")
    return lines


def write_results_table(metric_paths, out, *, experiments, tasks, models, seeds, title) -> pd.DataFrame:
    df = collect(metric_paths)
    check_complete(df, experiments, tasks, models, seeds)
    source = single_source(df)
    summary = summarise(df)
    lines = header(source, seeds, title)
    lines += ["## This workflow", ""] + result_rows(summary, experiments, tasks, models)
    lines += ["", "Experiment 3 evaluates the experiment-1 models on faint+compact test objects none of which is in",
              "experiment 1's train or validation split (no retraining).", ""]
    lines += ["## Published reference rows (SDSS DR16; not produced by this workflow)", ""]
    lines += published_rows(experiments, tasks) + [""]
    write_text_atomic(out, "\n".join(lines))
    log.info("wrote %s (%d runs, source %s)", out, len(df), source)
    return summary


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (jobs run without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path, dpi: int) -> None:
    """Write a figure atomically and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    _pyplot().close(fig)


def write_label_efficiency(metric_paths, out_md, out_png, *, models, fractions, seeds, task) -> pd.DataFrame:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    plt = _pyplot()
    df = collect(metric_paths)
    source = single_source(df)
    have = set(zip(df["model"], df["label_fraction"].round(6), df["seed"]))
    want = {(m, round(f, 6), s) for m in models for f in fractions for s in seeds}
    if want - have:
        raise MissingRunError("label-efficiency runs missing: " + ", ".join(f"{m}/frac{f}/seed{s}" for m, f, s in sorted(want - have)))
    g = df.groupby(["model", "label_fraction"])
    summ = g.agg(n_train=("n_train", "mean"), acc=("accuracy", "mean"), acc_std=("accuracy", "std"),
                 runs=("accuracy", "count")).reset_index()
    lines = header(source, seeds, f"Label efficiency on experiment 1, task {task}")
    lines += ["| Model | Label fraction | Labelled training objects | Accuracy | Seeds |", "|---|---|---|---|---|"]
    for m in models:
        for f in sorted(fractions):
            r = summ[(summ["model"] == m) & np.isclose(summ["label_fraction"], f)].iloc[0]
            lines.append(f"| {MODEL_LABELS.get(m, m)} | {f:g} | {r.n_train:.0f} | {fmt(r.acc, r.acc_std)} | {int(r.runs)} |")
    write_text_atomic(out_md, "\n".join(lines + [""]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in models:
        s = summ[summ["model"] == m].sort_values("n_train")
        ax.errorbar(s["n_train"], 100 * s["acc"], yerr=100 * s["acc_std"].fillna(0), marker="o", capsize=3,
                    label=MODEL_LABELS.get(m, m))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sorted(set(summ["n_train"].round().astype(int))))
    ax.set_xlabel("labelled training objects")
    ax.set_ylabel(f"{task} test accuracy (%)")
    ax.set_title(f"exp1 {task}, {'SYNTHETIC survey' if source == 'synthetic' else source}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_png(fig, out_png, dpi=120)
    return summ


def write_confusion_plot(metric_paths, out_png, *, experiment, task, models) -> None:
    plt = _pyplot()
    df = collect(metric_paths)
    source = single_source(df)
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.4), squeeze=False)
    for ax, m in zip(axes[0], models):
        sub = df[df["model"] == m]
        if sub.empty:
            raise MissingRunError(f"no runs of {m} for {experiment} {task}")
        cm = np.sum([np.asarray(c) for c in sub["confusion_matrix"]], axis=0)
        names = sub["class_names"].iloc[0]
        frac = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{cm[i, j]}\n{100 * frac[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if frac[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{MODEL_LABELS.get(m, m)}\n({len(sub)} seeds summed)", fontsize=8)
    fig.suptitle(f"{experiment} {task}: {'SYNTHETIC survey' if source == 'synthetic' else source}", fontsize=9)
    fig.tight_layout()
    _save_png(fig, out_png, dpi=110)
