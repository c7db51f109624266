"""The astroquery path, offline: SDSS._request replaced by a fake SkyServer answering with
astroquery.utils.mocks.MockResponse in SkyServer's CSV format ('#Table1' first line). The fake
runs the SQL it receives in SQLite over a synthetic catalogue, so paging and cuts are real."""

import re
import sqlite3

import pandas as pd
import pytest
import requests
from astroquery.sdss import SDSS
from astroquery.utils.mocks import MockResponse

from conftest import cuts_config
from sdssclr.catalog import COLUMN_NAMES, COLUMNS, CatalogError
from sdssclr.cuts import apply_cuts, dataset_cuts
from sdssclr.sdss import QueryError, Throttle, catalog_sql, query_page, query_pool, read_catalog_file
from sdssclr.synthetic import generate_catalog


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


@pytest.fixture(scope="module")
def catalog():
    cat, _, _ = generate_catalog(1200, 30, (256, 256), seed=11)
    return cat


@pytest.fixture()
def cuts():
    return dataset_cuts("compact", cuts_config())


def install(monkeypatch, server):
    monkeypatch.setattr(SDSS, "_request", server)
    return server


def no_sleep(_):
    pass


def test_pool_is_paged_across_the_row_cap_and_matches_the_local_filter(monkeypatch, catalog, cuts):
    server = install(monkeypatch, FakeSkyServer(catalog))
    pool = query_pool(cuts, data_release=16, timeout=42, page_size=100, sleep=no_sleep)
    expected = catalog[apply_cuts(catalog, cuts)]
    assert sorted(pool["objID"]) == sorted(expected["objID"])
    assert tuple(pool.columns) == COLUMN_NAMES
    n_pages = sum(-(-n // 100) + (n % 100 == 0) for n in expected["class"].value_counts())
    assert len(server.calls) == n_pages > 3
    for call in server.calls:
        assert "dr16" in call["url"].lower() and call["timeout"] == 42
        for cut in cuts:
            assert cut.sql() in call["sql"]
    assert any("p.objID > " in c["sql"] for c in server.calls)
    assert "TOP" in server.calls[0]["sql"] and "ORDER BY p.objID" in server.calls[0]["sql"]
    pd.testing.assert_series_equal(pool.dtypes, expected.dtypes, check_names=False)


def test_html_error_page_is_retried_without_cache(monkeypatch, catalog, cuts):
    page = MockResponse(content=b"<html><body><h1>Server Error in '/' Application.</h1></body></html>")
    server = install(monkeypatch, FakeSkyServer(catalog, [page]))
    df = query_page(catalog_sql("STAR", cuts, 1000), data_release=16, timeout=5, sleep=no_sleep)
    assert len(df) > 0
    assert [c["cache"] for c in server.calls] == [True, False]


def test_timeout_then_success(monkeypatch, catalog, cuts):
    server = install(monkeypatch, FakeSkyServer(catalog, [requests.Timeout("read timed out")]))
    slept = []
    df = query_page(catalog_sql("QSO", cuts, 1000), data_release=16, timeout=5, backoff_s=3, sleep=slept.append)
    assert len(df) > 0 and slept == [3] and server.calls[1]["cache"] is False


def test_5xx_and_error_message_pages_back_off_exponentially_then_fail(monkeypatch, catalog, cuts):
    faults = [MockResponse(content=b"busy", status_code=503),
              MockResponse(content=b"error_message: Query timed out"),
              MockResponse(content=b"busy", status_code=502)]
    install(monkeypatch, FakeSkyServer(catalog, faults))
    slept = []
    with pytest.raises(QueryError, match="HTTP 502"):
        query_page(catalog_sql("STAR", cuts, 10), data_release=16, timeout=5, retries=2, backoff_s=1,
                   sleep=slept.append)
    assert slept == [1, 2]


def test_empty_result_is_an_empty_pool(monkeypatch, catalog, cuts):
    header = ",".join(COLUMN_NAMES)
    install(monkeypatch, FakeSkyServer(catalog, [MockResponse(content=f"#Table1\n{header}\n".encode())]))
    assert SDSS._parse_result(MockResponse(content=f"#Table1\n{header}\n".encode())) is None
    pool = query_pool(cuts, data_release=16, timeout=5, sleep=no_sleep, classes=("GALAXY",))
    assert len(pool) == 0 and tuple(pool.columns) == COLUMN_NAMES


def test_response_missing_columns_is_an_error_listing_them(monkeypatch, catalog, cuts):
    partial = catalog.drop(columns=["psffwhm_u", "flags_r"]).head(3)
    install(monkeypatch, FakeSkyServer(catalog, [MockResponse(content=skyserver_csv(partial))]))
    with pytest.raises(CatalogError, match="psffwhm_u, flags_r"):
        query_page(catalog_sql("STAR", cuts, 10), data_release=16, timeout=5, sleep=no_sleep)


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


def test_sql_never_contains_a_comment_marker(cuts):
    for cls in ["STAR", "GALAXY", "QSO"]:
        assert "--" not in catalog_sql(cls, cuts, 500000, after_objid=1237000000000000000)


def test_casjobs_export(tmp_path, catalog):
    path = tmp_path / "export.csv"
    catalog.head(20).rename(columns=str.lower).to_csv(path, index=False)
    df = read_catalog_file(path)
    assert tuple(df.columns) == COLUMN_NAMES and df["objID"].dtype == "int64" and len(df) == 20
    catalog.drop(columns=["dered_g", "extinction_z"]).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="dered_g, extinction_z"):
        read_catalog_file(path)
