"""The catalogue: which columns the SDSS query returns, their SQL source, the 24 features, the
photometric flag bits, and the spectroscopic classes with the classes of each task.

One list, :data:`COLUMNS`, drives the SQL ``SELECT`` (:mod:`sdssclr.survey.skyserver`), the
synthetic generator (:mod:`sdssclr.survey.synthetic`), the check of user-supplied CasJobs exports
and the local cut filter (:mod:`sdssclr.samples.cuts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bands import BANDS

#: The spectroscopic classes of SDSS objects (SpecObj ``class``), in label order.
OBJECT_CLASSES: tuple[str, ...] = ("STAR", "GALAXY", "QSO")
#: The classes of each task, in label order: SG drops quasars, SGQ keeps all three.
TASK_CLASSES: dict[str, tuple[str, ...]] = {"SG": ("STAR", "GALAXY"), "SGQ": OBJECT_CLASSES}

#: r-band photometric flag bits used by the cuts (values from the SDSS PhotoFlags table).
PHOTO_FLAGS: dict[str, int] = {
    "PEAKCENTER": 0x20,
    "NOTCHECKED": 0x80000,
    "PSF_FLUX_INTERP": 0x800000000000,
    "BAD_COUNTS_ERROR": 0x10000000000,
    "SATURATED": 0x40000,
    "NOPROFILE": 0x80,
    "EDGE": 0x4,
    "DEBLEND_NOPEAK": 0x400000000000,
    "INTERP_CENTER": 0x100000000000,
    "COSMIC_RAY": 0x1000,
    "BINNED1": 0x10000000,
}


@dataclass(frozen=True)
class Column:
    """A catalogue column: the SDSS table alias and column it comes from, and its local name."""

    table: str  # "p" (PhotoObj) or "s" (SpecObj)
    name: str  # column name in the SDSS table
    alias: str  # column name in our catalogue
    dtype: str  # pandas dtype of the local column

    @property
    def sql(self) -> str:
        return f"{self.table}.{self.name}"

    def select(self) -> str:
        return self.sql if self.name == self.alias else f"{self.sql} AS {self.alias}"


def _p(name, dtype="float64", alias=None):
    return Column("p", name, alias or name, dtype)


def _s(name, dtype="float64", alias=None):
    return Column("s", name, alias or name, dtype)


COLUMNS: tuple[Column, ...] = (
    _p("objID", "int64"),
    # specObjID needs 64 unsigned bits (plates >= 8192 reach 2**63); astroquery parses it as uint64
    _s("specObjID", "uint64"),
    _s("class", "str"),
    _s("z", alias="redshift"),
    _s("zErr"),
    _s("zWarning", "int64"),
    _s("sciencePrimary", "int64"),
    _s("targetType", "str"),
    _s("bestObjID", "int64"),
    _s("fluxObjID", "int64"),
    _p("run", "int64"),
    _p("rerun", "int64"),
    _p("camcol", "int64"),
    _p("field", "int64"),
    _p("ra"),
    _p("dec"),
    *(_p(b) for b in BANDS),  # model magnitudes
    *(_p(f"err_{b}") for b in BANDS),  # model magnitude errors
    *(_p(f"dered_{b}") for b in BANDS),
    *(_p(f"deVRad_{b}") for b in BANDS),
    *(_p(f"psffwhm_{b}") for b in BANDS),
    *(_p(f"extinction_{b}") for b in BANDS),
    *(_p(f"psfMag_{b}") for b in BANDS),  # PSF magnitudes
    _p("psfMagErr_r"),
    _p("flags_r", "int64"),
    _p("clean", "int64"),
    _p("mode", "int64"),
    _p("insideMask", "int64"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.alias for c in COLUMNS)
#: The photometric columns (PhotoObj): what the unlabelled objects' catalogue holds.
PHOTO_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c.table == "p")
PHOTO_COLUMN_NAMES: tuple[str, ...] = tuple(c.alias for c in PHOTO_COLUMNS)
BY_ALIAS: dict[str, Column] = {c.alias: c for c in COLUMNS}
FIELD_KEYS: tuple[str, ...] = ("rerun", "run", "camcol", "field")

#: The 24 photometric features of MargNet, in order: per band dered, deVRad, psffwhm, extinction,
#: then the four model-magnitude colours.
COLOURS: tuple[str, ...] = ("u_g", "g_r", "r_i", "i_z")
FEATURES: tuple[str, ...] = (
    *(f"{q}_{b}" for b in BANDS for q in ("dered", "deVRad", "psffwhm", "extinction")),
    *COLOURS,
)


class CatalogError(ValueError):
    """A catalogue lacks columns or holds values the pipeline cannot use."""


def check_columns(df: pd.DataFrame, required=COLUMN_NAMES, source: str = "catalogue") -> None:
    """Raise :class:`CatalogError` listing every required column missing from ``df``."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CatalogError(f"{source} is missing columns: {', '.join(missing)}")


#: Integer columns: whole numbers only; a value written as a float is an error, never rounded.
INTEGER_DTYPES = {"int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}


def _rows(mask, index, limit: int = 5) -> str:
    bad = list(index[np.asarray(mask)][:limit])
    more = int(np.sum(mask)) - len(bad)
    return ", ".join(map(str, bad)) + (f" and {more} more" if more > 0 else "")


def _exact_integers(values: pd.Series, dtype: str, column: str, source: str) -> np.ndarray:
    """Whole numbers of an integer column, parsed exactly (Python ints, never through float64).

    Accepts integer dtypes and text of digits; a float dtype, a decimal point, an exponent, a
    blank or an out-of-range value raises :class:`CatalogError` naming the column and rows."""
    lo, hi = INTEGER_DTYPES[dtype]
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        ints = values.to_numpy()
        if ints.dtype == np.uint64:
            bad = ints > np.uint64(hi)
        else:
            bad = ints.astype(np.int64) < lo
        if bad.any():
            raise CatalogError(f"{source}: column {column} has values outside {dtype} in rows "
                               f"{_rows(bad, values.index)}")
        return ints.astype(dtype)
    if pd.api.types.is_float_dtype(values):
        raise CatalogError(f"{source}: column {column} holds floating-point numbers (e.g. {values.iloc[0]!r} in row "
                           f"{values.index[0]}): 64-bit IDs and integer columns must be written as integers "
                           "(read CSV exports as text; floats round objIDs beyond 2**53)")
    text = values.astype("string").str.strip()
    bad = ~text.fillna("").str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
    if bad.any():
        example = values[bad].iloc[0]
        raise CatalogError(f"{source}: column {column} has values that are not whole numbers (e.g. {example!r}) in "
                           f"rows {_rows(bad, values.index)}")
    parsed = [int(v) for v in text]
    out_of_range = np.array([not lo <= v <= hi for v in parsed])
    if out_of_range.any():
        raise CatalogError(f"{source}: column {column} has values outside {dtype} in rows "
                           f"{_rows(out_of_range, values.index)}")
    return np.array(parsed, dtype=object).astype(dtype)


def coerce(df: pd.DataFrame, source: str = "catalogue") -> pd.DataFrame:
    """Cast the catalogue columns to their declared dtypes, exactly: integer columns (IDs, run,
    camcol, field, flags...) must hold whole numbers (see :func:`_exact_integers`); numeric
    columns must parse as numbers (blank cells become NaN, which the cuts treat as SQL NULL)."""
    out = df.copy()
    for col in COLUMNS:
        if col.alias not in out:
            continue
        values = out[col.alias]
        if col.dtype == "str":
            out[col.alias] = values.astype(str).str.strip()
        elif col.dtype in INTEGER_DTYPES:
            out[col.alias] = _exact_integers(values, col.dtype, col.alias, source)
        else:
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.notna() & (values.astype("string").str.strip() != "")
            if bad.any():
                raise CatalogError(f"{source}: column {col.alias} has values that are not numbers (e.g. "
                                   f"{values[bad].iloc[0]!r}) in rows {_rows(bad.to_numpy(), values.index)}")
            out[col.alias] = numbers.astype(col.dtype)
    return out


def features(df: pd.DataFrame) -> np.ndarray:
    """The (N, 24) float32 feature matrix; colours are computed from the *model* magnitudes."""
    cols = {name: df[name].to_numpy(float) for name in FEATURES if name not in COLOURS}
    for a, b in zip(BANDS[:-1], BANDS[1:]):
        cols[f"{a}_{b}"] = df[a].to_numpy(float) - df[b].to_numpy(float)
    return np.stack([cols[name] for name in FEATURES], axis=1).astype(np.float32)


def select_task(df: pd.DataFrame, task: str) -> pd.DataFrame:
    """Rows of ``df`` belonging to ``task``'s classes (SG drops quasars)."""
    try:
        classes = TASK_CLASSES[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r} (expected one of {sorted(TASK_CLASSES)})") from None
    return df[df["class"].isin(classes)].reset_index(drop=True)


def labels(df: pd.DataFrame, task: str) -> np.ndarray:
    """Integer class labels in the order of ``TASK_CLASSES[task]``."""
    lookup = {c: i for i, c in enumerate(TASK_CLASSES[task])}
    return df["class"].map(lookup).to_numpy(dtype=np.int64)


def labels_of(classes, task: str = "SGQ") -> np.ndarray:
    """Integer labels of an array of class names (every name must belong to ``task``)."""
    lookup = {c: i for i, c in enumerate(TASK_CLASSES[task])}
    return np.array([lookup[c] for c in classes], dtype=np.int64)
