"""Does SimCLR learn? A linear probe on pretrained embeddings vs the same probe on a randomly
initialised identical encoder (same architecture, normaliser and crop), images only.

Run after the demo (or any run) has produced the pretrained encoders:

    python -m snakemake --cores 2 --configfile demo.yaml
    python benchmarks/probe_vs_random.py --workdir . --experiment exp1 --dataset compact --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sdssclr.data import load_objects  # noqa: E402
from sdssclr.pretrain import build_encoder, embed, load_encoder  # noqa: E402


def probe(train_x, train_y, test_x, test_y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=0.1))
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


def main(argv=None):
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--experiment", default="exp1")
    ap.add_argument("--dataset", default="compact")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args(argv)
    res = Path(args.workdir) / "results"
    print(f"{'task':<5}{'seed':>5}{'pretrained':>12}{'random init':>13}{'margin':>8}")
    for task in ("SG", "SGQ"):
        objs = load_objects(res / "splits" / f"{args.experiment}.parquet", res / "stamps" / "index.parquet", task=task)
        fit, test = np.isin(objs.split, ["train"]), objs.split == "test"
        for seed in args.seeds:
            enc, norm, crop = load_encoder(res / "pretrain" / args.dataset / f"seed{seed}" / "encoder.pt")
            torch.manual_seed(seed)
            rand = build_encoder(enc.name).eval()
            device = torch.device("cpu")
            e_pre = embed(enc, norm, crop, objs.stamps, device)
            e_rnd = embed(rand, norm, crop, objs.stamps, device)
            a_pre = probe(e_pre[fit], objs.labels[fit], e_pre[test], objs.labels[test])
            a_rnd = probe(e_rnd[fit], objs.labels[fit], e_rnd[test], objs.labels[test])
            print(f"{task:<5}{seed:>5}{a_pre:>12.3f}{a_rnd:>13.3f}{a_pre - a_rnd:>+8.3f}")
    print(f"(test objects: {test.sum()} for SGQ; source: {objs.source})")


if __name__ == "__main__":
    main()
