"""Objects with their stamps, ready for a model: split table + stamp index + shards + features.

:class:`Objects` holds row-aligned arrays (objIDs, stamps, the 24 features, seeing, classes,
splits, task labels); the loaders read them for an experiment's split (:func:`load_objects`), for
a list of objIDs (:func:`load_by_objid`) or for rows of the stamp index (:func:`objects_of_rows`),
and :func:`iter_usable_shards` walks every usable stamp one shard at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..bands import BANDS, PIXEL_SCALE
from ..catalog import features, labels, select_task
from ..io import data_source
from .shards import load_stamps, read_index

log = logging.getLogger(__name__)


@dataclass
class Objects:
    """Arrays of one set of objects, row-aligned."""

    objid: np.ndarray  # (N,) int64
    stamps: np.ndarray  # (N, 5, H, W) float32, nanomaggies
    features: np.ndarray  # (N, 24) float32
    psf_fwhm_px: np.ndarray  # (N, 5) float32, the stamp's own seeing in pixels
    classes: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) str
    labels: np.ndarray | None = None  # (N,) int64 for a task
    source: str = ""

    def subset(self, mask) -> "Objects":
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Objects(self.objid[mask], self.stamps[mask], self.features[mask], self.psf_fwhm_px[mask],
                       self.classes[mask], self.split[mask], pick(self.labels), self.source)

    def concat(self, other: "Objects") -> "Objects":
        """These objects followed by ``other``'s (same task)."""
        cat = lambda a, b: None if a is None else np.concatenate([a, b])  # noqa: E731
        return Objects(*(cat(getattr(self, f), getattr(other, f)) for f in
                         ("objid", "stamps", "features", "psf_fwhm_px", "classes", "split", "labels")),
                       self.source)

    def __len__(self):
        return len(self.objid)


def load_objects(split_path, index_paths, task: str | None = None, splits=None) -> Objects:
    """Objects of an experiment's split table with usable stamps in the stamp sets
    ``index_paths`` (dropped ones are counted). An object of the split that no set holds at all is
    an error: the split and the stamps disagree."""
    table = pd.read_parquet(split_path)
    if splits is not None:
        table = table[table["split"].isin(list(splits))]
    if task is not None:
        table = select_task(table, task)
    index = read_index(index_paths)
    unstamped = ~table["objID"].isin(index["objID"])
    if unstamped.any():
        raise KeyError(f"{split_path}: {int(unstamped.sum())} objects are in none of the stamp sets {index_paths}, "
                       f"e.g. {table.loc[unstamped, 'objID'].head(3).tolist()}; was the split made from another "
                       "sample than the stamps?")
    index = index[index["usable"]]
    keep = table["objID"].isin(index["objID"])
    if (~keep).any():
        log.info("%s: %d of %d objects have no usable stamp and are left out (%s)", Path(split_path).name,
                 (~keep).sum(), len(table), table.loc[~keep, "class"].value_counts().to_dict())
    table = table[keep].reset_index(drop=True)
    stamps = load_stamps(index, table["objID"].to_numpy())
    fwhm = np.stack([table[f"psffwhm_{b}"].to_numpy(float) for b in BANDS], 1) / PIXEL_SCALE
    return Objects(objid=table["objID"].to_numpy(np.int64), stamps=stamps, features=features(table),
                   psf_fwhm_px=fwhm.astype(np.float32), classes=table["class"].to_numpy(str),
                   split=table["split"].to_numpy(str), labels=None if task is None else labels(table, task),
                   source=data_source(split_path))


def load_by_objid(index_paths, objids, source: str = "", index: pd.DataFrame | None = None) -> Objects:
    """Objects with usable stamps among ``objids`` (labelled or not; an unlabelled object's class
    is ''), in the order of ``objids``; the split column says 'pretrain'. ``index``: the usable rows
    of the stamp sets by objID, when the caller has already read them."""
    index = read_index(index_paths, usable=True).set_index("objID") if index is None else index
    objids = np.asarray(objids, dtype=np.int64)
    missing = ~np.isin(objids, index.index.to_numpy())
    if missing.any():
        raise KeyError(f"{index_paths}: {int(missing.sum())} objects have no usable stamp, e.g. {objids[missing][:3]}")
    return objects_of_rows(index.loc[objids].reset_index(), source)


def objects_of_rows(rows: pd.DataFrame, source: str = "") -> Objects:
    """Objects of rows of a stamp index read by :func:`sdssclr.stamps.shards.read_index` (labelled
    or not; an unlabelled object's class is '')."""
    objids = rows["objID"].to_numpy(np.int64)
    stamps = load_stamps(rows)
    fwhm = np.stack([rows[f"psffwhm_{b}"].to_numpy(float) for b in BANDS], 1) / PIXEL_SCALE
    classes = rows["class"].fillna("").to_numpy(str) if "class" in rows else np.full(len(rows), "")
    return Objects(objid=objids, stamps=stamps, features=features(rows), psf_fwhm_px=fwhm.astype(np.float32),
                   classes=classes, split=np.full(len(rows), "pretrain"), source=source)


def iter_usable_shards(index_paths):
    """(objIDs, stamps) of the usable objects of one shard file at a time, so that embedding every
    object of the stamp sets never holds more than one shard in memory."""
    index = read_index(index_paths, usable=True)
    for _, rows in index.groupby("shard_file", sort=True):
        yield rows["objID"].to_numpy(np.int64), load_stamps(rows)
