"""A full-size rehearsal: the paper's run planned on the released objects' own fields, the stamp
stage timed on full-size fields served over loopback HTTP, and the paper-scale estimate.

    python benchmarks/scale.py [--fields 4] [--nodes 16 --cores-per-node 32 --gpus 4]

1. The plan. The released object lists (``../shared/margnet-release``: experiment 1's 239,999
   objects, experiment 2's 149,996, experiment 3's test set) are placed on exactly their fields
   (rerun, run, camcol and field decoded from each objID); every field gets the default config's
   unlabelled objects (``unlabelled.per_field``). The stamp sets are planned with the default
   ``stamps.n_shards`` (objects, fields and stamp bytes per shard), and ``snakemake -n
   results/table1.md`` with the default ``config.yaml`` gives the DAG's build time, memory and job
   counts.
2. The stamp stage on ``--fields`` full-size (1489 x 2048) synthetic fields with 2 labelled and the
   default unlabelled objects each, streamed from the loopback SAS (``tests/loopback.py``) with
   the archive's layout, exactly as a stamp job streams them (download, verify, cut, delete):
   CPU and wall seconds per field on one core, bytes fetched, the disk high-water mark. The real
   field in ``../shared/sdss-frames`` is cut the same way from disk, for the CPU a real frame's
   bzip2 costs (synthetic frames compress differently) and the bytes of a real frame.
3. Training throughput: SimCLR steps of the default encoder on this machine (CPU unless a GPU is
   present; the device is named).
4. The estimate for the whole run: CPU-hours, terabytes fetched, peak disk, wall time on the stated
   cluster shape, GPU-hours of pretraining.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "src"))
sys.path.insert(0, str(HERE / "tests"))

from loopback import SAS  # noqa: E402
from sdssclr.bands import BANDS  # noqa: E402
from sdssclr.catalog import FIELD_KEYS  # noqa: E402
from sdssclr.samples.object_lists import decode_objid, read_objid_list  # noqa: E402
from sdssclr.stamps.shards import cut_shard, plan_shards  # noqa: E402
from sdssclr.survey.fetch import FrameFetcher, LocalFrames  # noqa: E402
from sdssclr.survey.frames import field_paths  # noqa: E402
from sdssclr.survey.synthetic import generate_survey  # noqa: E402

STAMP_BYTES = len(BANDS) * 32 * 32 * 4  # one float32 5 x 32 x 32 stamp
REAL_FIELD = (301, 2583, 2, 136)


def fields_of(objids) -> pd.DataFrame:
    keys = decode_objid(objids)[list(FIELD_KEYS)]
    return keys.assign(objID=np.asarray(objids, np.int64))


def plan_sets(release: Path, cfg: dict) -> tuple[dict, pd.DataFrame]:
    """The stamp sets of the default config on the released objects' fields: name -> plan."""
    lists = {name: read_objid_list(release / f"{name}_objects.parquet") for name in ("exp1", "exp2", "exp3_sgq")}
    per_field = cfg["unlabelled"]["per_field"]
    sets = {}
    for name, listed in lists.items():
        objects = fields_of(listed["objID"]).assign(ra=0.0, dec=0.0)
        sets[name] = objects
    # unlabelled objects: per_field in every field of each dataset's labelled sample (synthetic objIDs)
    # (experiment 3's test fields add none: sdssclr.samples.unlabelled)
    for dataset, owners in (("compact", ("exp1",)), ("faint_compact", ("exp2",))):
        keys = pd.concat([sets[o][list(FIELD_KEYS)] for o in owners]).drop_duplicates().reset_index(drop=True)
        rep = keys.loc[keys.index.repeat(per_field)].reset_index(drop=True)
        sets[f"unlabelled_{dataset}"] = rep.assign(objID=-(1 + np.arange(len(rep), dtype=np.int64)), ra=0.0,
                                                   dec=0.0)
    n_shards = cfg["stamps"]["n_shards"]
    plans = {name: plan_shards(objects, n_shards) for name, objects in sets.items()}
    all_fields = pd.concat([p[list(FIELD_KEYS)] for p in plans.values()]).drop_duplicates()
    return plans, all_fields


def dag(cfg_path: Path) -> tuple[float, float, dict]:
    """(seconds, peak MB, jobs per rule) of ``snakemake -n results/table1.md`` on ``cfg_path``."""
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "snakemake", "results/table1.md", "-n", "--quiet", "rules",
                              "--directory", work, "--workflow-profile", "none", "--configfile", str(cfg_path),
                              "-s", str(HERE / "Snakefile"), "--cores", "1"],
                             capture_output=True, text=True, cwd=HERE)
        seconds = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(res.stdout[-2000:] + res.stderr[-2000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = res.stdout + res.stderr
    jobs = {}
    for line in out[out.index("Job stats:"):].splitlines()[3:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
        elif jobs:
            break
    return seconds, peak_mb, jobs


def stamp_stage(n_fields: int, per_field: int, threads: int) -> dict:
    """The stamp stage on full-size synthetic fields streamed from the loopback SAS."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        cat = generate_survey(tmp / "cat.parquet", tmp / "frames", n_objects=n_fields * (2 + per_field),
                              objects_per_field=2 + per_field, frame_shape=(1489, 2048), seed=3, edge_fraction=0.0,
                              threads=threads)
        render = time.perf_counter() - t0
        frames = sorted((tmp / "frames").rglob("*.fits.bz2"))
        with SAS(tmp / "frames") as sas:
            fetcher = FrameFetcher(sas.url, 16, tmp / "dl", parallel=8, keep_frames=False)
            c0, w0 = time.process_time(), time.perf_counter()
            index = cut_shard(cat, fetcher, tmp / "s.npy", tmp / "s.parquet", threads=1)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        return {"fields": n_fields, "objects": len(index), "cpu_s": cpu / n_fields, "wall_s": wall / n_fields,
                "fetched_mb": fetcher.fetched_bytes / 1e6 / n_fields, "high_water_mb": fetcher.high_water / 1e6,
                "synthetic_frame_mb": float(np.mean([f.stat().st_size for f in frames])) / 1e6,
                "render_s": render}


def real_field(root: Path, per_field: int) -> dict:
    """CPU seconds to cut ``2 + per_field`` objects of the real field from disk, and its frame sizes."""
    from sdssclr.survey.frames import read_frame

    paths = field_paths(root, *REAL_FIELD)
    frame = read_frame(paths["r"], "r")
    ny, nx = frame.image.shape
    rng = np.random.default_rng(0)
    x, y = rng.uniform(40, nx - 40, 2 + per_field), rng.uniform(40, ny - 40, 2 + per_field)
    sky = frame.wcs.pixel_to_world(x, y)
    objects = pd.DataFrame({"objID": np.arange(len(x)), "ra": sky.ra.deg, "dec": sky.dec.deg,
                            **{k: v for k, v in zip(FIELD_KEYS, REAL_FIELD)}})
    with tempfile.TemporaryDirectory() as tmp:
        best = np.inf
        for _ in range(3):
            c0 = time.process_time()
            cut_shard(objects, LocalFrames(root), Path(tmp) / "r.npy", Path(tmp) / "r.parquet", threads=1)
            best = min(best, time.process_time() - c0)
            for p in Path(tmp).glob("r.*"):
                p.unlink() if p.is_file() else None
    import bz2

    raw = [p.read_bytes() for p in paths.values()]
    decode = np.inf
    for _ in range(3):
        c0 = time.process_time()
        for data in raw:
            bz2.decompress(data)
        decode = min(decode, time.process_time() - c0)
    return {"cpu_s": best, "decode_s": decode, "frame_mb": float(np.mean([len(r) for r in raw])) / 1e6}


def training(cfg: dict, batch: int, steps: int) -> dict:
    """Images per second of SimCLR steps (two views each) with the default encoder."""
    import torch

    from sdssclr.learn.encoders import build_encoder
    from sdssclr.learn.engine import autocast, resolve_device
    from sdssclr.learn.simclr import ProjectionHead, nt_xent

    device = resolve_device("auto")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    crop = cfg["pretrain"]["augment"]["crop"]
    torch.manual_seed(0)
    enc = build_encoder(cfg["pretrain"]["encoder"], size=crop)
    model = torch.nn.Sequential(enc, ProjectionHead(enc.dim, cfg["pretrain"]["projection_dim"])).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(2 * batch, len(BANDS), crop, crop, device=device)
    elapsed = 0.0
    for step in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with autocast(device):
            z = model(x)
        loss = nt_xent(z[:batch].float(), z[batch:].float(), cfg["pretrain"]["temperature"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= 2:
            elapsed += time.perf_counter() - t0
    return {"device": name, "images_s": 2 * batch * steps / elapsed, "batch": batch,
            "encoder": cfg["pretrain"]["encoder"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fields", type=int, default=4, help="full-size fields streamed over loopback")
    ap.add_argument("--threads", type=int, default=2, help="processes rendering the synthetic fields")
    ap.add_argument("--release", default=str(HERE.parent / "shared" / "margnet-release"))
    ap.add_argument("--real-frames", default=str(HERE.parent / "shared" / "sdss-frames"))
    ap.add_argument("--nodes", type=int, default=16, help="cluster shape of the estimate: nodes")
    ap.add_argument("--cores-per-node", type=int, default=32)
    ap.add_argument("--gpus", type=int, default=4, help="GPUs in the cluster")
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=5)
    args = ap.parse_args(argv)
    cfg = yaml.safe_load((HERE / "config.yaml").read_text())
    per_field = cfg["unlabelled"]["per_field"]

    print("## 1. The plan: the default config on the released objects' fields\n")
    t0 = time.perf_counter()
    plans, all_fields = plan_sets(Path(args.release), cfg)
    print(f"planned {sum(map(len, plans.values())):,} stamps in {time.perf_counter() - t0:.1f} s; "
          f"{len(all_fields):,} distinct fields ({len(all_fields) * len(BANDS):,} frames)\n")
    print("| stamp set | objects | fields | shards | objects per shard (min / median / max) | largest shard | "
          "all shards |\n|---|---|---|---|---|---|---|")
    fetched_fields = 0
    peak_shard = 0
    for name, plan in plans.items():
        sizes = np.bincount(plan["shard"], minlength=cfg["stamps"]["n_shards"])
        fields = plan.groupby(list(FIELD_KEYS)).ngroups
        fetched_fields += fields
        peak_shard = max(peak_shard, sizes.max() * STAMP_BYTES)
        print(f"| {name} | {len(plan):,} | {fields:,} | {len(sizes)} | {sizes.min():,} / {int(np.median(sizes)):,} / "
              f"{sizes.max():,} | {sizes.max() * STAMP_BYTES / 1e9:.2f} GB | {len(plan) * STAMP_BYTES / 1e9:.1f} GB |")
    total_stamps = sum(len(p) for p in plans.values()) * STAMP_BYTES
    print(f"\nevery stamp set streams its own fields: {fetched_fields:,} field fetches for {len(all_fields):,} "
          "distinct fields (a shared survey.download_dir with keep_frames fetches each once)")

    seconds, peak_mb, jobs = dag(HERE / "config.yaml")
    print(f"\nDAG of `snakemake -n results/table1.md` (default config.yaml): {seconds:.1f} s, peak RSS "
          f"{peak_mb:.0f} MB, {sum(jobs.values()):,} jobs:")
    print(", ".join(f"{rule} {n}" for rule, n in sorted(jobs.items(), key=lambda kv: -kv[1])))

    print(f"\n## 2. The stamp stage on {args.fields} full-size fields streamed from the loopback SAS "
          f"(2 labelled + {per_field} unlabelled objects each, one core)\n")
    stage = stamp_stage(args.fields, per_field, args.threads)
    real = real_field(Path(args.real_frames), per_field)
    print(f"synthetic: {stage['cpu_s']:.2f} CPU s and {stage['wall_s']:.2f} wall s per field "
          f"({1 / stage['wall_s']:.2f} fields/s per core), {stage['fetched_mb']:.1f} MB fetched per field "
          f"({stage['synthetic_frame_mb']:.2f} MB per frame), disk high-water mark {stage['high_water_mb']:.1f} MB "
          f"(rendering the fields took {stage['render_s']:.0f} s)")
    print(f"real field {'/'.join(map(str, REAL_FIELD))} from disk: {real['cpu_s']:.2f} CPU s per field "
          f"({real['decode_s']:.2f} s of it a plain libbz2 decode of the five frames: this machine's speed), "
          f"{real['frame_mb']:.2f} MB per frame: the estimate's CPU per field")

    print("\n## 3. Training throughput\n")
    train = training(cfg, args.train_batch, args.train_steps)
    print(f"{train['encoder']} encoder, SimCLR steps of batch {train['batch']} (x2 views) on {train['device']}: "
          f"{train['images_s']:.0f} images/s")

    print("\n## 4. Paper-scale estimate\n")
    # a real field's bzip2 is what a field costs (synthetic frames compress worse: larger, slower)
    cpu_field = real["cpu_s"]
    cores = args.nodes * args.cores_per_node
    cpu_hours = fetched_fields * cpu_field / 3600
    fetched_tb = fetched_fields * len(BANDS) * real["frame_mb"] / 1e6
    distinct_tb = len(all_fields) * len(BANDS) * real["frame_mb"] / 1e6
    shard_jobs = len(plans) * cfg["stamps"]["n_shards"]
    # a shard job streams its fields one after another: its wall time is its share of the fields
    stamp_wall_h = fetched_fields * cpu_field / min(cores, shard_jobs) / 3600
    # per split seed and seed, four encoders: each dataset's 'all' (its training objects and the
    # unlabelled objects it sees; the compact one the target domain's too) and 'labelled' one
    exp1_train, exp2_train = len(plans["exp1"]) * 6 / 8, len(plans["exp2"]) * 8 / 10
    unl_c, unl_f = len(plans["unlabelled_compact"]), len(plans["unlabelled_faint_compact"])
    per_seed = (exp1_train + unl_c + unl_f) + exp1_train + (exp2_train + unl_f) + exp2_train
    runs = len(cfg["split_seeds"]) * len(cfg["seeds"])
    epochs = cfg["pretrain"]["epochs"]
    gpu_hours = runs * epochs * 2 * per_seed / train["images_s"] / 3600
    rows = [
        ("stamp stage CPU", f"{cpu_hours:,.0f} CPU-hours", f"{fetched_fields:,} field fetches x {cpu_field:.2f} s"),
        ("frames fetched", f"{fetched_tb:.2f} TB", f"{fetched_fields * len(BANDS):,} frames x {real['frame_mb']:.2f} MB"
         " (the real frame's size)"),
        ("distinct frames", f"{distinct_tb:.2f} TB", f"{len(all_fields) * len(BANDS):,} frames; fetched once with a "
         "shared download_dir and keep_frames"),
        ("stamps on disk", f"{total_stamps / 1e9:,.0f} GB", f"{sum(map(len, plans.values())):,} stamps x "
         f"{STAMP_BYTES:,} B, per split seed"),
        ("peak disk per stamp job", f"{(peak_shard + stage['high_water_mb'] * 1e6) / 1e9:.2f} GB",
         "largest shard + the frames in flight (streamed, deleted after each field)"),
        ("stamp stage wall time", f"{stamp_wall_h:.1f} h", f"{shard_jobs} shard jobs on {cores} cores "
         f"({args.nodes} nodes x {args.cores_per_node})"),
        ("download rate that wall time needs", f"{fetched_tb * 1e6 / (stamp_wall_h * 3600):,.0f} MB/s",
         "the frames fetched over the stamp stage's wall time; the archive's rate sets the real wall time"),
        ("pretraining", f"{gpu_hours:,.0f} device-hours on {train['device']}",
         f"{4 * runs} encoders (4 for each of {runs} split seed x seed pairs): {epochs} epochs x 2 views x {per_seed:,.0f} "
         f"images per split seed and seed at "
         f"{train['images_s']:.0f} images/s; on {args.gpus} GPUs: {gpu_hours / args.gpus:,.0f} h wall"),
    ]
    print("| quantity | estimate | from |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if "CPU" in train["device"]:
        print("\nThe pretraining figure is measured on this machine's CPU: rerun on a GPU for device-hours.")


if __name__ == "__main__":
    main()
