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

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .conformal import equal_count_bins
from .io import write_text_atomic
from .registry import LABELS, MODELS, row_names, spec
from .splits import TASK_CLASSES
from .tables import _pyplot, _save_png

#: At most this many test objects are placed on an embedding map (t-SNE is quadratic-ish).
MAP_POINTS = 3000
#: Stamps per class and kind (most confident, misclassified) in a gallery.
GALLERY_PER_CLASS = 6


def where(source: str) -> str:
    return "SYNTHETIC survey (not SDSS data)" if source == "synthetic" else f"source: {source}"


def stamp_rgb(stamp: np.ndarray, q: float = 8.0, noise_stretch: float = 8.0) -> np.ndarray:
    """A gri colour composite (i as red, r as green, g as blue) with the Lupton et al. asinh stretch.

    Each band's background (median) is subtracted and the stretch is set in units of the stamp's
    own background noise (``noise_stretch`` times the mean robust sigma of the three bands), with
    the black point one sigma below the background: the sky looks dark grey instead of coloured
    speckle, and a source at a few sigma - the faint objects of experiments 2 and 3 - is visible."""
    from astropy.visualization import make_lupton_rgb

    bands = []
    sigmas = []
    for k in (3, 2, 1):  # i, r, g
        x = np.asarray(stamp[k], dtype=float)
        med = np.median(x)
        sigmas.append(1.4826 * np.median(np.abs(x - med)))
        bands.append(x - med)
    sigma = float(np.mean(sigmas))
    sigma = sigma if np.isfinite(sigma) and sigma > 0 else 1.0
    return make_lupton_rgb(*bands, minimum=-sigma, stretch=noise_stretch * sigma, Q=q)


# ------------------------------------------------------------------------------- pretraining


def plot_pretrain_curve(curve_tsv, out_png, title: str, source: str = "") -> None:
    plt = _pyplot()
    c = pd.read_csv(curve_tsv, sep="\t")
    cols = [k for k in ("loss", "lr", "images_per_s", "knn_val_acc") if k in c.columns]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.4 * len(cols), 3.0), squeeze=False)
    for ax, k in zip(axes[0], cols):
        ax.plot(c["epoch"], c[k], marker=".")
        ax.set_xlabel("epoch")
        ax.set_ylabel(k.replace("_", " "))
    fig.suptitle(f"{title}, {where(source)}", fontsize=9)
    fig.tight_layout()
    _save_png(fig, out_png, dpi=110)


def plot_embedding_map(embeddings_path, split_path, out_png, *, title: str, seed: int = 0) -> None:
    """t-SNE of the test objects' embeddings: one panel coloured by class, one by r magnitude."""
    from sklearn.manifold import TSNE

    from .io import source_of
    from .pretrain import read_embeddings

    plt = _pyplot()
    objid, emb = read_embeddings(embeddings_path)
    split = pd.read_parquet(split_path)
    test = split[split["split"] == "test"]
    pos = pd.Series(np.arange(len(objid)), index=objid)
    test = test[test["objID"].isin(pos.index)]
    if len(test) > MAP_POINTS:
        test = test.sample(MAP_POINTS, random_state=seed)
    x = emb[pos.loc[test["objID"]].to_numpy()]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
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
    fig.suptitle(f"{title}: t-SNE of {len(x)} test objects' embeddings, {where(source_of(split_path))}", fontsize=9)
    fig.tight_layout()
    _save_png(fig, out_png, dpi=110)


# ------------------------------------------------------------------------------- predictions


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
    plt = _pyplot()
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
    _save_png(fig, out_png, dpi=110)
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
    from .data import load_by_objid

    plt = _pyplot()
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
    _save_png(fig, out_png, dpi=100)


# ------------------------------------------------------------------------------- HTML pages


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _inline(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    return "".join(f"<b>{p}</b>" if k % 2 else p for k, p in enumerate(parts))


def markdown_page(md_path, out_html, title: str) -> None:
    """An HTML page of one of this workflow's markdown tables (headings, paragraphs, pipe tables):
    the report displays HTML, not markdown."""
    lines = Path(md_path).read_text().splitlines()
    body, k = [], 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("|"):
            block = []
            while k < len(lines) and lines[k].startswith("|"):
                block.append(lines[k])
                k += 1
            rows = [_cells(b) for b in block if not set(b.replace("|", "").strip()) <= set("-: ")]
            head, rest = rows[0], rows[1:]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</tbody></table>")
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            body.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line.lstrip('> ').strip())}</p>")
        k += 1
    style = ("body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;margin:.6em 0}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}thead{background:#eee}")
    write_text_atomic(out_html, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                                f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
