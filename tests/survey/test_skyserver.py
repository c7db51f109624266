"""The astroquery path, offline: SDSS._request replaced by a fake SkyServer answering with
astroquery.utils.mocks.MockResponse in SkyServer's CSV format ('#Table1' first line). The fake
runs the SQL it receives in SQLite over a synthetic catalogue, so paging and cuts are real."""

import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import requests
from astroquery.sdss import SDSS
from astroquery.utils.mocks import MockResponse

from conftest import cuts_config
from sdssclr.catalog import COLUMN_NAMES, COLUMNS, CatalogError
from sdssclr.samples.cuts import apply_cuts, dataset_cuts, where_clause
from sdssclr.survey.skyserver import (MAX_QUERY_STRING, QueryError, Throttle, catalog_sql, column_groups, query_page,
                                      query_pool, query_string_length, read_catalog_file)


def skyserver_csv(df: pd.DataFrame) -> bytes:
    return ("#Table1\n" + df.to_csv(index=False, lineterminator="\n")).encode()


class FakeSkyServer:
    def __init__(self, catalog, script=()):
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        for table, alias in [("PhotoObj", "p"), ("SpecObj", "s")]:
            cols = [c for c in COLUMNS if c.table == alias]
            sub = pd.DataFrame({c.name: catalog[c.alias] for c in cols})
            if alias == "s":
                sub["bestObjID"] = catalog["objID"]
                sub["specObjID"] = sub["specObjID"].astype(str)  # beyond SQLite's signed 64 bits
            sub.to_sql(table, self.db, index=False)
        self.script = list(script)  # faults served before answering for real
        self.calls = []

    def __call__(self, method, url, params=None, timeout=None, cache=None, **kwargs):
        self.calls.append({"url": url, "sql": params["cmd"], "timeout": timeout, "cache": cache})
        if self.script:
            fault = self.script.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault
        sql = params["cmd"]
        top = int(re.search(r"SELECT TOP (\d+)", sql).group(1))
        sql = re.sub(r"SELECT TOP \d+", "SELECT", sql) + f" LIMIT {top}"
        return MockResponse(content=skyserver_csv(pd.read_sql(sql, self.db)), url=url)


@pytest.fixture()
def catalog(synthetic_catalog):
    return synthetic_catalog.iloc[:1500].copy()


@pytest.fixture()
def cuts():
    return dataset_cuts("compact", cuts_config())


@pytest.fixture()
def where(cuts):
    """The compact cuts' SQL clause, what the catalogue query is sent with."""
    return where_clause(cuts)


def install(monkeypatch, server):
    monkeypatch.setattr(SDSS, "_request", server)
    return server


def no_sleep(_):
    pass


def test_pool_is_paged_across_the_row_cap_and_matches_the_local_filter(monkeypatch, catalog, cuts, where):
    server = install(monkeypatch, FakeSkyServer(catalog))
    pool = query_pool(where, data_release=16, timeout=42, page_size=100, sleep=no_sleep)
    expected = catalog[apply_cuts(catalog, cuts)]
    assert sorted(pool["objID"]) == sorted(expected["objID"])
    assert tuple(pool.columns) == COLUMN_NAMES
    n_pages = sum(-(-n // 100) + (n % 100 == 0) for n in expected["class"].value_counts())
    n_groups = len(column_groups("STAR", where, 100, 16))
    assert n_groups > 1  # the columns do not fit in one query string
    assert len(server.calls) == n_pages * n_groups and n_pages > 3
    for call in server.calls:
        assert "dr16" in call["url"].lower() and call["timeout"] == 42
        assert query_string_length(call["sql"], 16) <= MAX_QUERY_STRING
        for cut in cuts:
            assert cut.sql() in call["sql"]
    assert any("p.objID>" in c["sql"] for c in server.calls)
    assert "TOP" in server.calls[0]["sql"] and "ORDER BY p.objID" in server.calls[0]["sql"]
    pd.testing.assert_series_equal(pool.dtypes, expected.dtypes, check_names=False)


def test_a_query_string_over_the_limit_is_refused_before_sending(monkeypatch, catalog, where):
    server = install(monkeypatch, FakeSkyServer(catalog))
    long_sql = catalog_sql("STAR", where, 1000)  # every column: fine for CasJobs, too long for a GET
    assert query_string_length(long_sql, 16) > MAX_QUERY_STRING
    with pytest.raises(QueryError, match=r"query string would be \d+ characters"):
        query_page(long_sql, data_release=16, timeout=5, sleep=no_sleep)
    assert server.calls == []


def test_ids_stay_exact_end_to_end(monkeypatch, catalog, cuts, where):
    """objIDs above 2**53 and specObjIDs at or above 2**63 (plates >= 8192) survive SkyServer's CSV."""
    cat = catalog.copy()
    cat["specObjID"] = (np.uint64(2**63) + np.arange(len(cat), dtype=np.uint64) * np.uint64(2**40)).astype(np.uint64)
    install(monkeypatch, FakeSkyServer(cat))
    pool = query_pool(where, data_release=16, timeout=5, page_size=10_000, sleep=no_sleep)
    expected = cat[apply_cuts(cat, cuts)].set_index("objID")["specObjID"]
    got = pool.set_index("objID")["specObjID"]
    assert got.dtype == np.uint64 and (got.loc[expected.index] == expected).all()
    assert (got >= np.uint64(2**63)).all()


def test_html_error_page_is_retried_without_cache(monkeypatch, catalog, where):
    page = MockResponse(content=b"<html><body><h1>Server Error in '/' Application.</h1></body></html>")
    server = install(monkeypatch, FakeSkyServer(catalog, [page]))
    df = query_page(catalog_sql("STAR", where, 1000, columns=COLUMNS[:10]), data_release=16, timeout=5,
                    sleep=no_sleep, columns=COLUMN_NAMES[:10])
    assert len(df) > 0
    assert [c["cache"] for c in server.calls] == [True, False]


def test_timeout_then_success(monkeypatch, catalog, where):
    server = install(monkeypatch, FakeSkyServer(catalog, [requests.Timeout("read timed out")]))
    slept = []
    df = query_page(catalog_sql("QSO", where, 1000, columns=COLUMNS[:10]), data_release=16, timeout=5, backoff_s=3,
                    sleep=slept.append, columns=COLUMN_NAMES[:10])
    assert len(df) > 0 and slept == [3] and server.calls[1]["cache"] is False


def test_5xx_and_error_message_pages_back_off_exponentially_then_fail(monkeypatch, catalog, where):
    faults = [MockResponse(content=b"busy", status_code=503),
              MockResponse(content=b"error_message: Query timed out"),
              MockResponse(content=b"busy", status_code=502)]
    install(monkeypatch, FakeSkyServer(catalog, faults))
    slept = []
    with pytest.raises(QueryError, match="HTTP 502"):
        query_page(catalog_sql("STAR", where, 10, columns=COLUMNS[:10]), data_release=16, timeout=5, retries=2,
                   backoff_s=1, sleep=slept.append, columns=COLUMN_NAMES[:10])
    assert slept == [1, 2]


def test_empty_result_is_an_empty_pool(monkeypatch, catalog, where):
    header = ",".join(COLUMN_NAMES)
    empty = MockResponse(content=f"#Table1\n{header}\n".encode())
    install(monkeypatch, FakeSkyServer(catalog, [empty] * len(column_groups("GALAXY", where, 50_000, 16))))
    assert SDSS._parse_result(empty) is None
    pool = query_pool(where, data_release=16, timeout=5, sleep=no_sleep, classes=("GALAXY",))
    assert len(pool) == 0 and tuple(pool.columns) == COLUMN_NAMES


def test_response_missing_columns_is_an_error_listing_them(monkeypatch, catalog, where):
    partial = catalog[list(COLUMN_NAMES[:10])].drop(columns=["zErr", "targetType"]).head(3)
    install(monkeypatch, FakeSkyServer(catalog, [MockResponse(content=skyserver_csv(partial))]))
    with pytest.raises(CatalogError, match="zErr, targetType"):
        query_page(catalog_sql("STAR", where, 10, columns=COLUMNS[:10]), data_release=16, timeout=5, sleep=no_sleep,
                   columns=COLUMN_NAMES[:10])


def test_throttle_spaces_queries():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    t = Throttle(30, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        t.wait()
    assert slept == [2.0, 2.0]


def test_sql_never_contains_a_comment_marker(where):
    for cls in ["STAR", "GALAXY", "QSO"]:
        assert "--" not in catalog_sql(cls, where, 500000, after_objid=1237000000000000000)


def test_casjobs_export(tmp_path, catalog):
    path = tmp_path / "export.csv"
    catalog.head(20).rename(columns=str.lower).to_csv(path, index=False)
    df = read_catalog_file(path)
    assert tuple(df.columns) == COLUMN_NAMES and df["objID"].dtype == "int64" and len(df) == 20
    assert (df["objID"] == catalog["objID"].head(20)).all()  # beyond 2**53, exact
    catalog.drop(columns=["dered_g", "extinction_z"]).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="dered_g, extinction_z"):
        read_catalog_file(path)


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("objID", "9100000000000001.0", r"column objID has values that are not whole numbers .* rows 3"),
        ("objID", "1.237649e18", r"column objID .*not whole numbers"),
        ("bestObjID", "", r"column bestObjID .*rows 3"),
        ("camcol", "1.5", r"column camcol has values that are not whole numbers \(e\.g\. '1\.5'\) in rows 3"),
        ("field", "11.9", r"column field .*rows 3"),
        ("specObjID", "-5", r"column specObjID has values outside uint64 in rows 3"),
        ("specObjID", str(2**64), r"column specObjID has values outside uint64"),
        ("r", "bright", r"column r has values that are not numbers \(e\.g\. 'bright'\) in rows 3"),
    ],
)
def test_casjobs_export_with_bad_values_names_file_column_and_rows(tmp_path, catalog, column, value, match):
    path = tmp_path / "export.csv"
    cat = catalog.head(6).astype({column: object})
    cat.loc[3, column] = value
    cat.to_csv(path, index=False)
    with pytest.raises(CatalogError, match=match) as err:
        read_catalog_file(path)
    assert str(path) in str(err.value)


def test_an_export_listing_an_object_twice_or_a_column_twice_is_refused_naming_file_objids_and_rows(tmp_path,
                                                                                                     catalog):
    path = tmp_path / "export.csv"
    cat = catalog.head(6).copy()
    pd.concat([cat, cat.iloc[[2]]], ignore_index=True).to_csv(path, index=False)
    with pytest.raises(CatalogError, match=rf"objIDs appear more than once \(e\.g\. \[{cat['objID'].iloc[2]}\]\) in "
                                           r"rows 2, 6") as err:
        read_catalog_file(path)
    assert str(path) in str(err.value) and "two classes" not in str(err.value)
    other = cat.iloc[[2]].assign(**{"class": "QSO" if cat["class"].iloc[2] != "QSO" else "STAR"})
    pd.concat([cat, other], ignore_index=True).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="with two classes"):
        read_catalog_file(path)
    cat.assign(R=cat["r"]).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="columns that differ only in case: r, R"):
        read_catalog_file(path)
    # classes are matched as SkyServer's SQL matches them: case and trailing blanks do not count
    cat.assign(**{"class": cat["class"].str.lower() + "  "}).to_csv(path, index=False)
    assert (read_catalog_file(path)["class"] == cat["class"]).all()


def test_float_typed_ids_are_refused(tmp_path, catalog):
    path = tmp_path / "export.parquet"
    catalog.head(5).astype({"objID": float}).to_parquet(path)
    with pytest.raises(CatalogError, match="column objID holds floating-point numbers"):
        read_catalog_file(path)


def test_blank_feature_cells_are_counted_drops_not_nan_features(tmp_path, catalog):
    from sdssclr.samples.cuts import cut_report

    path = tmp_path / "export.csv"
    cat = catalog.copy()
    cat.loc[cat.index[:7], "dered_u"] = np.nan
    cat.loc[cat.index[7:10], "extinction_g"] = np.nan
    cat.to_csv(path, index=False)
    df = read_catalog_file(path)
    cuts = dataset_cuts("compact", cuts_config())
    report = cut_report(df, cuts).set_index("cut")
    assert report.loc["range_dered_u", "fail"] == 7 and report.loc["range_extinction_g", "fail"] == 3
    pool = df[apply_cuts(df, cuts)]
    assert np.isfinite(pool[["dered_u", "extinction_g"]].to_numpy()).all()
