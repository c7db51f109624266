"""Frame download throughput against a loopback SAS (127.0.0.1 only), and the disk high-water
mark of a streamed stamp run (download -> verify -> cut -> delete).

    python benchmarks/download.py --fields 8 --parallel 1 4 8

Each fetch includes verification (full bz2 decompression and FITS parse), which on real-size
frames costs more CPU than a loopback transfer, so the figures are an upper bound set by CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "src"))
sys.path.insert(0, str(HERE / "tests"))

from loopback import SAS  # noqa: E402
from sdssclr.catalog import FIELD_KEYS  # noqa: E402
from sdssclr.survey.fetch import FrameFetcher  # noqa: E402
from sdssclr.stamps.shards import cut_shard  # noqa: E402
from sdssclr.survey.synthetic import generate_survey  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fields", type=int, default=8)
    ap.add_argument("--frame-shape", type=int, nargs=2, default=[1489, 2048])
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--threads", type=int, default=2, help="fields in flight in the streamed run")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cat = generate_survey(tmp / "cat.parquet", tmp / "frames", n_objects=2 * args.fields, objects_per_field=2,
                              frame_shape=args.frame_shape, seed=2, edge_fraction=0.0, threads=2)
        files = sorted((tmp / "frames").rglob("*.fits.bz2"))
        total_mb = sum(f.stat().st_size for f in files) / 1e6
        keys = sorted({tuple(int(v) for v in row) for row in cat[list(FIELD_KEYS)].itertuples(index=False)})
        print(f"{len(files)} synthetic frames of {args.frame_shape} px, {total_mb:.1f} MB compressed")
        print(f"{'parallel':>8}{'seconds':>9}{'files/s':>9}{'MB/s':>8}")
        with SAS(tmp / "frames") as sas:
            for n in args.parallel:
                f = FrameFetcher(sas.url, 16, tmp / f"dl{n}", parallel=n, keep_frames=True)
                t0 = time.perf_counter()
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=max(1, n // 5 + 1)) as pool:
                    list(pool.map(f.acquire, keys))
                dt = time.perf_counter() - t0
                print(f"{n:>8}{dt:>9.2f}{len(files) / dt:>9.2f}{total_mb / dt:>8.1f}")
            f = FrameFetcher(sas.url, 16, tmp / "stream", parallel=8, keep_frames=False)
            t0 = time.perf_counter()
            cut_shard(cat, f, tmp / "s.npy", tmp / "s.parquet", threads=args.threads)
            dt = time.perf_counter() - t0
        left = sum(p.stat().st_size for p in (tmp / "stream").rglob("*.fits.bz2"))
        print(f"streamed run ({args.threads} fields in flight): {dt:.1f} s, {f.summary()}; "
              f"frames left on disk afterwards: {left} bytes; whole survey would be {total_mb:.1f} MB")


if __name__ == "__main__":
    main()
