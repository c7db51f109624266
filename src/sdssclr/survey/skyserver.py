"""The SDSS catalogue through astroquery: SkyServer SQL, paged, throttled and retried; or a CasJobs export.

One query family per spectroscopic class, its ``WHERE`` clause rendered by the caller from the
same cut definitions as the local filter (:func:`sdssclr.samples.cuts.where_clause`), with the
columns of :data:`sdssclr.catalog.COLUMNS`. The whole pool is pulled, not ``TOP n``: pages of
``page_size`` rows ordered by objID continue from the last objID seen (``p.objID > last``), under
SkyServer's 500,000-row cap. Each page goes through
``SDSS.query_sql_async(sql, data_release=..., timeout=...)`` and astroquery's own parser
(``SDSS._parse_result``) -- the two halves of ``SDSS.query_sql`` -- so that the HTTP status and
body can be checked before parsing: timeouts, connection errors, HTTP 5xx, HTML or
``error_message`` pages and bodies without the expected columns are retried with exponential
backoff, and every retry passes ``cache=False`` so astroquery's week-long cache never replays an
error. Requests are throttled to SkyServer's per-minute limit.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import requests
from astroquery.exceptions import RemoteServiceError
from astroquery.sdss import SDSS

from ..catalog import COLUMN_NAMES, COLUMNS, INTEGER_DTYPES, OBJECT_CLASSES, CatalogError, check_columns, coerce
from ..io import write_parquet_atomic

log = logging.getLogger(__name__)

SKYSERVER_ROW_CAP = 500_000


class QueryError(RuntimeError):
    """SkyServer kept failing (or answered with an error) after every retry."""


class Throttle:
    """At most ``per_minute`` calls per minute (minimum spacing between calls)."""

    def __init__(self, per_minute: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 60.0 / per_minute
        self.clock, self.sleep = clock, sleep
        self.last = None
        self.lock = threading.Lock()

    def wait(self):
        with self.lock:
            now = self.clock()
            if self.last is not None and now - self.last < self.interval:
                self.sleep(self.interval - (now - self.last))
                now = self.clock()
            self.last = now


#: Longest query string sent to SkyServer. astroquery sends SQL by GET, and ASP.NET's default
#: limit on a query string is 2,048 characters (SkyServer's own is undocumented; astroquery#2211
#: shows it refusing long ones), so a margin is kept.
MAX_QUERY_STRING = 2000


def _with_objid_first(columns) -> list:
    """``columns`` with objID first and once: every query's rows are matched on it."""
    return [COLUMNS[0], *(c for c in columns if c.alias != "objID")]


def catalog_sql(cls: str, where: str, page_size: int, after_objid: int | None = None,
                columns=COLUMNS) -> str:
    """The SkyServer SQL of one page of one class's pool passing ``where`` (the cuts' rendered
    clause), selecting ``columns`` (objID always first), on one line and without optional spaces.
    With every column it is also the query to run in CasJobs, which has no length limit."""
    if cls not in OBJECT_CLASSES:
        raise ValueError(f"unknown class {cls!r}")
    cols = _with_objid_first(columns)
    select = ",".join(c.select() for c in cols)
    page = f" AND p.objID>{int(after_objid)}" if after_objid is not None else ""
    sql = (f"SELECT TOP {int(page_size)} {select} FROM SpecObj AS s JOIN PhotoObj AS p ON p.objID=s.bestObjID "
           f"WHERE s.class='{cls}' AND {where}{page} ORDER BY p.objID")
    assert "--" not in sql
    return sql


def query_string_length(sql: str, data_release: int) -> int:
    """Characters of the query string astroquery's ``SDSS.query_sql`` would send for ``sql``."""
    return len(urlencode(SDSS.query_sql_async(sql, data_release=data_release, get_query_payload=True)))


def check_url_length(sql: str, data_release: int) -> None:
    """Refuse, before sending, a query whose GET query string SkyServer could truncate or refuse."""
    n = query_string_length(sql, data_release)
    if n > MAX_QUERY_STRING:
        raise QueryError(f"the SkyServer query string would be {n} characters, over the {MAX_QUERY_STRING} this "
                         "workflow allows (SkyServer refuses long GET requests); split the columns or use CasJobs "
                         "(survey.catalog_file)")


def column_groups(cls: str, where: str, page_size: int, data_release: int) -> list[list]:
    """The catalogue columns split into as few groups as keep every page's query string within
    :data:`MAX_QUERY_STRING` (each query also selects objID, and every query of a page carries
    the same WHERE clause, so the groups come back as the same rows). The paging condition is
    counted at its longest (a 19-digit objID)."""
    longest_after = 9_223_372_036_854_775_807
    return split_columns(lambda cols: catalog_sql(cls, where, page_size, longest_after, cols), COLUMNS[1:],
                         data_release)


def split_columns(sql_of, columns, data_release: int) -> list[list]:
    """``columns`` in as few consecutive groups as keep ``sql_of(group)`` within the limit."""
    groups, current = [], []
    for col in columns:
        trial = current + [col]
        if current and query_string_length(sql_of(trial), data_release) > MAX_QUERY_STRING:
            groups.append(current)
            trial = [col]
        current = trial
    groups.append(current)
    for g in groups:
        check_url_length(sql_of(g), data_release)
    return groups


def query_in_groups(sql_of, groups, *, what: str, columns_out, **query) -> pd.DataFrame:
    """Run ``sql_of(group)`` for every column group (same rows, ordered by objID) and join them."""
    halves = []
    for g in groups:
        names = ("objID", *(c.alias for c in g))
        half = query_page(sql_of(g), columns=names, **query)
        halves.append(coerce(half[list(names)], source=f"SkyServer {what}"))
    page = halves[0]
    for other in halves[1:]:
        if not np.array_equal(other["objID"].to_numpy(), page["objID"].to_numpy()):
            raise QueryError(f"{what}: the column groups of one page returned different objects")
        page = pd.concat([page, other.drop(columns="objID")], axis=1)
    return page[list(columns_out)]


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, (requests.Timeout, requests.ConnectionError, TimeoutError, ConnectionError))


def query_page(sql: str, *, data_release: int, timeout: float, retries: int = 5, backoff_s: float = 2.0,
               throttle: Throttle | None = None, sdss=None, sleep=time.sleep,
               columns=COLUMN_NAMES) -> pd.DataFrame:
    """Run one query; return its rows (an empty frame when SkyServer finds none).

    Retries transient failures with exponential backoff and ``cache=False``; raises
    :class:`QueryError` when they persist and :class:`CatalogError` when a parsed table lacks
    some of the expected columns.
    """
    sdss = SDSS if sdss is None else sdss
    check_url_length(sql, data_release)
    problem = None
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("SkyServer query failed (%s); retry %d/%d in %.1f s with cache=False",
                        problem, attempt, retries, delay)
            sleep(delay)
        if throttle is not None:
            throttle.wait()
        try:
            response = sdss.query_sql_async(sql, data_release=data_release, timeout=timeout,
                                            cache=attempt == 0)
        except Exception as exc:  # noqa: BLE001 - classified below
            if not _transient(exc):
                raise
            problem = f"{type(exc).__name__}: {exc}"
            continue
        status = getattr(response, "status_code", 200)
        text = response.text
        if status >= 500 or status == 429:
            problem = f"HTTP {status}"
            continue
        if status >= 400:
            raise QueryError(f"SkyServer answered HTTP {status}: {text[:300]}")
        head = text.lstrip()[:500].lower()
        if head.startswith("<") or "<html" in head:
            problem = "an HTML page instead of CSV"
            continue
        try:
            table = sdss._parse_result(response)
        except RemoteServiceError as exc:
            problem = f"SkyServer error: {str(exc)[:300]}"
            continue
        except Exception as exc:  # noqa: BLE001 - unparsable body: an error page in disguise
            problem = f"unparsable response ({type(exc).__name__}: {str(exc)[:200]})"
            continue
        if table is None:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        df = table.to_pandas()
        present = [c for c in columns if c in df.columns]
        if not present:
            problem = f"a table without any expected column ({list(df.columns)[:5]})"
            continue
        check_columns(df, required=columns, source="SkyServer response")
        return df
    raise QueryError(f"SkyServer query failed after {retries} retries: {problem}")


def query_pool(where: str, *, data_release: int, timeout: float, page_size: int = 50_000,
               per_minute: float = 60, retries: int = 5, backoff_s: float = 2.0, sdss=None,
               sleep=time.sleep, classes=OBJECT_CLASSES) -> pd.DataFrame:
    """Every row of every class passing ``where`` (the cuts' SQL clause), paged by objID; each page is fetched in as many
    column groups as keep the query strings short (:func:`column_groups`) and joined on objID."""
    if not 0 < page_size <= SKYSERVER_ROW_CAP:
        raise ValueError(f"page_size must be in 1..{SKYSERVER_ROW_CAP}")
    throttle = Throttle(per_minute, sleep=sleep)
    parts = []
    for cls in classes:
        groups = column_groups(cls, where, page_size, data_release)
        if len(groups) > 1:
            log.info("%s: each page is fetched in %d column groups (query strings within %d characters)", cls,
                     len(groups), MAX_QUERY_STRING)
        last, n = None, 0
        while True:
            page = query_in_groups(lambda g: catalog_sql(cls, where, page_size, last, g), groups,
                                   what=f"{cls} page", columns_out=COLUMN_NAMES, data_release=data_release,
                                   timeout=timeout, retries=retries, backoff_s=backoff_s, throttle=throttle,
                                   sdss=sdss, sleep=sleep)
            parts.append(page)
            n += len(page)
            log.info("%s: page of %d rows (total %d)", cls, len(page), n)
            if len(page) < page_size:
                break
            new_last = int(page["objID"].max())
            if last is not None and new_last <= last:
                raise QueryError(f"{cls}: paging did not advance past objID {last}")
            last = new_last
    catalog = pd.concat(parts, ignore_index=True)
    dup = catalog["objID"].duplicated()
    if dup.any():
        log.warning("dropping %d duplicate objIDs across pages/classes", dup.sum())
        catalog = catalog[~dup]
    return catalog.reset_index(drop=True)


#: Longest objID in decimal (19 digits): what a list's query is sized for.
_LONGEST_OBJID = 9_223_372_036_854_775_807


def listed_sql(objids, columns=COLUMNS) -> str:
    """The SkyServer SQL fetching ``columns`` (objID first) of the objects ``objids``, with no cut:
    the cuts are applied locally, so that the log can say which listed objects fail which cut.
    ``TOP`` allows two spectra per object (:func:`query_listed` keeps one)."""
    cols = _with_objid_first(columns)
    ids = ",".join(str(int(o)) for o in objids)
    return (f"SELECT TOP {2 * len(objids)} {','.join(c.select() for c in cols)} FROM SpecObj AS s JOIN PhotoObj "
            f"AS p ON p.objID=s.bestObjID WHERE p.objID IN ({ids}) ORDER BY p.objID,s.sciencePrimary DESC,s.specObjID")


def listed_plan(data_release: int, most: int = 200) -> tuple[int, list[list]]:
    """(objIDs per query, column groups) fetching the most objects per query within
    :data:`MAX_QUERY_STRING`: longer ID lists leave room for fewer columns per query."""
    best = None
    for k in range(1, most + 1):
        try:
            groups = split_columns(lambda cols: listed_sql([_LONGEST_OBJID] * k, cols), COLUMNS[1:], data_release)
        except QueryError:
            break
        if best is None or k / len(groups) > best[0] / len(best[1]):
            best = (k, groups)
    if best is None:
        raise QueryError("not even one objID fits a SkyServer query string with the catalogue's columns")
    return best


def query_listed(objids, *, data_release: int, timeout: float, per_minute: float = 60, retries: int = 5,
                 backoff_s: float = 2.0, sdss=None, sleep=time.sleep) -> pd.DataFrame:
    """The catalogue columns of exactly the objects ``objids`` (no cuts), in as many queries as the
    query-string limit needs (:func:`listed_plan`). An object with two spectra keeps its
    science-primary one (counted in the log); listed objects SkyServer does not know are absent."""
    objids = np.unique(np.asarray(objids, dtype=np.int64))
    per_query, groups = listed_plan(data_release)
    n_queries = -(-len(objids) // per_query) * len(groups)
    log.info("%d listed objects: %d per query in %d column group(s), %d queries, about %.0f min at %g per minute "
             "(CasJobs has no such limit: casjobs_listed_sql)", len(objids), per_query, len(groups), n_queries,
             n_queries / per_minute, per_minute)
    throttle = Throttle(per_minute, sleep=sleep)
    parts = []
    for start in range(0, len(objids), per_query):
        chunk = objids[start:start + per_query]
        parts.append(query_in_groups(lambda g: listed_sql(chunk, g), groups, what=f"listed objects {start}+",
                                     columns_out=COLUMN_NAMES, data_release=data_release, timeout=timeout,
                                     retries=retries, backoff_s=backoff_s, throttle=throttle, sdss=sdss,
                                     sleep=sleep))
    catalog = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COLUMN_NAMES))
    # rows come ordered by objID with the science-primary spectrum first
    dup = catalog["objID"].duplicated()
    if dup.any():
        log.info("%d listed objects have more than one spectrum: the science-primary one is kept", int(dup.sum()))
        catalog = catalog[~dup]
    log.info("%d of %d listed objects found in DR%d", len(catalog), len(objids), data_release)
    return catalog.reset_index(drop=True)


def casjobs_listed_sql(table: str = "MyDB.objlist", columns=COLUMNS) -> str:
    """The CasJobs SQL joining an uploaded object list (a MyDB table with an ``objID`` column) to
    the catalogue columns; its CSV export is read as ``survey.catalog_file``."""
    cols = _with_objid_first(columns)
    return (f"SELECT {', '.join(c.select() for c in cols)}\nFROM {table} AS l\nJOIN PhotoObj AS p ON p.objID = l.objID"
            "\nJOIN SpecObj AS s ON s.bestObjID = p.objID AND s.sciencePrimary = 1")


def read_catalog_file(path, columns=COLUMNS) -> pd.DataFrame:
    """A CasJobs export (CSV or Parquet) with the catalogue ``columns`` (default: all of them).

    Column names are matched case-insensitively (CasJobs keeps the SELECT aliases' case, other
    tools lower-case them); missing columns raise :class:`CatalogError` listing all of them.
    """
    path = Path(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        df = pd.read_parquet(path)
    else:
        # integer columns as text: read as floats, 64-bit IDs would be rounded (coerce parses them exactly)
        head = pd.read_csv(path, comment="#", nrows=0).columns
        integer = {c.alias.lower() for c in columns if c.dtype in INTEGER_DTYPES}
        df = pd.read_csv(path, comment="#", dtype={c: str for c in head if c.lower() in integer})
    names = [c.alias for c in columns]
    wanted = {n.lower() for n in names}
    clashes = {}
    for c in df.columns:
        if str(c).lower() in wanted:
            clashes.setdefault(str(c).lower(), []).append(str(c))
    clashes = {k: v for k, v in clashes.items() if len(v) > 1}
    if clashes:
        raise CatalogError(f"{path}: columns that differ only in case: "
                           + "; ".join(", ".join(v) for v in clashes.values()) + " (keep one of each)")
    lower = {str(c).lower(): c for c in df.columns}
    df = df.rename(columns={lower[n.lower()]: n for n in names if n.lower() in lower})
    check_columns(df, required=names, source=str(path))
    df = coerce(df[names], source=str(path))
    if "class" in df:
        # SkyServer's SQL compares strings case- and trailing-blank-insensitively ('Star ' = 'STAR')
        df["class"] = df["class"].str.strip().str.upper()
    check_unique_objects(df, str(path))
    return df


def check_unique_objects(df: pd.DataFrame, source: str) -> None:
    """Refuse an export listing an objID twice (or with two classes), naming the objIDs and the
    data rows (0-based, as the other export errors count them)."""
    if "objID" not in df:
        return
    dup = df["objID"].duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    rows = df.index.to_numpy()[dup]
    ids = df.loc[dup, "objID"]
    conflict = ""
    if "class" in df:
        classes = df.loc[dup].groupby("objID")["class"].nunique()
        if (classes > 1).any():
            conflict = f"; with two classes: {classes[classes > 1].index[:5].tolist()}"
    raise CatalogError(f"{source}: {ids.nunique()} objIDs appear more than once (e.g. {ids.unique()[:5].tolist()}) in "
                       f"rows {', '.join(map(str, rows[:10]))}{' ...' if len(rows) > 10 else ''}{conflict}; "
                       "an export must list each object once")


def write_catalog(out, survey: dict, where: str, sdss=None, sleep=time.sleep, listed=(),
                  pool_query: bool = True) -> pd.DataFrame:
    """The catalogue step of the SDSS path: query SkyServer for the objects passing ``where``
    (unless no pool needs them, ``pool_query`` false) and for the objects of the lists ``listed``
    (objID arrays; fetched without cuts); or read ``survey.catalog_file``, which must then hold the
    listed objects too (:func:`casjobs_listed_sql`)."""
    release = survey["data_release"]
    ids = np.unique(np.concatenate([np.asarray(x, np.int64) for x in listed])) if len(listed) else None
    if survey.get("catalog_file"):
        catalog = read_catalog_file(survey["catalog_file"])
        origin = f"CasJobs export {survey['catalog_file']}"
        if ids is not None:
            log.info("%d of the %d listed objects are in the export (for lists, run in CasJobs after uploading "
                     "them as MyDB.objlist:\n%s)", int(np.isin(ids, catalog["objID"]).sum()), len(ids),
                     casjobs_listed_sql())
    else:
        options = dict(data_release=release, timeout=survey["timeout_s"], per_minute=survey["max_queries_per_minute"],
                       retries=survey["retries"], backoff_s=survey["backoff_s"], sdss=sdss, sleep=sleep)
        parts = []
        if pool_query:
            parts.append(query_pool(where, page_size=survey["page_size"], **options))
        if ids is not None:
            parts.append(query_listed(ids, **options))
        catalog = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        catalog = catalog[~catalog["objID"].duplicated()].reset_index(drop=True)
        origin = "SkyServer SQL via astroquery" + (f" ({len(ids)} listed objects)" if ids is not None else "")
    log.info("catalogue: %d rows from %s; classes %s", len(catalog), origin,
             catalog["class"].value_counts().to_dict())
    write_parquet_atomic(catalog, out, {"source": f"SDSS DR{release}", "origin": origin})
    return catalog
