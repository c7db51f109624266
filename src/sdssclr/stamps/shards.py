"""Stamps cut field by field into memory-mappable ``.npy`` shards, with a Parquet index.

Stamp sets. Stamps are cut per consumer: one set per experiment and split seed (the objects of its
sample, ``results/stamps/split{S}/{experiment}/``) and one per dataset's unlabelled objects
(``results/stamps/split{S}/unlabelled_{dataset}/``). A job depends on the sets it reads and no
other, so that redrawing one experiment's objects, or changing the unlabelled objects, re-cuts
that set alone and reruns only its readers. The price: a field with objects in several sets has
its frames decoded once per set.

Plan. Every object of a set is assigned with its whole field to one of ``n_shards`` shards
(:func:`write_plan`), so that within a set each field's frames are read once.

Throughput. Objects are grouped by field; each field's five frames are decompressed once, all the
field's objects are cut in one vectorised pass (:func:`sdssclr.stamps.cutting.cut_field`), and the
frames are released. At most ``threads`` fields are decoded at a time (bz2 decompression releases
the GIL, so threads run in parallel).

Invalid stamps. A stamp whose Lanczos footprint leaves the frame is flagged ``flag_edge``; one
with non-finite pixels inside the frame ``flag_nonfinite``. Policy ``drop`` marks them unusable;
``pad`` fills the missing or non-finite pixels with 0 (the sky-subtracted background level) and
keeps them. Either way the index records the flags and the log counts them. Objects of a field
whose frames are missing are flagged ``flag_missing`` and never usable (:func:`cut_shard`).

Reading. :func:`read_index` reads one or several sets' indexes (each row naming its shard file);
:func:`load_stamps` reads any selection of their objects from the memory-mapped shards;
:func:`usable_index` is their usable rows.
"""

from __future__ import annotations

import logging
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..bands import BANDS
from ..catalog import FIELD_KEYS
from ..io import array_hash, atomic_path, data_source, path_list, remove_stale_temporaries, write_parquet_atomic
from ..survey.frames import TYPICAL_FRAME_MB, Frame, MissingFrame, read_frame
from .cutting import cut_field

log = logging.getLogger(__name__)


POLICIES = ("drop", "pad")


def plan_shards(objects: pd.DataFrame, n_shards: int) -> pd.DataFrame:
    """Assign whole fields to ``n_shards`` shards, balancing object counts (deterministic)."""
    objects = objects.drop_duplicates("objID").sort_values([*FIELD_KEYS, "objID"]).reset_index(drop=True)
    sizes = objects.groupby(list(FIELD_KEYS), sort=True).size()
    order = sorted(range(len(sizes)), key=lambda i: (-sizes.iloc[i], i))
    load = np.zeros(n_shards, dtype=np.int64)
    shard_of = {}
    for i in order:
        s = int(np.argmin(load))
        shard_of[sizes.index[i]] = s
        load[s] += sizes.iloc[i]
    keys = list(objects[list(FIELD_KEYS)].itertuples(index=False, name=None))
    objects["shard"] = np.array([shard_of[k] for k in keys], dtype=np.int64)
    return objects


def part_path(parts_dir: Path, key: tuple) -> Path:
    return Path(parts_dir) / ("field-" + "-".join(str(int(k)) for k in key) + ".npz")


def plan_key(sub: pd.DataFrame, size: int) -> str:
    """What a field's part was cut from: its plan rows (objIDs and positions) and the stamp size."""
    return array_hash(np.int64(size), sub["objID"].to_numpy(np.int64), sub["ra"].to_numpy(np.float64),
                      sub["dec"].to_numpy(np.float64))


def part_is_current(path: Path, key: str) -> str:
    """'' when the part at ``path`` was cut from plan rows of ``key``, else why it is stale."""
    try:
        with np.load(path) as part:
            if "plan_key" not in part.files:
                return "written without a plan key"
            return "" if str(part["plan_key"]) == key else "the plan changed (objects, positions or stamp size)"
    except Exception as exc:  # noqa: BLE001 - a truncated part is stale too
        return f"unreadable ({type(exc).__name__}: {exc})"


def cut_shard(objects: pd.DataFrame, frames, out_npy, out_index, *, size: int = 32,
              policy: str = "drop", threads: int = 1, shard: int = 0, max_missing_fraction: float = 0.0,
              metadata: dict | None = None) -> pd.DataFrame:
    """Cut every object of ``objects`` (one shard of the plan) into ``out_npy``; index to Parquet.

    ``frames`` provides ``acquire(key) -> {band: path or decoded Frame}``, ``release(key)`` and
    ``stop()`` for a field key (rerun, run, camcol, field).

    Resumable field by field: each cut field is written at once (atomically) to
    ``<out_npy minus .npy>.parts/``; a rerun after a crash or ``kill -9`` cuts only the fields not
    yet there, and the shard is assembled from the parts at the end (then the parts are removed).
    A field whose frames are missing (HTTP 404, absent from the mirror) is recorded as such: its
    objects are flagged ``flag_missing`` (never usable) and counted; the shard fails only when
    missing fields exceed ``max_missing_fraction`` of its fields. Any other failure stops the
    shard at once: queued fields are cancelled and no further download is started.
    """
    if policy not in POLICIES:
        raise ValueError(f"stamp policy must be one of {POLICIES}, got {policy!r}")
    objects = objects.sort_values([*FIELD_KEYS, "objID"]).reset_index(drop=True)
    groups = [(k, g.index.to_numpy()) for k, g in objects.groupby(list(FIELD_KEYS), sort=True)]
    parts_dir = Path(out_npy).with_suffix(".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temporaries(parts_dir)
    keys = {k: plan_key(objects.iloc[rows], size) for k, rows in groups}
    todo = []
    for k, rows in groups:
        path = part_path(parts_dir, k)
        if path.exists():
            why = part_is_current(path, keys[k])
            if not why:
                continue
            log.warning("%s: discarded, %s; cutting field %s again", path, why, k)
            path.unlink()
        todo.append((k, rows))
    log.info("shard %d: %d fields, %d already cut in an earlier attempt from the same plan rows%s", shard,
             len(groups), len(groups) - len(todo), f" ({stale} stale temporary files removed)" if stale else "")

    failed = threading.Event()

    def work(item):
        key, rows = item
        if failed.is_set():
            return None  # another field failed: the shard is stopping
        sub = objects.iloc[rows]
        try:
            paths = frames.acquire(key)
        except MissingFrame as exc:
            log.warning("field %s skipped: %s", key, exc)
            part = {"missing": np.ones(len(rows), bool), "reason": np.array(str(exc))}
        except BaseException:
            failed.set()
            frames.stop()  # no further download starts once one field failed
            raise
        else:
            try:
                field_frames = {b: p if isinstance(p, Frame) else read_frame(p, b, key) for b, p in paths.items()}
                stamps, edge, nonfinite, pos = cut_field(field_frames, sub["ra"].to_numpy(), sub["dec"].to_numpy(),
                                                         size)
            finally:
                frames.release(key)
            bad = edge | nonfinite
            stamps[bad] = np.nan_to_num(stamps[bad], nan=0.0, posinf=0.0, neginf=0.0)
            part = {"stamps": stamps, "flag_edge": edge, "flag_nonfinite": nonfinite,
                    "missing": np.zeros(len(rows), bool), **pos}
        part["objID"] = sub["objID"].to_numpy()
        part["plan_key"] = np.array(keys[key])
        with atomic_path(part_path(parts_dir, key)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **part)  # through a handle: savez would append .npz to the temporary name
        return key

    pool = ThreadPoolExecutor(max_workers=max(1, threads))
    try:
        futures = [pool.submit(work, item) for item in todo]
        for fut in tqdm(as_completed(futures), total=len(futures), desc=f"shard {shard} fields", mininterval=5):
            fut.result()
    except BaseException:
        frames.stop()  # no further download starts once one field failed
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    index = assemble_shard(objects, groups, parts_dir, out_npy, size, shard)
    missing_fields = [k for k, rows in groups if index["flag_missing"].to_numpy()[rows].all()]
    allowed = missing_fields_allowed(len(groups), max_missing_fraction)
    if len(missing_fields) > allowed:
        raise MissingFrame(f"shard {shard}: the frames of {len(missing_fields)} of {len(groups)} fields are missing, "
                           f"more than stamps.max_missing_fraction = {max_missing_fraction} allows ({allowed:g}): "
                           f"{missing_fields[:10]}{' ...' if len(missing_fields) > 10 else ''} (see the log for the "
                           f"URLs; delete {parts_dir} to try those fields again)")
    bad = index["flag_edge"] | index["flag_nonfinite"]
    index["usable"] = ~(bad | index["flag_missing"]) if policy == "drop" else ~index["flag_missing"]
    log.info("shard %d: %d objects in %d fields; %d in %d fields with missing frames, %d leave the frame, "
             "%d non-finite; policy %s: %d usable", shard, len(index), len(groups), index["flag_missing"].sum(),
             len(missing_fields), index["flag_edge"].sum(), index["flag_nonfinite"].sum(), policy,
             index["usable"].sum())
    write_parquet_atomic(index, out_index, metadata)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return index


#: With a non-zero ``stamps.max_missing_fraction`` every shard tolerates at least this many fields
#: with missing frames, however few fields it has (see :func:`missing_fields_allowed`).
MISSING_FIELDS_FLOOR = 2


def missing_fields_allowed(n_fields: int, fraction: float) -> float:
    """Fields of a shard of ``n_fields`` that may lack frames: ``fraction`` of them, and at least
    :data:`MISSING_FIELDS_FLOOR` when ``fraction`` > 0 (0 tolerates none). At the default 0.02 a
    shard of 30 fields tolerates 2 (not 0.6), one of 500 fields 10."""
    return 0.0 if fraction <= 0 else max(float(MISSING_FIELDS_FLOOR), fraction * n_fields)


def write_block(fh, block: np.ndarray) -> None:
    """Append one field's stamps to an open ``.npy`` being assembled."""
    fh.write(block.tobytes())


def assemble_shard(objects: pd.DataFrame, groups, parts_dir: Path, out_npy, size: int, shard: int) -> pd.DataFrame:
    """The shard's ``.npy`` (atomically) and its index, from the per-field parts."""
    n = len(objects)
    index = pd.DataFrame({"objID": objects["objID"].to_numpy(), "shard": shard,
                          "offset": np.arange(n, dtype=np.int64)})
    cols = {"flag_edge": np.zeros(n, bool), "flag_nonfinite": np.zeros(n, bool), "flag_missing": np.zeros(n, bool),
            **{f"{a}_{b}": np.full(n, np.nan) for b in BANDS for a in "xy"}}
    # written field after field with plain writes, not through a memory map: a full disk is then
    # an OSError naming the shard (a memory map dies of SIGBUS, silently)
    shape = (n, len(BANDS), size, size)
    try:
        with atomic_path(out_npy) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": np.dtype(np.float32).str, "fortran_order": False,
                                                      "shape": shape})
            written = 0
            for key, rows in groups:
                if not np.array_equal(rows, np.arange(written, written + len(rows))):
                    raise RuntimeError(f"shard {shard}: field {key} is not one contiguous block of the plan")
                with np.load(part_path(parts_dir, key)) as part:
                    if not np.array_equal(part["objID"], objects["objID"].to_numpy()[rows]):
                        raise RuntimeError(f"{part_path(parts_dir, key)} holds other objects than the plan's field "
                                           f"{key}")
                    if part["missing"].all():
                        block = np.zeros((len(rows), *shape[1:]), np.float32)
                        cols["flag_missing"][rows] = True
                    else:
                        block = np.ascontiguousarray(part["stamps"], dtype=np.float32)
                        for name in cols:
                            if name in part.files:
                                cols[name][rows] = part[name]
                write_block(fh, block)
                written += len(rows)
    except OSError as exc:
        raise OSError(exc.errno, f"shard {shard}: writing {out_npy} failed ({exc.strerror or exc}); its temporary "
                                 f"file was removed and the cut fields kept in {parts_dir}, so a rerun after "
                                 "freeing space only assembles the shard") from exc
    for name, values in cols.items():
        index[name] = values
    return index


def load_stamps(index: pd.DataFrame, objids=None) -> np.ndarray:
    """Stamps of ``objids`` (default: every row) of an index read by :func:`read_index`, from the
    memory-mapped shards its ``shard_file`` column names."""
    if objids is not None:
        index = index.set_index("objID").loc[np.asarray(objids)].reset_index()
    maps = {f: np.load(f, mmap_mode="r") for f in index["shard_file"].unique()}
    if not maps:
        raise ValueError("no stamps to load: the selection is empty")
    size = next(iter(maps.values())).shape[-1]
    out = np.empty((len(index), len(BANDS), size, size), dtype=np.float32)
    for f, rows in index.groupby("shard_file").indices.items():
        offsets = index["offset"].to_numpy()[rows]
        order = np.argsort(offsets)
        out[rows[order]] = maps[f][offsets[order]]
    return out


def download_plan(plan: pd.DataFrame, frame_mb: float = TYPICAL_FRAME_MB) -> str:
    """What streaming a plan's frames fetches: fields, frames and about how many gigabytes."""
    fields = plan.groupby(list(FIELD_KEYS)).ngroups
    frames = fields * len(BANDS)
    return (f"download plan: {fields} fields, {frames} frames, about {frames * frame_mb / 1e3:.1f} GB "
            f"({frame_mb} MB per frame, the mean of a real DR16 frame); at most the frames of the fields in "
            "flight are on disk at once (survey.keep_frames false)")


def write_plan(object_paths, n_shards: int, out, labelled: bool = True, streamed: bool = False) -> pd.DataFrame:
    """The manifest of one stamp set: every object of ``object_paths`` (an experiment's sample, or
    one dataset's unlabelled objects) once, with its shard and a ``labelled`` flag. ``streamed``:
    the frames will be fetched from the archive, and the log says how much
    (:func:`download_plan`) before anything is."""
    sources = {data_source(p) for p in object_paths}
    if len(sources) != 1:
        raise ValueError(f"the objects to stamp come from different sources: {sorted(sources)}")
    cols = ["objID", "ra", "dec", *FIELD_KEYS]
    objects = pd.concat([pd.read_parquet(p, columns=cols) for p in object_paths], ignore_index=True)
    plan = plan_shards(objects.assign(labelled=bool(labelled)), n_shards)
    log.info("stamp plan: %d %s objects in %d fields over %d shards (sizes %s)", len(plan),
             "labelled" if labelled else "unlabelled", plan.groupby(list(FIELD_KEYS)).ngroups, n_shards,
             np.bincount(plan["shard"], minlength=n_shards).tolist())
    if streamed:
        log.info("%s", download_plan(plan))
    write_parquet_atomic(plan, out, {"source": sources.pop()})
    return plan


def run_shard(plan_path, shard: int, frames, out_npy, out_index, *, size: int, policy: str,
              max_missing_fraction: float = 0.0, threads: int = 1) -> pd.DataFrame:
    plan = pd.read_parquet(plan_path)
    objects = plan[plan["shard"] == shard]
    index = cut_shard(objects, frames, out_npy, out_index, size=size, policy=policy, threads=threads, shard=shard,
                      max_missing_fraction=max_missing_fraction, metadata={"source": data_source(plan_path)})
    if hasattr(frames, "summary"):
        log.info("frames: %s", frames.summary())
    return index


def merge_index(shard_indexes, objects_paths, out, labelled: bool = True) -> pd.DataFrame:
    """The index of one stamp set over its shards, joined with the columns of the objects it was
    cut for (``objects_paths``: the sample's catalogue columns, or the unlabelled objects'
    photometric ones, whose spectroscopic columns and class stay empty); ``labelled`` says which."""
    parts = [pd.read_parquet(p) for p in shard_indexes]
    for path, part in zip(map(Path, shard_indexes), parts):  # the stamps the index points into
        npy = path.with_suffix(".npy")
        if not npy.exists():
            raise FileNotFoundError(f"{npy}: the stamps of shard index {path} are missing; rerun its stamp_shard job")
        n = np.load(npy, mmap_mode="r").shape[0]
        if n != len(part):
            raise ValueError(f"{npy} holds {n} stamps but its index {path} {len(part)} rows; rerun its stamp_shard job")
    index = pd.concat(parts, ignore_index=True)
    paths = path_list(objects_paths)
    objects = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True).drop(columns=["split"],
                                                                                      errors="ignore")
    objects = objects.drop(columns=[c for c in objects.columns if c in index.columns and c != "objID"])
    merged = index.merge(objects.assign(labelled=bool(labelled)), on="objID", how="left", validate="one_to_one")
    unknown = merged["labelled"].isna()
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} stamped objects are in none of {[str(p) for p in paths]}, e.g. "
                         f"{merged.loc[unknown, 'objID'].head(3).tolist()}")
    merged["labelled"] = merged["labelled"].astype(bool)
    log.info("stamp index: %d %s objects, %d usable, %d leave the frame, %d non-finite, %d with missing frames",
             len(merged), "labelled" if labelled else "unlabelled", merged["usable"].sum(),
             merged["flag_edge"].sum(), merged["flag_nonfinite"].sum(), merged["flag_missing"].sum())
    write_parquet_atomic(merged, out, {"source": data_source(paths[0])})
    return merged


def shard_path(index_path, shard: int) -> Path:
    """The ``.npy`` of shard ``shard`` beside the stamp index at ``index_path``."""
    return Path(index_path).parent / f"shard-{int(shard):04d}.npy"


def read_index(index_paths, usable: bool = False) -> pd.DataFrame:
    """The rows of one or several stamp sets' indexes (a path or a list), each with the
    ``shard_file`` its stamps are in; an object stamped in several sets (the same cut of the same
    frames) is kept once. ``usable``: only the rows whose stamps are usable."""
    paths = path_list(index_paths)
    if not paths:
        raise ValueError("no stamp index given")
    parts = []
    for path in paths:
        part = pd.read_parquet(path)
        part["shard_file"] = [str(shard_path(path, s)) for s in part["shard"]]
        parts.append(part)
    index = pd.concat(parts, ignore_index=True).drop_duplicates("objID", keep="first")
    if usable:
        index = index[index["usable"]]
    return index.reset_index(drop=True)


def usable_index(index_paths) -> pd.DataFrame:
    """The rows of the stamp index (or indexes) whose stamps are usable (:func:`read_index`)."""
    return read_index(index_paths, usable=True)
