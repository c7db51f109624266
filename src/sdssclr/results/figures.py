"""The figures of the Snakemake report (``snakemake --report``): what an astronomer looks at first.

- pretraining curves per encoder (loss, learning rate, images/s, validation k-NN accuracy);
- a t-SNE map of an encoder's embeddings of its dataset's test objects, coloured by class and by r
  magnitude (scikit-learn's TSNE, at most ``MAP_POINTS`` objects, seeded);
- stamp galleries (gri composite, asinh stretch: astropy's ``make_lupton_rgb``) of the most
  confident and of the misclassified test objects of each class, for MargNet and the best SimCLR
  model;
- accuracy against r magnitude per model (where faintness bites: experiments 2 and 3);
- each results table as an HTML page (the report shows HTML and images, not markdown).

Every figure says when it was made from the synthetic survey.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ..catalog import TASK_CLASSES
from ..io import data_source
from ..learn.runfiles import read_embeddings
from ..registry import LABELS, MODELS, row_names, spec
from .plotting import pyplot, save_png, stamp_rgb, where
from .stats import equal_count_bins
from .tables import MissingRunError, collect, single_source


#: At most this many test objects are placed on an embedding map (t-SNE is quadratic-ish).
MAP_POINTS = 3000


#: Stamps per class and kind (most confident, misclassified) in a gallery.
GALLERY_PER_CLASS = 6


def plot_pretrain_curve(curve_tsv, out_png, title: str, source: str = "") -> None:
    plt = pyplot()
    c = pd.read_csv(curve_tsv, sep="\t")
    cols = [k for k in ("loss", "lr", "images_per_s", "view_sky_corr", "knn_val_acc") if k in c.columns]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.4 * len(cols), 3.0), squeeze=False)
    for ax, k in zip(axes[0], cols):
        ax.plot(c["epoch"], c[k], marker=".")
        ax.set_xlabel("epoch")
        ax.set_ylabel(k.replace("_", " "))
    fig.suptitle(f"{title}, {where(source)}", fontsize=9)
    fig.tight_layout()
    save_png(fig, out_png, dpi=110)


def plot_embedding_map(embeddings_path, split_path, out_png, *, title: str, seed: int = 0) -> None:
    """t-SNE of the test objects' embeddings: one panel coloured by class, one by r magnitude."""
    plt = pyplot()
    objid, emb = read_embeddings(embeddings_path)
    split = pd.read_parquet(split_path)
    test = split[split["split"] == "test"]
    pos = pd.Series(np.arange(len(objid)), index=objid)
    test = test[test["objID"].isin(pos.index)]
    if len(test) > MAP_POINTS:
        test = test.sample(MAP_POINTS, random_state=seed)
    x = emb[pos.loc[test["objID"]].to_numpy()]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    from sklearn.manifold import TSNE  # here: the other figures' short jobs never import it

    xy = TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), init="pca",
              random_state=seed).fit_transform(x)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.4))
    for cls, colour in zip(("STAR", "GALAXY", "QSO"), ("tab:orange", "tab:blue", "tab:green")):
        m = (test["class"] == cls).to_numpy()
        a.scatter(xy[m, 0], xy[m, 1], s=4, c=colour, label=f"{cls} ({m.sum()})", alpha=0.7)
    a.legend(fontsize=7, markerscale=3)
    a.set_title("coloured by spectroscopic class", fontsize=9)
    sc = b.scatter(xy[:, 0], xy[:, 1], s=4, c=test["dered_r"].to_numpy(), cmap="viridis_r")
    fig.colorbar(sc, ax=b, label="dereddened r (mag)")
    b.set_title("coloured by r magnitude", fontsize=9)
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: t-SNE of {len(x)} test objects' embeddings, {where(data_source(split_path))}", fontsize=9)
    fig.tight_layout()
    save_png(fig, out_png, dpi=110)


def _test_predictions(paths, rows) -> pd.DataFrame:
    """Long table of test predictions: model row, seed, objID, class, r_mag, predicted class, confidence."""
    out = []
    for p in map(Path, paths):
        df = pd.read_parquet(p)
        df = df[df["split"] == "test"]
        seed = int(p.parent.name.removeprefix("seed"))
        for row in rows:
            cols = [c for c in df.columns if c.startswith(f"{row}.p_")]
            if not cols:
                continue
            probs = df[cols].to_numpy()
            classes = [c.split(".p_")[1] for c in cols]
            out.append(pd.DataFrame({"model": row, "seed": seed, "objID": df["objID"].to_numpy(),
                                     "class": df["class"].to_numpy(), "r_mag": df["r_mag"].to_numpy(),
                                     "pred": np.asarray(classes)[probs.argmax(1)],
                                     "confidence": probs.max(1),
                                     "p_true": probs[np.arange(len(df)), [classes.index(c) for c in df["class"]]]}))
    return pd.concat(out, ignore_index=True)


def plot_accuracy_vs_magnitude(prediction_paths, out_png, *, models, title: str, source: str,
                               n_bins: int = 6) -> pd.DataFrame:
    """Test accuracy in equal-count bins of dereddened r magnitude, per model (pooled over seeds),
    with binomial standard errors."""
    plt = pyplot()
    df = _test_predictions(prediction_paths, row_names(models))
    df["bin"] = equal_count_bins(df["r_mag"].to_numpy(), n_bins)[1]
    df["correct"] = df["pred"] == df["class"]
    g = df.groupby(["model", "bin"]).agg(acc=("correct", "mean"), n=("correct", "size"), mag=("r_mag", "median"))
    g = g.reset_index()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for m in row_names(models):
        s = g[g["model"] == m]
        if s.empty:
            continue
        se = np.sqrt(s["acc"] * (1 - s["acc"]) / s["n"])
        ax.errorbar(s["mag"], 100 * s["acc"], yerr=100 * se, marker="o", capsize=2, label=LABELS[m],
                    ls="-" if m in MODELS else "--")
    ax.set_xlabel("dereddened r (mag), median of each equal-count bin")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{title}, {where(source)}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, out_png, dpi=110)
    return g


def best_simclr(metric_paths, models) -> str:
    """The pretrained model with the highest mean test accuracy among ``metric_paths``."""
    acc: dict[str, list[float]] = {}
    for p in metric_paths:
        m = json.loads(Path(p).read_text())
        if m["model"] in models and spec(m["model"]).pretrained:
            acc.setdefault(m["model"], []).append(m["accuracy"])
    if not acc:
        raise ValueError("no pretrained model among the runs")
    return max(acc, key=lambda k: np.mean(acc[k]))


def plot_gallery(prediction_paths, metric_paths, index_path, out_png, *, models, baseline: str, task: str,
                 title: str, source: str) -> None:
    """Rows: for MargNet and the best SimCLR model, per class, the most confident correct test objects
    and the misclassified ones with the highest confidence (seed 0 or the first seed)."""
    plt = pyplot()
    chosen = [baseline, best_simclr(metric_paths, models)]
    df = _test_predictions(prediction_paths, chosen)
    df = df[df["seed"] == df["seed"].min()]
    classes = TASK_CLASSES[task]
    panels = []
    for m in chosen:
        for cls in classes:
            sub = df[(df["model"] == m) & (df["class"] == cls)]
            good = sub[sub["pred"] == cls].nlargest(GALLERY_PER_CLASS, "confidence")
            bad = sub[sub["pred"] != cls].nlargest(GALLERY_PER_CLASS, "confidence")
            panels.append((f"{LABELS[m]}\n{cls}: most confident", good))
            panels.append((f"{LABELS[m]}\n{cls}: misclassified", bad))
    ids = np.unique(np.concatenate([p["objID"].to_numpy() for _, p in panels]))
    from ..stamps.objects import load_by_objid  # here: only the gallery reads stamps

    objs = load_by_objid(index_path, ids)
    lookup = {int(o): k for k, o in enumerate(objs.objid)}
    fig, axes = plt.subplots(len(panels), GALLERY_PER_CLASS, figsize=(1.5 * GALLERY_PER_CLASS + 1.6, 1.6 * len(panels)),
                             squeeze=False)
    for row, (label, sub) in zip(axes, panels):
        row[0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
        for k, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(sub):
                ax.set_frame_on(False)
                continue
            r = sub.iloc[k]
            ax.imshow(stamp_rgb(objs.stamps[lookup[int(r["objID"])]]), origin="lower")
            ax.set_title(f"{r['pred']} {r['confidence']:.2f}\nr={r['r_mag']:.1f}", fontsize=6)
    fig.suptitle(f"{title}: gri stamps, predicted class and confidence; {where(source)}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    save_png(fig, out_png, dpi=100)


def plot_label_efficiency(summ: pd.DataFrame, source: str, out_png, *, experiment, models, task,
                          comparison) -> None:
    """Accuracy against the labels used, and the difference to the baseline with its paired interval
    (from :func:`sdssclr.results.tables.label_efficiency_summary`)."""
    plt = pyplot()
    base = comparison["baseline"]
    rows = row_names(models)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for m in rows:
        s = summ[summ["model"] == m].sort_values("n_labels")
        ax.errorbar(s["n_labels"], 100 * s["acc"], yerr=100 * s["acc_std"].fillna(0), marker="o", capsize=3,
                    label=LABELS[m])
        if m != base:
            d = np.array([list(v) for v in s["diff"]]) * 100
            bx.errorbar(s["n_labels"], d[:, 0], yerr=[d[:, 0] - d[:, 1], d[:, 2] - d[:, 0]], marker="o", capsize=3,
                        label=LABELS[m])
    bx.axhline(0, color="grey", lw=0.8)
    ticks = sorted(set(summ["n_labels"].round().astype(int)))
    for a in (ax, bx):
        a.set_xscale("log")
        a.xaxis.set_major_formatter(ScalarFormatter())
        a.xaxis.set_minor_formatter(NullFormatter())
        a.set_xticks(ticks)
        a.set_xlabel("labels used (training + validation)")
    ax.set_ylabel(f"{task} test accuracy (%); bars: std over runs")
    bx.set_ylabel(f"accuracy - {LABELS[base]} (points); bars: {100 * comparison['level']:.0f}% CI (objects, seeds, splits)")
    where = "SYNTHETIC survey" if source == "synthetic" else source
    ax.set_title(f"{experiment} {task}, {where}", fontsize=9)
    bx.set_title(f"difference to {LABELS[base]} at the same budget", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, out_png, dpi=120)
    return summ


def plot_confusion(metric_paths, out_png, *, experiment, task, models) -> None:
    plt = pyplot()
    df = collect(metric_paths)
    source = single_source(df)
    models = row_names(models)
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
        ax.set_title(f"{LABELS[m]}\n({len(sub)} seeds summed)", fontsize=8)
    fig.suptitle(f"{experiment} {task}: {'SYNTHETIC survey' if source == 'synthetic' else source}", fontsize=9)
    fig.tight_layout()
    save_png(fig, out_png, dpi=110)
