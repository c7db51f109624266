"""The catalogue: which columns the SDSS query returns, their SQL source, and the 24 features.

One list, :data:`COLUMNS`, drives the SQL ``SELECT`` (``sdss``), the synthetic generator
(``synthetic``), the check of user-supplied CasJobs exports and the local cut filter (``cuts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bands import BANDS

CLASSES: tuple[str, ...] = ("STAR", "GALAXY", "QSO")


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
    _s("specObjID", "int64"),
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
    _p("psfMagErr_r"),
    _p("flags_r", "int64"),
    _p("clean", "int64"),
    _p("mode", "int64"),
    _p("insideMask", "int64"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.alias for c in COLUMNS)
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


def coerce(df: pd.DataFrame) -> pd.DataFrame:
    """Cast the catalogue columns to their declared dtypes (CSV exports arrive as text/float)."""
    out = df.copy()
    for col in COLUMNS:
        if col.alias not in out:
            continue
        if col.dtype == "str":
            out[col.alias] = out[col.alias].astype(str).str.strip()
        else:
            out[col.alias] = pd.to_numeric(out[col.alias]).astype(col.dtype)
    return out


def features(df: pd.DataFrame) -> np.ndarray:
    """The (N, 24) float32 feature matrix; colours are computed from the *model* magnitudes."""
    cols = {name: df[name].to_numpy(float) for name in FEATURES if name not in COLOURS}
    for a, b in zip(BANDS[:-1], BANDS[1:]):
        cols[f"{a}_{b}"] = df[a].to_numpy(float) - df[b].to_numpy(float)
    return np.stack([cols[name] for name in FEATURES], axis=1).astype(np.float32)
