"""Datasets given as object lists: the paper's own objects, reproduced object by object.

A dataset (``datasets.<name>.objid_list``) or a transfer experiment's test set
(``experiments.<name>.test_objid_list``) may name an object list: a Parquet table with an ``objID``
column (and optionally ``class``), or a NumPy ``.npy`` array of objIDs such as the MargNet
release's ``objlist*.npy``, read without pickles. The pool is then the listed objects that pass the
dataset's cuts: the cuts are still the project's, and the log reports how many listed objects fail
each cut (on real data this checks our cut definitions against the paper's), how many the
catalogue lacks, and how many carry another class than the list says.

SDSS objIDs encode where an object was measured (:func:`decode_objid`): rerun, run, camcol and
field, which is what the stamp plan and the paper-scale rehearsal need from a list.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import OBJECT_CLASSES, CatalogError
from .cuts import apply_cuts, cut_report

log = logging.getLogger(__name__)

#: Bit fields of an SDSS objID (SDSS DR16 schema, ``PhotoObj.objID``): (shift, width).
OBJID_BITS = {"skyVersion": (59, 4), "rerun": (48, 11), "run": (32, 16), "camcol": (29, 3),
              "firstField": (28, 1), "field": (16, 12), "id": (0, 16)}


def decode_objid(objid) -> pd.DataFrame:
    """The fields an SDSS objID packs (:data:`OBJID_BITS`), one row per objID."""
    o = np.asarray(objid).astype(np.int64).view(np.uint64)
    return pd.DataFrame({name: ((o >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
                         for name, (shift, width) in OBJID_BITS.items()})


def read_objid_list(path) -> pd.DataFrame:
    """The objects a list names: ``objID`` (int64) and, when the list has one, ``class``.

    Refuses, naming the file: a pickled or non-integer array, a table without ``objID``, missing
    or non-integer objIDs (with the rows), an objID listed twice, an unknown class."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CatalogError(f"{path}: not a plain numeric array ({exc}); an object list is read without "
                               "pickles: save the objIDs as an int64 array or a Parquet table") from exc
        if values.ndim != 1 and not (values.ndim == 2 and 1 in values.shape):
            raise CatalogError(f"{path}: an object list is one column of objIDs, not an array of shape "
                               f"{values.shape}")
        values = values.ravel()
        if not np.issubdtype(values.dtype, np.integer):
            raise CatalogError(f"{path}: objIDs stored as {values.dtype}; they must be integers (a float64 "
                               "rounds 19-digit objIDs)")
        listed = pd.DataFrame({"objID": values.astype(np.int64)})
    else:
        table = pd.read_parquet(path)
        if "objID" not in table:
            raise CatalogError(f"{path}: no objID column (columns: {list(table.columns)[:8]})")
        ids = table["objID"]
        if not pd.api.types.is_integer_dtype(ids):
            empty = np.flatnonzero(ids.isna().to_numpy())[:10]
            rows = f" (rows {', '.join(map(str, empty))} empty)" if len(empty) else ""
            raise CatalogError(f"{path}: column objID is {ids.dtype}, not integers{rows}")
        listed = pd.DataFrame({"objID": ids.to_numpy(np.int64)})
        if "class" in table:
            cls = table["class"].astype(str).str.strip().str.upper()
            bad = ~cls.isin(OBJECT_CLASSES).to_numpy()
            if bad.any():
                raise CatalogError(f"{path}: column class holds {sorted(set(cls[bad]))[:5]} in rows "
                                   f"{', '.join(map(str, np.flatnonzero(bad)[:10]))} (expected {OBJECT_CLASSES})")
            listed["class"] = cls.to_numpy()
    dup = listed["objID"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise CatalogError(f"{path}: {listed.loc[dup, 'objID'].nunique()} objIDs are listed more than once (e.g. "
                           f"{listed.loc[dup, 'objID'].unique()[:5].tolist()}) in rows "
                           f"{', '.join(map(str, np.flatnonzero(dup)[:10]))}")
    return listed


def listed_pool(catalog: pd.DataFrame, listed: pd.DataFrame, cuts, what: str) -> pd.DataFrame:
    """The catalogue's listed objects that pass ``cuts``, in catalogue order, with the log saying
    how many listed objects the catalogue lacks, how many carry another class than the list's,
    and how many fail each cut."""
    found = catalog[catalog["objID"].isin(listed["objID"])]
    missing = len(listed) - len(found)
    log.info("%s: %d objects listed, %d in the catalogue, %d missing from it", what, len(listed), len(found),
             missing)
    if missing:
        log.warning("%s: %d listed objects are not in the catalogue (e.g. %s): they are dropped", what, missing,
                    listed.loc[~listed["objID"].isin(catalog["objID"]), "objID"].head(5).tolist())
    if "class" in listed:
        merged = found[["objID", "class"]].merge(listed, on="objID", suffixes=("", "_listed"))
        differ = merged["class"] != merged["class_listed"]
        log.info("%s: %d listed objects carry another spectroscopic class than the list says%s", what,
                 int(differ.sum()),
                 "" if not differ.any() else " (catalogue vs list: "
                 + ", ".join(f"{a}->{b} {n}" for (a, b), n in
                             merged[differ].groupby(["class_listed", "class"]).size().items()) + ")")
    report = cut_report(found, cuts)
    log.info("%s: listed objects failing each cut (fail: alone; removed: in turn):\n%s", what,
             report.to_string(index=False))
    return found[apply_cuts(found, cuts)]
