"""Does SimCLR learn? A linear probe on pretrained embeddings vs the same probe on a randomly
initialised identical encoder (same architecture, normaliser and crop), images only, scored by
5-fold stratified cross-validation over every usable object of the stamp index (all three
experiments' objects; the labels were never seen by the pretraining).

Run after the demo (or any run) has produced the pretrained encoders:

    python -m snakemake --cores 2 --configfile demo.yaml
    python benchmarks/probe_vs_random.py --workdir . --dataset compact --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sdssclr.learn.encoders import build_encoder  # noqa: E402
from sdssclr.learn.pretrain import embed, load_encoder  # noqa: E402


def probe(x, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=0.1))
    scores = cross_val_score(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    return float(scores.mean()), float(scores.std())


def main(argv=None):
    import pandas as pd
    import torch

    from sdssclr.catalog import TASK_CLASSES
    from sdssclr.stamps.shards import load_stamps, shard_path, usable_index

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--dataset", default="compact")
    ap.add_argument("--split-seed", type=int, default=2023)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args(argv)
    res = Path(args.workdir) / "results"
    index_path = res / "stamps" / "index.parquet"
    index = usable_index(index_path)
    stamps = load_stamps(index, lambda s: shard_path(index_path, s))
    device = torch.device("cpu")
    print(f"{len(index)} objects ({pd.Series(index['class']).value_counts().to_dict()}), 5-fold CV accuracy")
    print(f"{'task':<5}{'seed':>5}{'pretrained':>16}{'random init':>16}{'margin':>8}")
    for seed in args.seeds:
        enc, norm, crop = load_encoder(res / "pretrain" / args.dataset / f"split{args.split_seed}" / "all" / f"seed{seed}" / "encoder.pt")
        torch.manual_seed(seed)
        rand = build_encoder(enc.name, crop).eval()
        e_pre, e_rnd = embed(enc, norm, crop, stamps, device), embed(rand, norm, crop, stamps, device)
        for task, classes in TASK_CLASSES.items():
            keep = index["class"].isin(classes).to_numpy()
            y = index.loc[keep, "class"].map({c: i for i, c in enumerate(classes)}).to_numpy()
            (a, sa), (b, sb) = probe(e_pre[keep], y), probe(e_rnd[keep], y)
            print(f"{task:<5}{seed:>5}{a:>10.3f}±{sa:.3f}{b:>10.3f}±{sb:.3f}{a - b:>+8.3f}")


if __name__ == "__main__":
    main()
