"""The photometry-only floor without stamps: MargNet's ANN against the gradient-boosted tree.

The synthetic survey's catalogue alone (no frames, seconds to generate) at the medium size of the
GPU-scale configuration: 120,000 objects, 3,600 per class compact (exp1, 6:1:1) and 3,000 per class
faint+compact (exp2, 8:1:1), the first of split_seeds (2023). Both models are the workflow's own
(`sdssclr.learn.classifiers`: `gbdt`, and the ANN of `margnet` with its configured schedule and feature
scaling); the difference comes with a paired bootstrap interval over the test objects.

    python benchmarks/features_floor.py                    # medium size, config.yaml schedules
    python benchmarks/features_floor.py --objects 30000 --compact 900 --faint 700   # quicker

Synthetic numbers: a software check, not SDSS results.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sdssclr.catalog import features  # noqa: E402
from sdssclr.learn.classifiers import build, feature_scaler  # noqa: E402
from sdssclr.samples.cuts import apply_cuts, dataset_cuts  # noqa: E402
from sdssclr.stamps.objects import Objects  # noqa: E402
from sdssclr.results.stats import paired_bootstrap  # noqa: E402
from sdssclr.learn.networks import PhotometryANN  # noqa: E402
from sdssclr.catalog import labels, select_task  # noqa: E402
from sdssclr.samples.splits import make_split  # noqa: E402
from sdssclr.survey.synthetic import generate_catalog  # noqa: E402
from sdssclr.learn.engine import Schedule, fit, predict_logits  # noqa: E402


def objects_of(split, task):
    s = select_task(split, task)
    n = len(s)
    return Objects(objid=s["objID"].to_numpy(), stamps=np.zeros((n, 5, 1, 1), np.float32), features=features(s),
                   psf_fwhm_px=np.ones((n, 5), np.float32), classes=s["class"].to_numpy(),
                   split=s["split"].to_numpy(), labels=np.array(labels(s, task)))


def ann_accuracy(o: Objects, margnet_cfg: dict, seed: int):
    tr, va, te = (o.split == s for s in ("train", "val", "test"))
    scaler = feature_scaler(margnet_cfg["feature_scaling"], o.features[tr])
    z, y = torch.from_numpy(scaler(o.features)), torch.from_numpy(o.labels)
    a = margnet_cfg["ann"]
    torch.manual_seed(seed)
    net = PhotometryANN(int(y.max()) + 1, hidden=tuple(a["hidden"]), dropout=a["dropout"])
    report = fit(net, (z[tr],), y[tr], (z[va],), y[va], schedule=Schedule.from_config(a), device=torch.device("cpu"),
                 seed=seed, name="margnet ANN")
    pred = predict_logits(net, (z[te],), 8192, torch.device("cpu")).argmax(1).numpy()
    return pred == o.labels[te], report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=120_000)
    ap.add_argument("--compact", type=int, default=3600, help="objects per class, compact dataset (exp1)")
    ap.add_argument("--faint", type=int, default=3000, help="objects per class, faint+compact dataset (exp2)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    t0 = time.perf_counter()
    # measured from frames rendered in memory: 60 objects in each 320 x 320 field keeps this to minutes
    cat, _, _ = generate_catalog(args.objects, 60, (320, 320), seed=cfg["synthetic"]["seed"], threads=args.threads)
    print(f"synthetic catalogue of {len(cat)} objects in {time.perf_counter() - t0:.1f} s (frames not written)")
    rows = []
    for exp, dataset, per_class, ratios in (("exp1", "compact", args.compact, [6, 1, 1]),
                                            ("exp2", "faint_compact", args.faint, [8, 1, 1])):
        pool = cat[apply_cuts(cat, dataset_cuts(dataset, cfg["cuts"]))]
        split = make_split(pool, per_class, ratios, cfg["split_seeds"][0], exp)
        for task in ("SG", "SGQ"):
            o = objects_of(split, task)
            te = o.split == "test"
            t = time.perf_counter()
            tree = build("gbdt", int(o.labels.max()) + 1, cfg["classifiers"]["gbdt"])
            tree.fit(o, seed=args.seed)
            tree_ok = tree.predict_proba(o)[te].argmax(1) == o.labels[te]
            t_tree = time.perf_counter() - t
            t = time.perf_counter()
            ann_ok, report = ann_accuracy(o, cfg["classifiers"]["margnet"], args.seed)
            t_ann = time.perf_counter() - t
            d, lo, hi = paired_bootstrap(ann_ok[None], tree_ok[None], resamples=2000, seed=0)
            rows.append((exp, task, te.sum(), tree_ok.mean(), ann_ok.mean(), d, lo, hi, report["best_epoch"],
                         t_tree, t_ann))
            print(f"{exp} {task}: tree {100 * tree_ok.mean():.1f}% ({t_tree:.0f} s), ANN {100 * ann_ok.mean():.1f}% "
                  f"({t_ann:.0f} s, best epoch {report['best_epoch']})", flush=True)
    print("\n| Exp | Task | test objects | tree (%) | MargNet ANN (%) | ANN - tree [95% CI] | ANN best epoch |")
    print("|---|---|---|---|---|---|---|")
    for exp, task, n, a_tree, a_ann, d, lo, hi, best, *_ in rows:
        print(f"| {exp} | {task} | {n} | {100 * a_tree:.1f} | {100 * a_ann:.1f} | "
              f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {best} |")


if __name__ == "__main__":
    main()
