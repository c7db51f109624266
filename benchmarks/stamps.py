"""Stamp cutting throughput: the field-by-field cutter vs a naive per-object loop.

The naive loop is what a first script does: for every object and band, open (decompress) the
frame and take an astropy Cutout2D at the object's position. The cutter decompresses each frame
once per field, cuts all the field's objects in one vectorised Lanczos pass, and decodes up to
``--threads`` fields at a time.

    python benchmarks/stamps.py --fields 12 --objects-per-field 2 --threads 2

``--real DIR`` measures instead, on a real SDSS field laid out like the archive (e.g.
``../shared/sdss-frames``), the stamp stage's CPU per field (decompress, parse, cut and write
the stamps of 2 and of 22 objects, one thread) against a plain libbz2 decode of the field's five
frames, and ends with ``cpu_per_field_ratio=<x>`` for 22 objects (1.0 would be the decode floor).
When indexed_bzip2 is installed it is timed beside libbz2 (one thread, and its parallel mode's
wall time for one frame).

    python benchmarks/stamps.py --real ../shared/sdss-frames
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


def cpu_seconds(fn) -> float:
    """CPU seconds (this process, all its threads) of one call of ``fn``."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def real_field(root: Path, size: int, counts=(2, 22), repeats: int = 7) -> None:
    """The stamp stage's CPU per field on a real field against the plain decode of its frames.
    The variants are timed in turn, ``repeats`` rounds, and each keeps its least CPU time: this
    machine's speed drifts by ~10% between minutes, which would otherwise swamp the ratio."""
    import bz2
    import io

    import pandas as pd

    frames = sorted(root.rglob("frame-*-*-*-*.fits.bz2"))
    if len(frames) < len(BANDS):
        raise SystemExit(f"{root}: no complete field (frame-<band>-<run>-<camcol>-<field>.fits.bz2) found")
    name = frames[0].name.split("-")
    run, camcol, field = int(name[2]), int(name[3]), int(name[4].split(".")[0])
    rerun = int(frames[0].parent.parent.parent.name)
    paths = field_paths(root, rerun, run, camcol, field)
    raw = {b: paths[b].read_bytes() for b in BANDS}
    frame = read_frame(paths["r"], "r")
    ny, nx = frame.image.shape
    rng = np.random.default_rng(0)
    variants = {"plain libbz2 decode of the five frames": lambda: [bz2.decompress(raw[b]) for b in BANDS]}
    for n in counts:
        x, y = rng.uniform(size, nx - size, n), rng.uniform(size, ny - size, n)
        ra, dec = frame.wcs.all_pix2world(x, y, 0)
        objects = pd.DataFrame({"objID": np.arange(n, dtype=np.int64) + 1237650000000000000, "ra": ra, "dec": dec,
                                "rerun": rerun, "run": run, "camcol": camcol, "field": field})

        def stage(objects=objects):
            with tempfile.TemporaryDirectory() as tmp:  # a fresh shard: no finished parts to reuse
                cut_shard(objects, LocalFrames(root), Path(tmp) / "s.npy", Path(tmp) / "s.parquet", size=size,
                          policy="pad", threads=1)

        variants[f"stamp stage, {n} objects"] = stage
    try:
        import indexed_bzip2
    except ImportError:
        indexed_bzip2 = None
        print("indexed_bzip2 not installed: no comparison (pip install indexed_bzip2)")
    else:
        def ibz2(parallelization=1):
            for b in BANDS:
                with indexed_bzip2.open(io.BytesIO(raw[b]), parallelization=parallelization) as fh:
                    fh.read()

        variants["indexed_bzip2 decode, one thread"] = ibz2
    best = {k: float("inf") for k in variants}
    for _ in range(repeats):
        for k, fn in variants.items():
            best[k] = min(best[k], cpu_seconds(fn))
    decode = best["plain libbz2 decode of the five frames"]
    print(f"field {rerun}/{run}/{camcol}/{field}: five frames, {sum(map(len, raw.values())) / 1e6:.1f} MB compressed; "
          f"least CPU of {repeats} interleaved rounds")
    for k, t in best.items():
        print(f"{k:<42}{t:>6.2f} s CPU = {t / decode:.3f} x the plain decode")
    if indexed_bzip2 is not None:
        t0 = time.perf_counter()
        ibz2(2)
        print(f"indexed_bzip2 parallel (2 threads): {time.perf_counter() - t0:.2f} s wall for the five frames")
    print(f"cpu_per_field_ratio={best[f'stamp stage, {counts[-1]} objects'] / decode:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=None, help="a real field's frames (archive layout): CPU per field")
    ap.add_argument("--fields", type=int, default=12)
    ap.add_argument("--objects-per-field", type=int, default=2)
    ap.add_argument("--frame-shape", type=int, nargs=2, default=[1489, 2048], help="rows cols (SDSS: 1489 2048)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args(argv)
    if args.real is not None:
        real_field(args.real, args.size)
        return

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
