"""Similarity search at survey scale: build time, query time and memory for N random vectors.

    python benchmarks/similarity.py               # 10^6 x 512 (needs ~6 GB of RAM and disk)
    python benchmarks/similarity.py --n 100000    # smaller

Builds a saved index (sdssclr.results.similarity.save_index: L2-normalised float32 .npy) from random
vectors, opens it memory-mapped (SimilarityIndex, scikit-learn's brute-force NearestNeighbors) and
times single-object queries for k = 20. Prints the figures and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sdssclr.results.similarity import SimilarityIndex, save_index  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    ids = np.arange(args.n, dtype=np.int64) + 1237650000000000000
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save_index(ids, vectors, Path(tmp) / "idx")
        build = time.perf_counter() - t
        del vectors
        t = time.perf_counter()
        index = SimilarityIndex(Path(tmp) / "idx")
        opened = time.perf_counter() - t
        index.neighbours(int(ids[0]), args.k)  # first touch of the pages
        times = []
        for q in rng.choice(args.n, args.queries, replace=False):
            t = time.perf_counter()
            got, sim = index.neighbours(int(ids[q]), args.k)
            times.append(time.perf_counter() - t)
        # exactness: the brute-force answer against a direct dot product for the last query
        v = np.asarray(index.vectors[q])
        best = np.argsort(-(index.vectors @ v))[1:args.k + 1]
        assert set(ids[best]) == set(got), "neighbours differ from the exact dot-product ranking"
        size_gb = (Path(tmp) / "idx" / "vectors.npy").stat().st_size / 1024**3
    print(f"index: {args.n} x {args.dim} float32, {size_gb:.2f} GB on disk")
    print(f"build_s={build:.2f} (normalise + write)")
    print(f"open_s={opened:.2f} (memory-mapped)")
    print(f"query_ms_median={1000 * np.median(times):.0f} query_ms_max={1000 * np.max(times):.0f} (k={args.k}, "
          f"{args.queries} queries, exact)")
    print(f"peak_rss_gb={peak_rss_gb():.2f}")


if __name__ == "__main__":
    main()
