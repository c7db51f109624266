"""Stamp cutting throughput: the field-by-field cutter vs a naive per-object loop.

The naive loop is what a first script does: for every object and band, open (decompress) the
frame and take an astropy Cutout2D at the object's position. The cutter decompresses each frame
once per field, cuts all the field's objects in one vectorised Lanczos pass, and decodes up to
``--threads`` fields at a time.

    python benchmarks/stamps.py --fields 12 --objects-per-field 2 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sdssclr.bands import BANDS  # noqa: E402
from sdssclr.catalog import FIELD_KEYS  # noqa: E402
from sdssclr.survey.frames import decompress, field_paths, read_frame  # noqa: E402
from sdssclr.stamps.shards import cut_shard  # noqa: E402
from sdssclr.survey.fetch import LocalFrames  # noqa: E402
from sdssclr.survey.synthetic import generate_survey  # noqa: E402


def naive(objects, root, size):
    from astropy.coordinates import SkyCoord
    from astropy.nddata import Cutout2D
    import astropy.units as u

    out = np.zeros((len(objects), len(BANDS), size, size), np.float32)
    for k, row in enumerate(objects.itertuples()):
        paths = field_paths(root, *(getattr(row, c) for c in FIELD_KEYS))
        pos = SkyCoord(row.ra * u.deg, row.dec * u.deg)
        for j, b in enumerate(BANDS):
            frame = read_frame(paths[b], b)
            cut = Cutout2D(frame.image, pos, size, wcs=frame.wcs, mode="partial", fill_value=0.0)
            out[k, j] = cut.data
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fields", type=int, default=12)
    ap.add_argument("--objects-per-field", type=int, default=2)
    ap.add_argument("--frame-shape", type=int, nargs=2, default=[1489, 2048], help="rows cols (SDSS: 1489 2048)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        cat = generate_survey(tmp / "cat.parquet", tmp / "frames", n_objects=args.fields * args.objects_per_field,
                              objects_per_field=args.objects_per_field, frame_shape=args.frame_shape,
                              seed=1, edge_fraction=0.0, threads=args.threads)
        print(f"synthetic survey: {len(cat)} objects in {args.fields} fields of {args.frame_shape} px "
              f"written in {time.perf_counter() - t0:.1f} s")
        objects = cat[["objID", "ra", "dec", *FIELD_KEYS]]
        n, nf = len(objects), args.fields

        t0 = time.perf_counter()
        for path in (tmp / "frames").rglob("*.fits.bz2"):
            decompress(path)
        t_dec = time.perf_counter() - t0

        results = {}
        for threads in sorted({1, args.threads}):
            t0 = time.perf_counter()
            cut_shard(objects, LocalFrames(tmp / "frames"), tmp / f"s{threads}.npy", tmp / f"s{threads}.parquet",
                      size=args.size, policy="pad", threads=threads)
            results[threads] = time.perf_counter() - t0
        t0 = time.perf_counter()
        naive_stamps = naive(objects, tmp / "frames", args.size)
        t_naive = time.perf_counter() - t0
        fast = np.load(tmp / f"s{args.threads}.npy")
        agree = np.median(np.abs(fast - naive_stamps)) / np.std(naive_stamps)

    print(f"{'method':<34}{'seconds':>9}{'stamps/s':>10}{'fields/s':>10}")
    print(f"{'naive per-object Cutout2D loop':<34}{t_naive:>9.2f}{n / t_naive:>10.2f}{nf / t_naive:>10.2f}")
    for threads, t in results.items():
        print(f"{f'field-by-field cutter, {threads} thread(s)':<34}{t:>9.2f}{n / t:>10.2f}{nf / t:>10.2f}")
    best = results[args.threads]
    print(f"speed-up of the cutter ({args.threads} threads) over the naive loop: {t_naive / best:.2f}x")
    print(f"speed-up of the cutter (1 thread) over the naive loop: {t_naive / results[1]:.2f}x")
    print(f"share of the 1-thread cutter's time spent decompressing bz2: {t_dec / results[1]:.0%}")
    print(f"median |cutter - naive| / pixel std (sub-pixel registration vs nearest-pixel): {agree:.3f}")


if __name__ == "__main__":
    main()
