"""Datasets given as object lists (the paper's own objects): reading the lists, the listed pool
and its cut report, the SkyServer path on objID lists, and experiment 3's overlap with its parent."""

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astroquery.sdss import SDSS

from conftest import REPO, cuts_config
from sdssclr.catalog import COLUMN_NAMES, CatalogError
from sdssclr.io import write_parquet_atomic
from sdssclr.samples.cuts import apply_cuts, dataset_cuts
from sdssclr.samples.object_lists import OBJID_BITS, decode_objid, listed_pool, read_objid_list
from sdssclr.samples.pools import write_pool
from sdssclr.samples.splits import make_sample, make_transfer_sample
from sdssclr.survey.skyserver import MAX_QUERY_STRING, listed_plan, query_listed, query_string_length, write_catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "survey"))
from test_skyserver import FakeSkyServer  # noqa: E402 - the SQLite SkyServer of the survey tests

RELEASE = REPO.parent / "shared" / "margnet-release"


def objid(rerun, run, camcol, field, ident, sky_version=2, first_field=0):
    parts = dict(skyVersion=sky_version, rerun=rerun, run=run, camcol=camcol, firstField=first_field, field=field,
                 id=ident)
    return sum(int(v) << OBJID_BITS[k][0] for k, v in parts.items())


def test_objids_decode_to_their_fields():
    ids = [objid(301, 2583, 2, 136, 17), objid(301, 8162, 6, 995, 65535), objid(301, 94, 1, 11, 0)]
    fields = decode_objid(np.array(ids, dtype=np.int64))
    assert fields[["rerun", "run", "camcol", "field", "id"]].values.tolist() == [
        [301, 2583, 2, 136, 17], [301, 8162, 6, 995, 65535], [301, 94, 1, 11, 0]]
    assert fields["skyVersion"].tolist() == [2, 2, 2]


def test_lists_are_read_from_parquet_and_npy_without_pickles(tmp_path):
    ids = np.array([objid(301, 100, 1, 20, k) for k in range(5)], dtype=np.int64)
    np.save(tmp_path / "objlist.npy", ids)
    assert read_objid_list(tmp_path / "objlist.npy")["objID"].tolist() == ids.tolist()
    pd.DataFrame({"objID": ids, "class": ["star", "GALAXY", "QSO ", "STAR", "GALAXY"]}).to_parquet(tmp_path / "l.parquet")
    listed = read_objid_list(tmp_path / "l.parquet")
    assert listed["class"].tolist() == ["STAR", "GALAXY", "QSO", "STAR", "GALAXY"]

    np.save(tmp_path / "pickled.npy", np.array([str(i) for i in ids], dtype=object), allow_pickle=True)
    with pytest.raises(CatalogError, match="pickled.npy.*without pickles"):
        read_objid_list(tmp_path / "pickled.npy")
    np.save(tmp_path / "floats.npy", ids.astype(float))
    with pytest.raises(CatalogError, match="floats.npy.*float64"):
        read_objid_list(tmp_path / "floats.npy")
    np.save(tmp_path / "twice.npy", np.r_[ids, ids[2]])
    with pytest.raises(CatalogError, match=r"twice.npy: 1 objIDs are listed more than once .* rows 2, 5"):
        read_objid_list(tmp_path / "twice.npy")
    pd.DataFrame({"objID": ids, "class": ["STAR", "GALAXY", "QSO", "ELF", "GALAXY"]}).to_parquet(tmp_path / "c.parquet")
    with pytest.raises(CatalogError, match=r"c.parquet: column class holds \['ELF'\] in rows 3"):
        read_objid_list(tmp_path / "c.parquet")
    pd.DataFrame({"id": ids}).to_parquet(tmp_path / "noid.parquet")
    with pytest.raises(CatalogError, match="noid.parquet: no objID column"):
        read_objid_list(tmp_path / "noid.parquet")


@pytest.fixture()
def catalog(synthetic_catalog):
    return synthetic_catalog.iloc[:3000].copy()


def a_list(catalog, rng, n=400, unknown=3):
    """objIDs of ``n`` catalogue objects (most of them failing the cuts, as in a real list checked
    against other cut definitions) and ``unknown`` objIDs the catalogue lacks."""
    picked = catalog.iloc[rng.choice(len(catalog), n, replace=False)]
    ids = np.r_[picked["objID"].to_numpy(), catalog["objID"].max() + 1 + np.arange(unknown)]
    return picked, ids


def test_the_listed_pool_is_the_listed_objects_passing_the_cuts_and_the_log_counts_the_rest(catalog, caplog):
    rng = np.random.default_rng(0)
    picked, ids = a_list(catalog, rng)
    listed = pd.DataFrame({"objID": ids, "class": np.r_[picked["class"].to_numpy(), ["STAR"] * 3]})
    listed.loc[0, "class"] = "QSO" if picked["class"].iloc[0] != "QSO" else "STAR"
    cuts = dataset_cuts("compact", cuts_config())
    with caplog.at_level(logging.INFO):
        pool = listed_pool(catalog, listed, cuts, "compact")
    expected = picked[apply_cuts(picked, cuts)]
    assert sorted(pool["objID"]) == sorted(expected["objID"]) and 0 < len(pool) < len(picked)
    text = caplog.text
    assert "compact: 403 objects listed, 400 in the catalogue, 3 missing from it" in text
    assert "1 listed objects carry another spectroscopic class than the list says" in text
    compact_fails = int((~cuts[-1].evaluate(picked)).sum())
    assert f"{cuts[-1].name}" in text and str(compact_fails) in text


def test_write_pool_with_a_list(tmp_path, catalog):
    rng = np.random.default_rng(1)
    picked, ids = a_list(catalog, rng, unknown=0)
    write_parquet_atomic(catalog, tmp_path / "catalog.parquet", {"source": "synthetic"})
    np.save(tmp_path / "list.npy", ids)
    pool = write_pool(tmp_path / "catalog.parquet", "compact", cuts_config(), tmp_path / "pool.parquet",
                      objid_list=tmp_path / "list.npy")
    assert set(pool["objID"]) <= set(ids)
    assert set(pool["objID"]) == set(picked.loc[apply_cuts(picked, dataset_cuts("compact", cuts_config())), "objID"])
    assert pd.read_parquet(tmp_path / "pool.parquet")["objID"].tolist() == pool["objID"].tolist()


class ListServer:
    """The test_skyserver fake (SQLite over the catalogue), and one object given a second,
    non-primary spectrum."""

    def __init__(self, catalog, twice):
        self.fake = FakeSkyServer(catalog)
        extra = pd.read_sql(f"SELECT * FROM SpecObj WHERE bestObjID={int(twice)}", self.fake.db)
        extra["sciencePrimary"], extra["specObjID"], extra["class"] = 0, "1", "QSO"
        extra.to_sql("SpecObj", self.fake.db, index=False, if_exists="append")
        self.calls = self.fake.calls

    def __call__(self, *args, **kwargs):
        return self.fake(*args, **kwargs)


@pytest.fixture()
def listed_catalog(catalog):
    # the science-primary flag of the fake's only spectrum per object must be 1 for the dedup test
    return catalog.assign(sciencePrimary=1)


def test_an_objid_list_reproduces_exactly_those_objects_through_skyserver(monkeypatch, listed_catalog):
    rng = np.random.default_rng(2)
    picked, ids = a_list(listed_catalog, rng, n=300)
    server = ListServer(listed_catalog, twice=picked["objID"].iloc[5])
    monkeypatch.setattr(SDSS, "_request", server)
    got = query_listed(ids, data_release=16, timeout=30, per_minute=1e9, sleep=lambda s: None)
    per_query, groups = listed_plan(16)
    assert len(server.calls) == -(-len(ids) // per_query) * len(groups) > 1
    assert all(query_string_length(c["sql"], 16) <= MAX_QUERY_STRING for c in server.calls)
    expected = picked.sort_values("objID").reset_index(drop=True)
    assert got["objID"].tolist() == expected["objID"].tolist()  # the 3 unknown objIDs are absent
    # the object with two spectra keeps its science-primary one, and every column is exact
    pd.testing.assert_frame_equal(got[list(COLUMN_NAMES)], expected[list(COLUMN_NAMES)], check_dtype=False)


def test_the_catalogue_rule_fetches_only_listed_objects_when_every_pool_is_listed(monkeypatch, tmp_path,
                                                                                    listed_catalog):
    server = FakeSkyServer(listed_catalog)
    monkeypatch.setattr(SDSS, "_request", server)
    ids = listed_catalog["objID"].to_numpy()[::50]
    survey = dict(data_release=16, timeout_s=30, page_size=1000, max_queries_per_minute=1e9, retries=0,
                  backoff_s=0.0, catalog_file=None)
    cat = write_catalog(tmp_path / "cat.parquet", survey, "1=1", sleep=lambda s: None, listed=[ids],
                        pool_query=False)
    assert sorted(cat["objID"]) == sorted(ids)
    assert all(" IN (" in c["sql"] for c in server.calls)


def test_experiment_3_counts_its_overlap_with_the_parent_and_drops_what_a_parent_model_fitted(catalog, caplog):
    cuts = cuts_config()
    compact = catalog[apply_cuts(catalog, dataset_cuts("compact", cuts))]
    parent = make_sample(compact, 20, [6, 1, 1], 0, "exp1")
    fit = set(parent.loc[parent["split"] != "test", "objID"])
    # a test pool holding the whole parent sample and every other compact object
    pool = pd.concat([compact[compact["objID"].isin(parent["objID"])], compact[~compact["objID"].isin(parent["objID"])]])
    with caplog.at_level(logging.INFO):
        own = make_transfer_sample(parent, pool, 5, 0, "exp3")
    assert (f"exp3: {len(parent)} of {len(pool)} test-pool objects belong to the parent's sample; the {len(fit)} in "
            f"its train/val/calibration are dropped (the leak of the original experiment 3), the "
            f"{len(parent) - len(fit)} in its test split stay candidates") in caplog.text
    assert not set(own["objID"]) & fit


@pytest.mark.skipif(not RELEASE.exists(), reason="needs ../shared/margnet-release")
def test_the_real_release_lists_read_as_the_paper_describes_them():
    exp1 = read_objid_list(RELEASE / "exp1_objects.parquet")
    assert len(exp1) == 239_999 and exp1["class"].value_counts().to_dict() == {"STAR": 80_000, "QSO": 80_000,
                                                                              "GALAXY": 79_999}
    fields = decode_objid(exp1["objID"])
    assert set(fields["rerun"]) == {301}
    assert len(fields[["run", "camcol", "field"]].drop_duplicates()) == 138_475
    exp3 = read_objid_list(RELEASE / "exp3_sgq_objects.parquet")
    assert exp3["objID"].isin(exp1["objID"]).sum() == 10_274
