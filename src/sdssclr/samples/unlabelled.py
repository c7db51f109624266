"""The unlabelled sample: photometric objects of the fields the labelled sample already needs.

Self-supervision earns its place on images without labels. Every field whose five frames are
downloaded for ~1.7 spectroscopic objects also holds tens to hundreds of photometric objects of
the same kind, at no extra download. The unlabelled sample is

- photometric objects (PhotoObj, no spectrum: any objID with a SpecObj is excluded, and so is
  every objID of the labelled catalogue),
- passing the *photometric* part of the same cut definitions as the labelled sample
  (:func:`sdssclr.samples.cuts.dataset_cuts` with ``photometric_only``: clean photometry, guards, flags,
  compact),
- in the fields of the labelled sample's objects: for each split seed, the samples of the
  experiments that train on the dataset (:meth:`sdssclr.experiments.ExperimentGraph.field_experiments`;
  an experiment that only tests on it, like experiment 3, adds no fields, so that redrawing its
  test objects never changes what an encoder pretrains on),
- at most ``per_field`` of them per field, chosen by a seeded pseudo-random rank
  (:func:`field_rank`), the same in SQL (``ROW_NUMBER() OVER (PARTITION BY field ...)``) and here.

The faint+compact unlabelled objects are those of this selection that also pass the faint rule.
The SkyServer path queries one contiguous range of fields of one run and camcol at a time (every
query within the query-string limit, columns in groups); at survey scale that is thousands of
queries, so a CasJobs export of the same SQL (``survey.photometric_file``) is the practical route.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..catalog import FIELD_KEYS, PHOTO_COLUMN_NAMES, PHOTO_COLUMNS, check_columns
from ..io import data_source, write_parquet_atomic
from ..survey.skyserver import Throttle, query_in_groups, read_catalog_file, split_columns
from .cuts import Cut, apply_cuts, cut_report, dataset_cuts, where_clause

log = logging.getLogger(__name__)

_P, _Q = 1_000_003, 1_000_033  # primes: (objID mod P) * m mod Q stays far below 2**63 in SQL


def _multiplier(seed: int) -> int:
    return 1 + (int(seed) * 7919 + 104_729) % (_P - 2)


def field_rank(objid, seed: int) -> np.ndarray:
    """The pseudo-random key that orders objects within a field (ties broken by objID)."""
    return (np.asarray(objid, dtype=np.int64) % _P) * _multiplier(seed) % _Q


def field_rank_sql(seed: int) -> str:
    return f"(p.objID%{_P})*{_multiplier(seed)}%{_Q}"


def per_field_sample(df: pd.DataFrame, per_field: int, seed: int) -> pd.DataFrame:
    """At most ``per_field`` rows of each field: the lowest :func:`field_rank`, then objID."""
    if df.empty:
        return df
    ranked = df.assign(_key=field_rank(df["objID"], seed)).sort_values([*FIELD_KEYS, "_key", "objID"])
    keep = ranked.groupby(list(FIELD_KEYS), sort=False).cumcount() < per_field
    return ranked[keep].drop(columns="_key").sort_values("objID").reset_index(drop=True)


def photometric_sql(cuts: list[Cut], rerun: int, run: int, camcol: int, fields: tuple[int, int], per_field: int,
                    seed: int, columns=PHOTO_COLUMNS) -> str:
    """SkyServer SQL of the unlabelled objects of fields ``fields[0]..fields[1]`` of one run and
    camcol: photometric ``cuts``, no spectrum, ranked within each field, the first ``per_field``."""
    cols = [PHOTO_COLUMNS[0], *(c for c in columns if c.alias != "objID")]
    inner = ",".join(c.select() for c in cols)
    outer = ",".join(f"t.{c.alias}" for c in cols)
    rank = f"ROW_NUMBER() OVER (PARTITION BY p.field ORDER BY {field_rank_sql(seed)},p.objID) AS rk"
    sql = (f"SELECT {outer} FROM (SELECT {inner},{rank} FROM PhotoObj AS p WHERE p.rerun={int(rerun)} AND "
           f"p.run={int(run)} AND p.camcol={int(camcol)} AND p.field BETWEEN {int(fields[0])} AND {int(fields[1])} "
           f"AND {where_clause(cuts)} AND NOT EXISTS(SELECT 1 FROM SpecObj AS s WHERE s.bestObjID=p.objID)) AS t "
           f"WHERE t.rk<={int(per_field)} ORDER BY t.objID")
    assert "--" not in sql
    return sql


def field_ranges(fields: pd.DataFrame) -> list[tuple[int, int, int, tuple[int, int]]]:
    """(rerun, run, camcol, (first, last)) for every run of consecutive field numbers."""
    out = []
    for (rerun, run, camcol), g in fields.groupby(["rerun", "run", "camcol"], sort=True):
        nums = np.unique(g["field"].to_numpy())
        start = prev = nums[0]
        for f in nums[1:]:
            if f != prev + 1:
                out.append((int(rerun), int(run), int(camcol), (int(start), int(prev))))
                start = f
            prev = f
        out.append((int(rerun), int(run), int(camcol), (int(start), int(prev))))
    return out


def query_photometric(cuts: list[Cut], fields: pd.DataFrame, per_field: int, seed: int, *, data_release: int,
                      timeout: float, per_minute: float = 30, retries: int = 5, backoff_s: float = 2.0, sdss=None,
                      sleep=time.sleep) -> pd.DataFrame:
    """The unlabelled objects of ``fields`` from SkyServer, one range of fields at a time."""
    throttle = Throttle(per_minute, sleep=sleep)
    parts = []
    ranges = field_ranges(fields)
    log.info("photometric objects of %d fields: %d queries' worth of field ranges", len(fields), len(ranges))
    for rerun, run, camcol, span in ranges:
        def sql_of(cols, rerun=rerun, run=run, camcol=camcol, span=span):
            return photometric_sql(cuts, rerun, run, camcol, span, per_field, seed, cols)

        groups = split_columns(sql_of, PHOTO_COLUMNS[1:], data_release)
        parts.append(query_in_groups(sql_of, groups, what=f"photometric objects of {run}/{camcol}/{span}",
                                     columns_out=PHOTO_COLUMN_NAMES, data_release=data_release, timeout=timeout,
                                     retries=retries, backoff_s=backoff_s, throttle=throttle, sdss=sdss, sleep=sleep))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(PHOTO_COLUMN_NAMES))


def needed_fields(sample_paths) -> pd.DataFrame:
    """The fields of every object of the experiments' samples (their frames are downloaded anyway)."""
    return (pd.concat([pd.read_parquet(p, columns=list(FIELD_KEYS)) for p in sample_paths])
            .drop_duplicates().sort_values(list(FIELD_KEYS)).reset_index(drop=True))


def select_unlabelled(photometric: pd.DataFrame, labelled_ids, fields: pd.DataFrame, dataset: str,
                      cuts_config: dict, per_field: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """The unlabelled objects of ``dataset`` among ``photometric`` (see the module docstring),
    with the counts of what each step removed."""
    counts = {"photometric objects": len(photometric)}
    spec = photometric["objID"].isin(np.asarray(labelled_ids))
    df = photometric[~spec]
    counts["removed: have a spectrum (labelled catalogue)"] = int(spec.sum())
    in_fields = df.merge(fields, on=list(FIELD_KEYS), how="inner")
    counts["removed: outside the labelled sample's fields"] = len(df) - len(in_fields)
    compact = dataset_cuts("compact", cuts_config, photometric_only=True)
    report = cut_report(in_fields, compact)
    passed = in_fields[apply_cuts(in_fields, compact)]
    counts["removed: photometric cuts (compact)"] = len(in_fields) - len(passed)
    chosen = per_field_sample(passed, per_field, seed)
    counts[f"removed: beyond {per_field} per field"] = len(passed) - len(chosen)
    if dataset == "faint_compact":
        faint = dataset_cuts("faint_compact", cuts_config, photometric_only=True)[len(compact):]
        keep = apply_cuts(chosen, faint)
        counts["removed: faint rule"] = int((~keep).sum())
        chosen = chosen[keep].reset_index(drop=True)
    elif dataset != "compact":
        raise ValueError(f"unknown dataset {dataset!r}")
    counts["unlabelled objects"] = len(chosen)
    return chosen, counts | {"_cut_report": report}


def write_unlabelled(photometric_path, catalog_path, sample_paths, dataset: str, cuts_config: dict, per_field: int,
                     seed: int, out) -> pd.DataFrame:
    """Write ``results/samples/split{S}/unlabelled_{dataset}.parquet`` from the fields of the samples at
    ``sample_paths``; log every count."""
    source = data_source(photometric_path)
    if source != data_source(catalog_path):
        raise ValueError(f"{photometric_path} ({source}) and {catalog_path} ({data_source(catalog_path)}) come from "
                         "different sources")
    photometric = pd.read_parquet(photometric_path)
    check_columns(photometric, required=PHOTO_COLUMN_NAMES, source=str(photometric_path))
    labelled = pd.read_parquet(catalog_path, columns=["objID"])["objID"]
    chosen, counts = select_unlabelled(photometric, labelled, needed_fields(sample_paths), dataset, cuts_config,
                                       per_field, seed)
    report = counts.pop("_cut_report")
    log.info("unlabelled %s objects (source %s):\n%s\nphotometric cuts in order:\n%s", dataset, source,
             "\n".join(f"  {k}: {v}" for k, v in counts.items()), report.to_string(index=False))
    write_parquet_atomic(chosen, out, {"source": source, "dataset": dataset, "unlabelled": "true"})
    return chosen


def write_photometric(out, survey: dict, sample_paths, cuts_config: dict, unlabelled: dict, *, export=None, sdss=None,
                      sleep=time.sleep) -> pd.DataFrame:
    """The SDSS path's photometric catalogue of the labelled sample's fields: a CasJobs export of
    :func:`photometric_sql` (``survey.photometric_file``), or SkyServer queries field range by range."""
    release = survey["data_release"]
    fields = needed_fields(sample_paths)
    if export:
        df = read_catalog_file(export, PHOTO_COLUMNS)
        origin = f"CasJobs export {export}"
    elif unlabelled["per_field"] == 0:
        df, origin = pd.DataFrame(columns=list(PHOTO_COLUMN_NAMES)), "none (unlabelled.per_field is 0)"
    else:
        cuts = dataset_cuts("compact", cuts_config, photometric_only=True)
        df = query_photometric(cuts, fields, unlabelled["per_field"], unlabelled["seed"], data_release=release,
                               timeout=survey["timeout_s"], per_minute=survey["max_queries_per_minute"],
                               retries=survey["retries"], backoff_s=survey["backoff_s"], sdss=sdss, sleep=sleep)
        origin = "SkyServer SQL via astroquery"
    log.info("photometric catalogue: %d objects in %d fields, from %s", len(df), len(fields), origin)
    write_parquet_atomic(df, out, {"source": f"SDSS DR{release}", "origin": origin})
    return df
