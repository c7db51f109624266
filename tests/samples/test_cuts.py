import sqlite3

import numpy as np
import pandas as pd
import pytest

from conftest import cuts_config
from sdssclr.bands import BANDS
from sdssclr.catalog import BY_ALIAS, COLUMNS
from sdssclr.samples.cuts import (FLAGS_CLEAR_MASK, FLAGS_COMBINED_MASK, FLAGS_MUST_BE_CLEAR, Bits, apply_cuts, col,
                                  compact_cut, cut_report, dataset_cuts, faint_cut, quality_cuts, where_clause)

BINNED1 = 0x10000000


def good_row(**over):
    """A row that passes every cut of both datasets (checked by hand against the paper's list)."""
    row = {c.alias: 0 for c in COLUMNS}
    row.update(objID=1, specObjID=11, **{"class": "STAR"}, redshift=0.001, zErr=1e-4, zWarning=0,
               sciencePrimary=1, targetType="SCIENCE", bestObjID=1, fluxObjID=1, run=1, rerun=301,
               camcol=1, field=11, ra=10.0, dec=0.0, psfMagErr_r=0.05, flags_r=BINNED1, clean=1,
               mode=1, insideMask=0)
    for b, m in zip(BANDS, [21.5, 20.6, 20.2, 20.0, 19.9]):  # mean 20.44 > 20
        row[b] = m
        row[f"err_{b}"] = 0.05
        row[f"dered_{b}"] = m - 0.1
        row[f"deVRad_{b}"] = 0.3
        row[f"psffwhm_{b}"] = 1.2  # ratio 0.25 < 0.5
        row[f"extinction_{b}"] = 0.1
    row.update(over)
    return row


def frame(*rows):
    return pd.DataFrame(list(rows))


@pytest.mark.parametrize(
    "over, passes",
    [
        ({}, True),
        ({"redshift": 0.0}, False),  # s.z > 0 is strict
        ({"redshift": -0.0002}, False),
        ({"zErr": 0.1}, False),
        ({"zWarning": 16}, False),
        ({"sciencePrimary": 0}, False),
        ({"targetType": "SKY"}, False),
        ({"fluxObjID": 2}, False),
        ({"clean": 0}, False),
        ({"mode": 2}, False),
        ({"insideMask": 1}, False),
        ({"psffwhm_z": 0.0}, False),
        ({"deVRad_u": 0.0}, False),
        ({"psfMagErr_r": 0.2}, True),  # <= 0.2 is allowed
        ({"psfMagErr_r": 0.2001}, False),
        ({"flags_r": 0}, False),  # BINNED1 must be set
        ({"flags_r": BINNED1 | FLAGS_MUST_BE_CLEAR["SATURATED"]}, False),
        ({"flags_r": BINNED1 | FLAGS_MUST_BE_CLEAR["PSF_FLUX_INTERP"]}, False),  # bit 47
        ({"flags_r": BINNED1 | (1 << 51)}, True),  # bit 51 is in no mask (0x8100000c00a0: 5,7,18,19,40,47)
        ({"flags_r": BINNED1 | (1 << 40)}, False),  # bit 40 (BAD_COUNTS_ERROR) of the combined mask
        ({"flags_r": BINNED1 | 0x2}, True),  # an unrelated bit
    ],
)
def test_quality_and_compact_cuts_by_hand(over, passes):
    df = frame(good_row(**over))
    cuts = quality_cuts() + [compact_cut()]
    assert apply_cuts(df, cuts).tolist() == [passes]


def test_compact_ratio_boundary_and_mean():
    # mean of deVRad/psffwhm: (0.6/1.2)*5/5 = 0.5 -> not < 0.5
    edge = good_row(**{f"deVRad_{b}": 0.6 for b in BANDS})
    # one very extended band (1.2/1.2 = 1) with four at 0.25: mean 0.4 -> compact
    mixed = good_row(deVRad_u=1.2)
    assert apply_cuts(frame(edge, mixed), [compact_cut(0.5)]).tolist() == [False, True]


def test_err_ratio_is_a_mean_over_bands():
    # err/mag: u 2.15/21.5 = 0.1, others 0.05/x ~ 0.0025 -> mean ~0.022 < 0.1 -> passes
    ok = good_row(err_u=2.15)
    # every band at 0.1 -> mean exactly 0.1 -> not < 0.1
    bad = good_row(**{f"err_{b}": 0.1 * m for b, m in zip(BANDS, [21.5, 20.6, 20.2, 20.0, 19.9])})
    bad_mask = apply_cuts(frame(ok, bad), quality_cuts())
    assert bad_mask.tolist() == [True, False]


def test_faint_rules():
    mean_20 = good_row(**{b: 20.0 for b in BANDS})  # mean == 20: not > 20
    bright_r_faint_mean = good_row(u=22.0, g=21.0, r=19.5, i=19.8, z=19.9)  # mean 20.44, r 19.5
    df = frame(good_row(), mean_20, bright_r_faint_mean)
    assert apply_cuts(df, faint_cut("mean_mag", 20.0)).tolist() == [True, False, True]
    assert apply_cuts(df, faint_cut("r_mag", 20.0, 23.0)).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="faint rule"):
        faint_cut("median")


def test_sql_names_every_cut():
    sql = where_clause(dataset_cuts("faint_compact", cuts_config()))
    for fragment in ["s.z>0", "s.zErr<0.1", "s.zWarning=0", "s.sciencePrimary=1",
                     "s.targetType='SCIENCE'", "s.bestObjID=s.fluxObjID", "p.clean=1",
                     "p.mode=1", "p.insideMask=0", "p.psfMagErr_r<=0.2",
                     "(p.flags_r&CAST(268435456 AS BIGINT))!=0", f"(p.flags_r&CAST({FLAGS_CLEAR_MASK} AS BIGINT))=0",
                     "p.deVRad_u/NULLIF(p.psffwhm_u,0)", "<0.5", ">20", "p.dered_g BETWEEN 1 AND 40",
                     "p.extinction_z BETWEEN 0 AND 20", "p.psffwhm_i BETWEEN 0.01 AND 20", "p.deVRad_r>0",
                     "p.camcol BETWEEN 1 AND 6"]:
        assert fragment in sql
    assert "--" not in sql
    # one combined mask holds every bit that must be clear: the ten named flags and the paper's mask
    assert FLAGS_CLEAR_MASK & FLAGS_COMBINED_MASK == FLAGS_COMBINED_MASK
    assert all(FLAGS_CLEAR_MASK & bit for bit in FLAGS_MUST_BE_CLEAR.values())


@pytest.mark.parametrize(
    "over, guard",
    [
        ({"dered_u": np.nan}, "range_dered_u"),  # a blank cell of a CasJobs export
        ({"extinction_g": np.nan}, "range_extinction_g"),
        ({"r": 1e308}, "range_r"),  # an overflow passes every cut of the paper
        ({"deVRad_u": -9999.0}, "deVRad_u_positive"),  # a sentinel: != 0, and the compact mean drops
        ({"psffwhm_z": -9999.0}, "psffwhm_z_positive"),
        ({"psffwhm_g": 1e308}, "psffwhm_g_positive"),  # would make deVRad/psffwhm tiny: compact
        ({"camcol": 7}, "range_camcol"),
        ({"run": -3}, "range_run"),
        ({"dec": 95.0}, "range_dec"),
    ],
)
def test_guards_remove_unphysical_values_and_count_them(over, guard):
    bad = good_row(**over)
    df = frame(good_row(), bad, good_row())
    cuts = dataset_cuts("compact", cuts_config())
    assert apply_cuts(df, cuts).tolist() == [True, False, True]
    report = cut_report(df, cuts).set_index("cut")
    assert report.loc[guard, "removed"] == 1  # the guard removes it first and says so
    assert report["removed"].sum() == 1 and report["remaining"].iloc[-1] == 2


def test_local_filter_treats_nan_as_sql_null():
    # '!=' on NaN is True in numpy, but NULL != 0 is not true in SQL: the local filter follows SQL
    df = frame(good_row(), good_row(deVRad_g=np.nan), good_row(flags_r=np.nan), good_row(targetType=None))
    assert col("deVRad_g").ne(0).evaluate(df).tolist() == [True, False, True, True]
    assert Bits(BY_ALIAS["flags_r"], 0x4, clear=True).evaluate(df).tolist() == [True, True, False, True]
    assert col("targetType").ne("SKY").evaluate(df).tolist() == [True, True, True, False]


def test_sql_and_local_filter_select_the_same_rows(synthetic_catalog):
    """Run the rendered WHERE clause in SQLite over a catalogue split into PhotoObj/SpecObj tables."""
    cat = synthetic_catalog
    # objIDs beyond 2**53 differing by one: a float64 comparison would call them equal.
    big = 1_237_000_000_000_000_001
    extra = frame(good_row(objID=7, bestObjID=7, fluxObjID=7, psffwhm_r=0.0),
                  good_row(objID=big, bestObjID=big, fluxObjID=big + 1),
                  good_row(objID=8, bestObjID=8, fluxObjID=8, dered_i=np.nan),  # NULL in SQLite
                  good_row(objID=9, bestObjID=9, fluxObjID=9, deVRad_z=-9999.0))
    cat = pd.concat([cat, extra], ignore_index=True)
    con = sqlite3.connect(":memory:")
    for table, alias in [("PhotoObj", "p"), ("SpecObj", "s")]:
        cols = [c for c in COLUMNS if c.table == alias]
        sub = pd.DataFrame({c.name: cat[c.alias] for c in cols})
        if alias == "s":
            sub["bestObjID"] = cat["objID"]
        sub.to_sql(table, con, index=False)
    for dataset in ["compact", "faint_compact"]:
        cuts = dataset_cuts(dataset, cuts_config())
        sql = f"SELECT p.objID FROM PhotoObj p JOIN SpecObj s ON p.objID = s.bestObjID WHERE {where_clause(cuts)}"
        remote = set(pd.read_sql(sql, con)["objID"])
        local = set(cat.loc[apply_cuts(cat, cuts), "objID"])
        assert remote == local
        assert 0 < len(local) < len(cat)
    assert 7 not in local and big not in local and 8 not in local and 9 not in local
