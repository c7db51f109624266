"""Results tables assembled from the per-run ``metrics.json`` and ``predictions.parquet``.

Every number in a table is computed here from those files. A run is one model seed on one split
seed's sample; each row gives the mean and sample standard deviation (ddof=1) over all its runs,
in percent ("n/a" with one run), and its accuracy difference to the baseline (MargNet) with an
interval over test objects, seeds and split seeds (:func:`sdssclr.results.stats.run_difference`).
Table 1 opens with the primary endpoint (``comparison.primary``: a pretrained model against its
random-init control) and a verdict per experiment x task computed from that interval, then what
the unlabelled objects add (a model against the same model pretrained on labelled objects only);
it closes with the hyper-parameters each run chose on its validation split. The
reference rows of :mod:`sdssclr.results.published` are printed under their own names with their
sources. A missing run is an error naming it, never a silent gap; a table mixing data sources is
refused.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_text_atomic
from ..learn.metrics import METRICS
from ..learn.runfiles import read_predictions
from ..registry import LABELS, MODELS, row_names
from .published import PUBLISHED, citation
from .stats import Difference, conditional_on, run_difference

log = logging.getLogger(__name__)


class MissingRunError(FileNotFoundError):
    pass


#: Hyper-parameters a run chooses on its validation split, shown in the tables: the encoder
#: learning rate of the image + feature models and the linear probe's inverse regularisation C.
CHOSEN = ("encoder_lr", "C")


def collect(paths) -> pd.DataFrame:
    """One row per run and table row: a run's model, then each of its components (same run)."""
    rows, missing = [], []
    for p in map(Path, paths):
        if not p.exists():
            missing.append(str(p))
            continue
        m = json.loads(p.read_text())
        if "split_seed" not in m:
            raise ValueError(f"{p}: no split_seed; it was written before split seeds existed, rerun it")
        common = {k: m[k] for k in ("experiment", "task", "seed", "split_seed", "source")} | {
            "n_train": m.get("n_train"), "n_val": m.get("n_val"), "label_fraction": m.get("label_fraction", 1.0),
            "n_test_parent_fitted": m.get("n_test_parent_fitted", 0), "run": str(p.parent)}
        chosen = {k: v for k, v in (m.get("training") or {}).items() if k in CHOSEN}
        for name, part in {m["model"]: m, **m.get("components", {})}.items():
            rows.append(common | {"model": name, "n_test": part["n_test"], "confusion_matrix": part["confusion_matrix"],
                                  "class_names": part["class_names"], "chosen": chosen if name == m["model"] else {}}
                        | {k: part[k] for k in METRICS})
    if missing:
        raise MissingRunError("missing run results:\n  " + "\n  ".join(missing))
    return pd.DataFrame(rows)


def check_complete(df: pd.DataFrame, experiments, tasks, models, seeds, split_seeds) -> None:
    have = set(zip(df["experiment"], df["task"], df["model"], df["split_seed"], df["seed"]))
    want = {(e, t, m, p, s) for e in experiments for t in tasks for m in models for p in split_seeds for s in seeds}
    if want - have:
        gaps = sorted(want - have)
        raise MissingRunError("runs missing from the table: " + ", ".join(
            f"{e}/{t}/{m}/split{p}/seed{s}" for e, t, m, p, s in gaps))


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


def fmt_diff(diff: Difference | None) -> str:
    """``+1.2 [-0.3, +2.7]`` in percentage points, with ``*`` when the interval excludes zero."""
    if diff is None:
        return ""
    d, lo, hi = (100 * v for v in diff)
    mark = " *" if lo > 0 or hi < 0 else ""
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]{mark}"


def header(source: str, seeds, split_seeds, title: str) -> list[str]:
    today = datetime.date.today().isoformat()
    lines = [f"# {title}", ""]
    if source == "synthetic":
        lines += ["> **SYNTHETIC SURVEY, NOT SDSS DATA.** These numbers come from the workflow's embedded offline",
                  "> synthetic survey (a demo and a software test). They say nothing about SDSS; do not quote",
                  "> them as survey results.", ""]
    runs = len(seeds) * len(split_seeds)
    spread = "mean ± sample standard deviation over the runs" if runs > 1 else "one run, so no spread (n/a)"
    lines += [f"- Data source: **{'synthetic survey (sdssclr)' if source == 'synthetic' else source}**",
              f"- Runs: {len(seeds)} seed(s) ({', '.join(map(str, seeds))}) x {len(split_seeds)} split seed(s) "
              f"({', '.join(map(str, split_seeds))}); {spread}, in %. Each split seed draws its own sample and "
              "splits from the same pools.",
              f"- Generated: {today}",
              "- Metrics: accuracy, precision and recall macro-averaged over classes (scikit-learn `average=\"macro\"`)", ""]
    return lines


def interval_note(comparison: dict, seeds, split_seeds) -> str:
    """How the intervals were made, and what they hold fixed."""
    held = {"trained models": "the trained models and the split (one seed: training randomness is not in the "
                              "interval)",
            "split": "the split (one split seed: the choice of objects is not in the interval)",
            "": ""}[conditional_on(len(seeds), len(split_seeds))]
    return (f"{100 * comparison['level']:.0f}% intervals over the test objects, the seeds and the split seeds "
            "(variance of each part estimated from the runs, Student's t with Welch-Satterthwaite degrees of "
            "freedom; `sdssclr.results.stats.run_difference`)" + (f", *conditional on {held}*" if held else ""))


def comparison_note(comparison: dict, seeds, split_seeds) -> list[str]:
    return [f"\"vs {LABELS[comparison['baseline']]}\": accuracy difference to it in percentage points, mean over "
            f"the runs (both models of a run see the same test objects), with its "
            f"{interval_note(comparison, seeds, split_seeds)}; * marks an interval that excludes zero.", ""]


def sorted_correct(path, row: str, classes) -> tuple[np.ndarray, np.ndarray]:
    """(objID, correct?) of table row ``row`` on the test objects of a predictions file, sorted by
    objID. Read once per version of the file: every row of a table is compared with the baseline,
    and the endpoint sections compare the same runs again."""
    st = os.stat(path)
    return _sorted_correct(str(path), (st.st_mtime_ns, st.st_size), row, tuple(classes))


@functools.lru_cache(maxsize=1024)
def _sorted_correct(path: str, version: tuple, row: str, classes: tuple) -> tuple[np.ndarray, np.ndarray]:
    objid, truth, pred = read_predictions(path, row, list(classes))
    order = np.argsort(objid)
    return objid[order], truth[order] == pred[order]


def paired_difference(df: pd.DataFrame, row: str, baseline: str, comparison: dict) -> Difference:
    """Accuracy difference of table row ``row`` to ``baseline`` over the runs in ``df`` (one
    experiment x task [x label budget]): per split seed the same seeds and the same test objects,
    matched by objID."""
    groups = {}
    for split, runs in df.groupby("split_seed"):
        correct = {}
        for name in (row, baseline):
            per_seed = []
            for _, r in runs[runs["model"] == name].sort_values("seed").iterrows():
                per_seed.append((r["seed"], *sorted_correct(Path(r["run"]) / "predictions.parquet", name,
                                                            r["class_names"])))
            correct[name] = per_seed
        a, b = correct[row], correct[baseline]
        if [s for s, _, _ in a] != [s for s, _, _ in b]:
            raise MissingRunError(f"{row} and {baseline} were not run with the same seeds on split seed {split} "
                                  f"({[s for s, _, _ in a]} vs {[s for s, _, _ in b]})")
        for (_, ia, _), (_, ib, _) in zip(a, b):
            if not np.array_equal(ia, ib):
                raise ValueError(f"{row} and {baseline} were not evaluated on the same test objects (split seed {split})")
        groups[split] = (np.stack([c for _, _, c in a]), np.stack([c for _, _, c in b]))
    return run_difference(groups, level=comparison["level"])


def paired_rows(keys, model: str, against: str, comparison: dict, label: str) -> list[str]:
    """``model`` against ``against`` for each key (experiment x task, or label budget) of ``keys``
    -> runs: both accuracies, the difference with its interval and the interval's verdict."""
    margin = comparison["equivalence_margin"] / 100
    lines = [f"| {label} | {LABELS[model]} | {LABELS[against]} | difference (points) | verdict |",
             "|---|---|---|---|---|"]
    for key, runs in keys:
        a, b = (runs[runs["model"] == m]["accuracy"].mean() for m in (model, against))
        diff = paired_difference(runs, model, against, comparison)
        lines.append(f"| {key} | {100 * a:.1f} | {100 * b:.1f} | {fmt_diff(diff)} | {diff.verdict(margin)} |")
    return lines


def endpoint_sections(keys, models, comparison: dict, label: str, seeds, split_seeds) -> list[str]:
    """The primary endpoint (``comparison.primary``: does pretraining help?) and, for each model
    pretrained on labelled objects only, what the unlabelled objects add; each for every key."""
    p = comparison["primary"]
    note = interval_note(comparison, seeds, split_seeds)
    lines = []
    if p["model"] in models and p["control"] in models:
        lines += ["## Primary endpoint: does pretraining help?", "",
                  f"{LABELS[p['model']]} against the same network from random initialisation, trained on the same "
                  f"labels with the same recipe: accuracy (%, mean over the runs) and the difference in points with "
                  f"its {note}.", ""]
        lines += paired_rows(keys, p["model"], p["control"], comparison, label) + ["", verdict_note(comparison), ""]
    for m in models:
        full = MODELS[m].ablates if m in MODELS else ""
        if full and full in models:
            lines += ["## What the unlabelled objects add", "",
                      f"{LABELS[full]}, its encoder pretrained on the labelled training objects and the unlabelled "
                      f"objects, against the same model pretrained on the labelled objects only: same network, recipe "
                      f"and labels; difference with its {note}.", ""]
            lines += paired_rows(keys, full, m, comparison, label) + [""]
    return lines


def chosen_rows(df: pd.DataFrame, experiments, tasks, models) -> list[str]:
    """The hyper-parameters each model chose on the validation split (:data:`CHOSEN`), with how
    many runs chose each value; experiments that evaluate another experiment's models have none."""
    lines = []
    for e in experiments:
        for t in tasks:
            for m in models:
                runs = df[(df["experiment"] == e) & (df["task"] == t) & (df["model"] == m)]
                values: dict[str, Counter] = {}
                for chosen in runs["chosen"]:
                    for k, v in chosen.items():
                        values.setdefault(k, Counter())[v] += 1
                for k, counts in values.items():
                    text = ", ".join(f"{v:g} ({n} of {len(runs)} runs)" for v, n in sorted(counts.items()))
                    lines.append(f"| {e} | {t} | {LABELS[m]} | `{k}` | {text} |")
    if not lines:
        return []
    return ["## Chosen on the validation split", "",
            "Each value was tried with the same budget, for a pretrained model and its control alike; the one with "
            "the best validation score was kept (the test split chooses nothing).", "",
            "| Exp | Task | Model | Key | Value chosen |", "|---|---|---|---|---|"] + lines + [""]


def verdict_note(comparison: dict) -> str:
    m = comparison["equivalence_margin"]
    return (f"Verdicts, from the interval: **benefit** when it lies above zero; **no harm** when it lies within "
            f"±{m:g} points (`comparison.equivalence_margin`); **harm** when it lies below zero; else "
            "**inconclusive**.")


def result_rows(df: pd.DataFrame, summary: pd.DataFrame, experiments, tasks, models, comparison) -> list[str]:
    base = comparison["baseline"]
    lines = [f"| Exp | Task | Model | Accuracy | Precision | Recall | vs {LABELS[base]} | Runs |",
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
    "models also see the stamps (centred crop), like MargNet's CNN. Every pretrained row has its control: the same "
    "network from a random-init encoder with the same recipe (`twotower` for `simclr`, `linear-random` for "
    "`simclr-linear`, `margformer` for `simclr-margformer`); the difference between the two rows is what "
    "pretraining adds. Each image + feature model chose its encoder learning rate on the validation split from the "
    "same grid as its control. The labelled-only row pretrains its encoder on the labelled training objects alone; "
    "every other pretrained row's encoder also saw the unlabelled objects of its regime (experiment 3's: faint ones).",
]


def transfer_note(df: pd.DataFrame) -> list[str]:
    """How the experiment reusing another's models chose its test objects: none a parent model was
    fitted on, or (``keep_parent_overlap``) how many of them, per run, as a warning."""
    fitted = df[df["n_test_parent_fitted"] > 0]
    if fitted.empty:
        return ["Experiment 3 evaluates the experiment-1 models on faint+compact test objects none of which is in",
                "experiment 1's train or validation split (no retraining)."]
    counts = fitted.groupby(["experiment", "task"])["n_test_parent_fitted"].agg(["min", "max"])
    parts = [f"{e} {t}: {lo}" + ("" if lo == hi else f" to {hi}") for (e, t), (lo, hi) in counts.iterrows()]
    return ["> **Experiment 3 keeps the original experiment 3's leak** (`keep_parent_overlap: true`, an exact",
            "> replication of the paper's test set): test objects the experiment-1 models were trained or validated",
            f"> on, per run: {'; '.join(parts)}. Their accuracies are optimistic; do not read them as transfer."]


def write_results_table(metric_paths, out, *, experiments, tasks, models, seeds, split_seeds, title,
                        comparison) -> pd.DataFrame:
    df = collect(metric_paths)
    check_complete(df, experiments, tasks, models, seeds, split_seeds)
    source = single_source(df)
    summary = summarise(df)
    lines = header(source, seeds, split_seeds, title)
    keys = [(f"{e} {t}", df[(df["experiment"] == e) & (df["task"] == t)]) for e in experiments for t in tasks]
    lines += endpoint_sections(keys, models, comparison, "Exp Task", seeds, split_seeds)
    lines += ["## This workflow", ""] + result_rows(df, summary, experiments, tasks, models, comparison)
    lines += [""] + comparison_note(comparison, seeds, split_seeds)
    lines += transfer_note(df) + [""]
    lines += [f"- {d}" for d in DEPARTURES] + [""]
    lines += chosen_rows(df, experiments, tasks, models)
    lines += ["## Published reference rows (SDSS DR16; not produced by this workflow)", ""]
    lines += published_rows(experiments, tasks) + [""]
    write_text_atomic(out, "\n".join(lines))
    log.info("wrote %s (%d runs, source %s)", out, len(df), source)
    return summary


def label_efficiency_summary(metric_paths, *, models, fractions, seeds, split_seeds,
                             comparison) -> tuple[pd.DataFrame, str]:
    """Per model and label fraction: labels used, mean accuracy and its spread over seeds, and the
    paired interval against the baseline at the same budget; and the data source."""
    df = collect(metric_paths)
    source = single_source(df)
    base = comparison["baseline"]
    rows = row_names(models)
    df = df[df["model"].isin(rows)]
    df["label_fraction"] = df["label_fraction"].round(6)
    have = set(zip(df["model"], df["label_fraction"], df["split_seed"], df["seed"]))
    want = {(m, round(f, 6), p, s) for m in rows for f in fractions for p in split_seeds for s in seeds}
    if want - have:
        raise MissingRunError("label-efficiency runs missing: " + ", ".join(
            f"{m}/frac{f}/split{p}/seed{s}" for m, f, p, s in sorted(want - have)))
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
    summ.attrs["runs"] = df  # the primary endpoint per budget needs the runs themselves
    return summ, source


def write_label_efficiency_table(summ: pd.DataFrame, source: str, out_md, *, experiment, models, fractions, seeds,
                                 split_seeds, task, comparison) -> None:
    """The label-efficiency table of :func:`label_efficiency_summary`, opening with the primary
    endpoint per label budget when both of its models are in the study."""
    base = comparison["baseline"]
    rows = row_names(models)
    lines = header(source, seeds, split_seeds, f"Label efficiency on {experiment}, task {task}")
    runs = summ.attrs["runs"]
    keys = [(f"{f:g}", runs[np.isclose(runs["label_fraction"], f)]) for f in sorted(fractions)]
    endpoints = endpoint_sections(keys, rows, comparison, "Label fraction", seeds, split_seeds)
    if endpoints:
        lines += endpoints + ["## Every model", ""]
    lines += ["Each budget keeps the same fraction of the training *and* the validation labels (stratified, at "
              "least one training object and a floor of validation objects per class), so the label count is "
              "every label a model used: fitting, early stopping, the probe's C and MargNet's fusion head.", ""]
    lines += [f"| Model | Label fraction | Labels used (train + val) | Accuracy | vs {LABELS[base]} | Runs |",
              "|---|---|---|---|---|---|"]
    for m in rows:
        for f in sorted(fractions):
            r = summ[(summ["model"] == m) & np.isclose(summ["label_fraction"], f)].iloc[0]
            lines.append(f"| {LABELS[m]} | {f:g} | {r.n_labels:.0f} | {fmt(r.acc, r.acc_std)} | {fmt_diff(r['diff'])} | "
                         f"{int(r.runs)} |")
    lines += [""] + comparison_note(comparison, seeds, split_seeds)
    write_text_atomic(out_md, "\n".join(lines))
