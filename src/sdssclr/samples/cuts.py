"""Sample selection of Chaini et al. 2023 (MargNet), defined once.

Each cut is a small expression tree over catalogue :class:`~sdssclr.catalog.Column` objects. The
same tree renders the SkyServer SQL ``WHERE`` clause (:meth:`Expr.sql`) and evaluates on a local
catalogue (:meth:`Expr.evaluate`), so the SQL path and the local filter cannot drift apart.

Semantics shared by both renderings: a division by zero yields NULL/NaN, and any comparison
with NULL/NaN is false -- ``!=`` included, as in SQL (``NULLIF(b, 0)``; NaN is NULL locally).

Besides the paper's conditions, :func:`guards` check that every column the 24 features are
computed from holds a physical value (magnitudes and extinctions in range, sizes and seeing
positive and finite): a blank cell of a CasJobs export, a -9999 sentinel or a 1e308 would
otherwise pass every cut and reach training. The guards are cuts like any other (rendered into the
SQL, counted in the cut report), so the SQL and the local filter still select the same rows.

The SQL is rendered compactly (no spaces around operators, one combined mask for the flags that
must be clear) because astroquery sends it in a GET query string, which SkyServer caps near
2,048 characters (see :func:`sdssclr.survey.skyserver.check_url_length`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..bands import BANDS
from ..catalog import BY_ALIAS, PHOTO_FLAGS, Column


class Expr:
    def sql(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, df: pd.DataFrame):  # pragma: no cover - abstract
        raise NotImplementedError

    # arithmetic
    def __truediv__(self, other):
        return Div(self, wrap(other))

    def __add__(self, other):
        return Add((self, wrap(other)))

    # comparisons build conditions
    def __lt__(self, other):
        return Compare(self, "<", wrap(other))

    def __le__(self, other):
        return Compare(self, "<=", wrap(other))

    def __gt__(self, other):
        return Compare(self, ">", wrap(other))

    def __ge__(self, other):
        return Compare(self, ">=", wrap(other))

    def eq(self, other):
        return Compare(self, "=", wrap(other))

    def ne(self, other):
        return Compare(self, "!=", wrap(other))


def wrap(value) -> Expr:
    return value if isinstance(value, Expr) else Const(value)


def number(value) -> str:
    """A numeric SQL literal, as short as exact: 40.0 -> '40', 0.1 -> '0.1'."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Col(Expr):
    column: Column

    def sql(self):
        return self.column.sql

    def evaluate(self, df):
        values = df[self.column.alias]
        if pd.api.types.is_integer_dtype(values):  # 64-bit IDs must not go through float64
            return values.to_numpy(dtype=np.int64)
        if pd.api.types.is_numeric_dtype(values):
            return values.to_numpy(dtype=float)
        return values.to_numpy(dtype=object)


@dataclass(frozen=True)
class Const(Expr):
    value: object

    def sql(self):
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        return number(self.value)

    def evaluate(self, df):
        return self.value


@dataclass(frozen=True)
class Div(Expr):
    """``num / den``; a zero denominator gives NULL/NaN (``NULLIF`` in SQL, which T-SQL needs even
    where a guard excludes zero: it does not promise to evaluate the guard first)."""

    num: Expr
    den: Expr

    def sql(self):
        return f"{self.num.sql()}/NULLIF({self.den.sql()},0)"

    def evaluate(self, df):
        den = np.asarray(self.den.evaluate(df), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den == 0, np.nan, np.asarray(self.num.evaluate(df), float) / den)


@dataclass(frozen=True)
class Add(Expr):
    terms: tuple[Expr, ...]

    def sql(self):
        return "(" + "+".join(t.sql() for t in self.terms) + ")"

    def evaluate(self, df):
        return sum(np.asarray(t.evaluate(df), dtype=float) for t in self.terms)


@dataclass(frozen=True)
class Mean(Expr):
    terms: tuple[Expr, ...]

    def sql(self):
        return f"{Add(self.terms).sql()}/{len(self.terms)}.0"

    def evaluate(self, df):
        return Add(self.terms).evaluate(df) / len(self.terms)


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "=": operator.eq, "!=": operator.ne}


class Condition:
    def sql(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, df: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Compare(Condition):
    left: Expr
    op: str
    right: Expr

    def sql(self):
        return f"{self.left.sql()}{self.op}{self.right.sql()}"

    def evaluate(self, df):
        left, right = self.left.evaluate(df), self.right.evaluate(df)
        if isinstance(right, str) or (isinstance(left, np.ndarray) and left.dtype == object):
            result = _OPS[self.op](np.asarray(left, dtype=object), right)
            return np.asarray(result, dtype=bool) & _known(left) & _known(right)
        with np.errstate(invalid="ignore"):
            result = np.asarray(_OPS[self.op](np.asarray(left), right), dtype=bool)
        return result & _known(left) & _known(right)  # NULL (NaN) compares false, '!=' too


def _known(values):
    """False where a value is missing (NaN or None), as SQL's NULL (a scalar gives a bool)."""
    missing = pd.isna(values)
    return ~np.asarray(missing, dtype=bool) if np.ndim(missing) else not missing


@dataclass(frozen=True)
class Between(Condition):
    """``lo <= column <= hi`` (SQL ``BETWEEN``; a NULL/NaN is outside)."""

    column: Expr
    lo: float
    hi: float

    def sql(self):
        return f"{self.column.sql()} BETWEEN {number(self.lo)} AND {number(self.hi)}"

    def evaluate(self, df):
        v = np.asarray(self.column.evaluate(df), dtype=float)
        with np.errstate(invalid="ignore"):
            return (v >= self.lo) & (v <= self.hi)


@dataclass(frozen=True)
class Bits(Condition):
    """``(column & mask) = 0`` (``clear=True``) or ``(column & mask) != 0``; 64-bit safe."""

    column: Column
    mask: int
    clear: bool

    def sql(self):
        # A bare integer literal above 2**31 is NUMERIC in T-SQL, which '&' rejects: cast it.
        op = "=" if self.clear else "!="
        return f"({self.column.sql}&CAST({self.mask} AS BIGINT)){op}0"

    def evaluate(self, df):
        values = df[self.column.alias]
        known = _known(values.to_numpy())
        hit = (values.fillna(0).to_numpy(dtype=np.int64) & np.int64(self.mask)) != 0
        return (~hit if self.clear else hit) & known


@dataclass(frozen=True)
class Cut:
    """A named, documented selection condition."""

    name: str
    condition: Condition
    doc: str

    def sql(self) -> str:
        return self.condition.sql()

    def evaluate(self, df: pd.DataFrame) -> np.ndarray:
        return self.condition.evaluate(df)


def col(alias: str) -> Col:
    return Col(BY_ALIAS[alias])


#: r-band photometric flags a clean object must not have (bit values in :data:`sdssclr.catalog.PHOTO_FLAGS`).
FLAGS_MUST_BE_CLEAR: dict[str, int] = {k: v for k, v in PHOTO_FLAGS.items() if k != "BINNED1"}
#: The paper's combined mask, kept verbatim as well (it repeats some of the bits above).
FLAGS_COMBINED_MASK = 0x8100000C00A0
FLAGS_MUST_BE_SET: dict[str, int] = {"BINNED1": PHOTO_FLAGS["BINNED1"]}
#: Every bit that must be clear, in one mask: the ten named flags and the paper's combined mask
#: (rendered as one SQL clause instead of eleven).
FLAGS_CLEAR_MASK = FLAGS_COMBINED_MASK
for _bit in FLAGS_MUST_BE_CLEAR.values():
    FLAGS_CLEAR_MASK |= _bit

#: Physical ranges of the columns the 24 features are computed from (inclusive). Model and
#: dereddened magnitudes, extinctions; sizes and seeing must also be positive (the paper's != 0).
MAGNITUDE_RANGE = (1.0, 40.0)
EXTINCTION_RANGE = (0.0, 20.0)
SEEING_RANGE = (0.01, 20.0)  # psffwhm, arcsec


def guards() -> list[Cut]:
    """Range guards on the field and position of each object (they name its frames and place its
    stamp) and on every column a feature is computed from (see the module docstring).

    A value outside its range -- NULL/NaN, a -9999 sentinel, an overflow -- removes the object,
    and the cut report counts how many each guard removed. ``deVRad_x > 0`` replaces the paper's
    ``!= 0`` (the same for any physical size, and it also removes negative sentinels); its upper
    end is bounded by the compact cut."""
    out = [Cut("range_run", col("run") >= 0, "run >= 0"), Cut("range_rerun", col("rerun") >= 0, "rerun >= 0"),
           Cut("range_camcol", Between(col("camcol"), 1, 6), "camcol in 1..6"),
           Cut("range_field", col("field") >= 0, "field >= 0"),
           Cut("range_ra", Between(col("ra"), 0.0, 360.0), "ra in [0, 360]"),
           Cut("range_dec", Between(col("dec"), -90.0, 90.0), "dec in [-90, 90]")]
    for b in BANDS:
        out.append(Cut(f"range_{b}", Between(col(b), *MAGNITUDE_RANGE), f"{b} in {MAGNITUDE_RANGE}"))
        out.append(Cut(f"range_dered_{b}", Between(col(f"dered_{b}"), *MAGNITUDE_RANGE),
                       f"dered_{b} in {MAGNITUDE_RANGE}"))
        out.append(Cut(f"range_extinction_{b}", Between(col(f"extinction_{b}"), *EXTINCTION_RANGE),
                       f"extinction_{b} in {EXTINCTION_RANGE}"))
        out.append(Cut(f"psffwhm_{b}_positive", Between(col(f"psffwhm_{b}"), *SEEING_RANGE),
                       f"psffwhm_{b} in {SEEING_RANGE} (paper: != 0)"))
        out.append(Cut(f"deVRad_{b}_positive", col(f"deVRad_{b}") > 0, f"deVRad_{b} > 0 (paper: != 0)"))
    return out


def spectroscopic_cuts() -> list[Cut]:
    """The conditions on the spectrum (SpecObj): a good redshift of a science target."""
    return [
        Cut("z_positive", col("redshift") > 0, "s.z > 0"),
        Cut("zerr", col("zErr") < 0.1, "s.zErr < 0.1"),
        Cut("zwarning", col("zWarning").eq(0), "no redshift warning"),
        Cut("science_primary", col("sciencePrimary").eq(1), "best spectrum of the object"),
        Cut("target_science", col("targetType").eq("SCIENCE"), "science target"),
        Cut("flux_obj", col("bestObjID").eq(col("fluxObjID")), "bestObjID = fluxObjID"),
    ]


def photometric_cuts(err_ratio_max: float = 0.1, psfmagerr_r_max: float = 0.2) -> list[Cut]:
    """The conditions on the photometry (PhotoObj): clean primary photometry, the guards, the
    magnitude errors and the r-band flags. They alone select the unlabelled sample."""
    cuts = [
        Cut("clean", col("clean").eq(1), "clean photometry"),
        Cut("primary_mode", col("mode").eq(1), "primary photometric object"),
        Cut("outside_mask", col("insideMask").eq(0), "not inside a mask"),
    ]
    cuts += guards()
    cuts.append(Cut(
        "model_mag_err",
        Mean(tuple(col(f"err_{b}") / col(b) for b in BANDS)) < err_ratio_max,
        f"mean over bands of err_x / x < {err_ratio_max}",
    ))
    cuts.append(Cut("psfmagerr_r", col("psfMagErr_r") <= psfmagerr_r_max,
                    f"psfMagErr_r <= {psfmagerr_r_max}"))
    flags = BY_ALIAS["flags_r"]
    cuts.append(Cut("flags_clear", Bits(flags, FLAGS_CLEAR_MASK, clear=True),
                    f"flags_r & {FLAGS_CLEAR_MASK:#x} = 0: {', '.join(FLAGS_MUST_BE_CLEAR)} and the paper's "
                    "combined mask 0x8100000c00a0 clear"))
    for name, bit in FLAGS_MUST_BE_SET.items():
        cuts.append(Cut(f"flag_{name}", Bits(flags, bit, clear=False), f"flags_r {name} set"))
    return cuts


def quality_cuts(err_ratio_max: float = 0.1, psfmagerr_r_max: float = 0.2) -> list[Cut]:
    """Spectroscopic, photometric and r-band flag conditions shared by both datasets."""
    return spectroscopic_cuts() + photometric_cuts(err_ratio_max, psfmagerr_r_max)


def compact_cut(max_ratio: float = 0.5) -> Cut:
    ratio = Mean(tuple(col(f"deVRad_{b}") / col(f"psffwhm_{b}") for b in BANDS))
    return Cut("compact", ratio < max_ratio, f"mean over bands of deVRad_x / psffwhm_x < {max_ratio}")


def faint_cut(rule: str = "mean_mag", min_mag: float = 20.0, r_max: float = 23.0) -> list[Cut]:
    """The faint condition: ``mean_mag`` (mean of the five model magnitudes > min_mag, the paper's
    text) or ``r_mag`` (min_mag <= r < r_max, what the released experiment-3 test set follows)."""
    if rule == "mean_mag":
        mean_mag = Mean(tuple(col(b) for b in BANDS))
        return [Cut("faint", mean_mag > min_mag, f"(u+g+r+i+z)/5 > {min_mag}")]
    if rule == "r_mag":
        return [Cut("faint", col("r") >= min_mag, f"r >= {min_mag}"),
                Cut("faint_r_max", col("r") < r_max, f"r < {r_max}")]
    raise ValueError(f"unknown faint rule {rule!r} (expected 'mean_mag' or 'r_mag')")


#: The ``cuts`` keys each dataset's definition (:func:`dataset_cuts`) reads, and nothing else: the
#: rules pass a dataset only its own (:func:`cuts_of`), so a faint cut never reruns the compact pool.
CUT_KEYS = {"compact": ("err_ratio_max", "psfmagerr_r_max", "compact_max_ratio")}
CUT_KEYS["faint_compact"] = CUT_KEYS["compact"] + ("faint_rule", "faint_min_mag", "faint_r_max")


def cuts_of(dataset: str, cuts_config: dict) -> dict:
    """The keys of ``cuts_config`` that define ``dataset`` (:data:`CUT_KEYS`)."""
    if dataset not in CUT_KEYS:
        raise ValueError(f"unknown dataset {dataset!r} (expected one of {sorted(CUT_KEYS)})")
    return {k: cuts_config[k] for k in CUT_KEYS[dataset]}


def dataset_cuts(dataset: str, cuts_config: dict, photometric_only: bool = False) -> list[Cut]:
    """All cuts defining ``dataset`` ('compact' or 'faint_compact') under a ``cuts`` config; with
    ``photometric_only`` the same cuts less the spectroscopic ones (the unlabelled sample)."""
    c = cuts_config
    first = photometric_cuts if photometric_only else quality_cuts
    cuts = first(c["err_ratio_max"], c["psfmagerr_r_max"]) + [compact_cut(c["compact_max_ratio"])]
    if dataset == "compact":
        return cuts
    if dataset == "faint_compact":
        return cuts + faint_cut(c["faint_rule"], c["faint_min_mag"], c["faint_r_max"])
    raise ValueError(f"unknown dataset {dataset!r} (expected 'compact' or 'faint_compact')")


def where_clause(cuts: list[Cut]) -> str:
    """SQL ``WHERE`` body ANDing every cut; never contains ``--`` (astroquery strips comments)."""
    text = " AND ".join(cut.sql() for cut in cuts)
    assert "--" not in text, "rendered SQL would be truncated by astroquery's comment stripping"
    return text


def apply_cuts(df: pd.DataFrame, cuts: list[Cut]) -> np.ndarray:
    """Boolean mask of the rows passing every cut."""
    mask = np.ones(len(df), dtype=bool)
    for cut in cuts:
        mask &= cut.evaluate(df)
    return mask


def cut_report(df: pd.DataFrame, cuts: list[Cut]) -> pd.DataFrame:
    """Per cut: how many rows fail it alone, how many it removes in turn (of those that passed
    every earlier cut), and how many remain after it."""
    rows, remaining = [], np.ones(len(df), dtype=bool)
    for cut in cuts:
        passed = cut.evaluate(df)
        removed = int((remaining & ~passed).sum())
        remaining &= passed
        rows.append({"cut": cut.name, "fail": int((~passed).sum()), "removed": removed,
                     "remaining": int(remaining.sum())})
    return pd.DataFrame(rows)
