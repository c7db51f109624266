"""Command line: ``python -m sdssclr similar OBJID --k 20`` (nearest neighbours by cosine similarity)."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdssclr")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("similar", help="objects that look like OBJID, by cosine similarity of the SimCLR embeddings")
    sim.add_argument("objid", type=int)
    sim.add_argument("--k", type=int, default=20, help="neighbours (default 20)")
    sim.add_argument("--index", default="results/similarity/compact/split2023/seed0",
                     help="saved index folder (rule similarity_index; default %(default)s)")
    sim.add_argument("--stamps", nargs="*", default=None,
                     help="stamp set indexes, for classes and the gallery (default: every "
                          "results/stamps/split*/*/index.parquet)")
    sim.add_argument("--gallery", default=None,
                     help="gallery PNG (default results/similar/OBJID.png; 'none' for no gallery)")
    args = parser.parse_args(argv)

    from .results.similarity import query

    if args.k < 1:
        parser.error("--k must be at least 1")
    if not (Path(args.index) / "index.faiss").exists():
        parser.error(f"no index in {args.index}: build it with `snakemake {args.index}/index.faiss` "
                     "(rule similarity_index)")
    stamps = args.stamps if args.stamps is not None else sorted(glob.glob("results/stamps/split*/*/index.parquet"))
    gallery = None if args.gallery == "none" else (args.gallery or f"results/similar/{args.objid}.png")
    try:
        table = query(args.index, args.objid, args.k, stamps, gallery)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"index: {table.attrs['index']}")
    if gallery:
        print(f"gallery: {gallery}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
