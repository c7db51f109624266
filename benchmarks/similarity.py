"""Similarity search at survey scale: build time, bytes per object, query latency and recall@k
against exact search, for the FAISS index the workflow builds (sdssclr.results.similarity), side
by side with the brute-force scan it replaced (scikit-learn NearestNeighbors over the vectors).

    python benchmarks/similarity.py                          # 10^6 x 128 and 10^7 x 128
    python benchmarks/similarity.py --n 1000000 --dim 512    # one size

The vectors stand in for embeddings whose neighbours are set by a few factors: a random linear map
of ``--latent``-d Gaussians plus 10% isotropic noise (L2-normalised by the index). ``--latent 0``
draws isotropic Gaussian vectors instead, the worst case for any compressed index (no structure:
every distance alike). Exact reference: a FAISS flat inner-product scan of the same vectors, whose
float32 copy must fit in memory (10^7 x 128 is 5.1 GB; 10^7 x 512 would be 20 GB, too much for a
24 GB machine beside the index, hence the default 128). Queries are indexed objects (their own
vector decoded from the index, as ``python -m sdssclr similar`` asks), single-threaded calls on the
threads FAISS has (``--threads``).
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

from sdssclr.results.similarity import SimilarityIndex, index_spec, normalise, save_index  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def vectors(n: int, dim: int, latent: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    mix = rng.standard_normal((latent, dim), dtype=np.float32) if latent else None
    for lo in range(0, n, 1_000_000):
        m = min(n, lo + 1_000_000) - lo
        if latent:
            z = rng.standard_normal((m, latent), dtype=np.float32) @ mix
            out[lo:lo + m] = z + 0.1 * np.sqrt(latent) * rng.standard_normal((m, dim), dtype=np.float32)
        else:
            out[lo:lo + m] = rng.standard_normal((m, dim), dtype=np.float32)
    return out


def run(n: int, dim: int, latent: int, k: int, queries: int, sklearn_max: int) -> None:
    import faiss

    print(f"\n## {n} x {dim} ({f'{latent} latent factors' if latent else 'isotropic'}), "
          f"index {index_spec(n, dim)}, k={k}, {faiss.omp_get_max_threads()} threads")
    data = vectors(n, dim, latent)
    ids = np.arange(n, dtype=np.int64) + 1237650000000000000
    rng = np.random.default_rng(1)
    qrows = rng.choice(n, queries, replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save_index(ids, data, Path(tmp) / "idx")
        build = time.perf_counter() - t
        size = (Path(tmp) / "idx" / "index.faiss").stat().st_size
        index = SimilarityIndex(Path(tmp) / "idx")
        index.neighbours(int(ids[qrows[0]]), k)  # warm
        times, found = [], []
        for q in qrows:
            t = time.perf_counter()
            got, _ = index.neighbours(int(ids[q]), k)
            times.append(time.perf_counter() - t)
            found.append(set(got))
        # the exact reference: a flat scan of the normalised vectors, from the same query vectors
        flat = faiss.IndexFlatIP(dim)
        for lo in range(0, n, 1_000_000):
            flat.add(normalise(data[lo:lo + 1_000_000]))
        qv = np.stack([index.vector(int(ids[q])) for q in qrows])
        t = time.perf_counter()
        _, truth = flat.search(normalise(qv), k + 1)
        exact_ms = 1000 * (time.perf_counter() - t) / queries
        recall = np.mean([len(found[i] & set(ids[[r for r in truth[i] if r != qrows[i]][:k]])) / k
                          for i in range(queries)])
        print(f"faiss: build_s={build:.1f} bytes_per_object={size / n:.1f} query_ms_median="
              f"{1000 * np.median(times):.1f} query_ms_p95={1000 * np.quantile(times, 0.95):.1f} "
              f"recall@{k}={recall:.3f} ({index.describe()})")
        print(f"exact flat scan: query_ms={exact_ms:.1f} (batched over {queries} queries), "
              f"bytes_per_object={4 * dim}")
        del flat
        if n <= sklearn_max:
            from sklearn.neighbors import NearestNeighbors

            unit = normalise(data)
            t = time.perf_counter()
            nn = NearestNeighbors(algorithm="brute", metric="sqeuclidean").fit(unit)
            fit = time.perf_counter() - t
            ts = []
            for q in qrows[:10]:
                t = time.perf_counter()
                nn.kneighbors(unit[q:q + 1], n_neighbors=k + 1)
                ts.append(time.perf_counter() - t)
            print(f"before (scikit-learn brute force, the previous index): fit_s={fit:.1f} "
                  f"query_ms_median={1000 * np.median(ts):.0f} bytes_per_object={4 * dim}")
            del unit, nn
    print(f"peak_rss_gb={peak_rss_gb():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sklearn-max", type=int, default=1_000_000,
                    help="largest n for the scikit-learn comparison (it holds a normalised copy)")
    args = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    for n in args.n:
        run(n, args.dim, args.latent, args.k, args.queries, args.sklearn_max)


if __name__ == "__main__":
    main()
