"""SDSS access: the catalogue through astroquery (SkyServer SQL) and frames from the archive.

Catalogue
---------
One query family per spectroscopic class, rendered from the same cut definitions as the local
filter (:mod:`sdssclr.cuts`), with the columns of :data:`sdssclr.catalog.COLUMNS`. The whole pool
is pulled, not ``TOP n``: pages of ``page_size`` rows ordered by objID continue from the last objID
seen (``p.objID > last``), under SkyServer's 500,000-row cap. Each page goes through
``SDSS.query_sql_async(sql, data_release=..., timeout=...)`` and astroquery's own parser
(``SDSS._parse_result``) -- the two halves of ``SDSS.query_sql`` -- so that the HTTP status and
body can be checked before parsing: timeouts, connection errors, HTTP 5xx, HTML or
``error_message`` pages and bodies without the expected columns are retried with exponential
backoff, and every retry passes ``cache=False`` so astroquery's week-long cache never replays an
error. Requests are throttled to SkyServer's per-minute limit.

Frames
------
:class:`FrameFetcher` downloads the five bands of a field from the Science Archive Server (the
URL template of :func:`sdssclr.frames.frame_url`, the files ``SDSS.get_images`` reads), with a
bounded number of parallel downloads, retries with backoff on timeouts, stalls, 5xx and truncated
bodies, and verification before use (complete bz2 stream, FITS opens, 2-D image, WCS). A file is
written to a temporary name and renamed into place only once verified, so a file at its final
path is a verified frame and is never fetched again (resume after a crash). With
``keep_frames=False`` a field's frames are deleted once its stamps are cut, so disk use stays
bounded by the fields in flight; the high-water mark is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .catalog import CLASSES, COLUMN_NAMES, COLUMNS, INTEGER_DTYPES, CatalogError, check_columns, coerce
from .cuts import Cut, where_clause
from .frames import Frame, FrameError, MissingFrame, decompress, field_paths, frame_relpath, frame_url, parse_frame
from .io import atomic_path

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


def catalog_sql(cls: str, cuts: list[Cut], page_size: int, after_objid: int | None = None,
                columns=COLUMNS) -> str:
    """The SkyServer SQL of one page of one class's pool, selecting ``columns`` (objID always
    first), on one line and without optional spaces. With every column it is also the query to run
    in CasJobs, which has no length limit."""
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}")
    cols = [COLUMNS[0], *(c for c in columns if c.alias != "objID")]
    select = ",".join(c.select() for c in cols)
    where = where_clause(cuts)
    page = f" AND p.objID>{int(after_objid)}" if after_objid is not None else ""
    sql = (f"SELECT TOP {int(page_size)} {select} FROM SpecObj AS s JOIN PhotoObj AS p ON p.objID=s.bestObjID "
           f"WHERE s.class='{cls}' AND {where}{page} ORDER BY p.objID")
    assert "--" not in sql
    return sql


def query_string_length(sql: str, data_release: int) -> int:
    """Characters of the query string astroquery's ``SDSS.query_sql`` would send for ``sql``."""
    from urllib.parse import urlencode

    from astroquery.sdss import SDSS

    return len(urlencode(SDSS.query_sql_async(sql, data_release=data_release, get_query_payload=True)))


def check_url_length(sql: str, data_release: int) -> None:
    """Refuse, before sending, a query whose GET query string SkyServer could truncate or refuse."""
    n = query_string_length(sql, data_release)
    if n > MAX_QUERY_STRING:
        raise QueryError(f"the SkyServer query string would be {n} characters, over the {MAX_QUERY_STRING} this "
                         "workflow allows (SkyServer refuses long GET requests); split the columns or use CasJobs "
                         "(survey.catalog_file)")


def column_groups(cls: str, cuts: list[Cut], page_size: int, data_release: int) -> list[list]:
    """The catalogue columns split into as few groups as keep every page's query string within
    :data:`MAX_QUERY_STRING` (each query also selects objID, and every query of a page carries
    the same WHERE clause, so the groups come back as the same rows). The paging condition is
    counted at its longest (a 19-digit objID)."""
    longest_after = 9_223_372_036_854_775_807
    return split_columns(lambda cols: catalog_sql(cls, cuts, page_size, longest_after, cols), COLUMNS[1:],
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
    import requests

    return isinstance(exc, (requests.Timeout, requests.ConnectionError, TimeoutError, ConnectionError))


def query_page(sql: str, *, data_release: int, timeout: float, retries: int = 5, backoff_s: float = 2.0,
               throttle: Throttle | None = None, sdss=None, sleep=time.sleep,
               columns=COLUMN_NAMES) -> pd.DataFrame:
    """Run one query; return its rows (an empty frame when SkyServer finds none).

    Retries transient failures with exponential backoff and ``cache=False``; raises
    :class:`QueryError` when they persist and :class:`CatalogError` when a parsed table lacks
    some of the expected columns.
    """
    from astroquery.exceptions import RemoteServiceError

    if sdss is None:
        from astroquery.sdss import SDSS as sdss
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


def query_pool(cuts: list[Cut], *, data_release: int, timeout: float, page_size: int = 50_000,
               per_minute: float = 60, retries: int = 5, backoff_s: float = 2.0, sdss=None,
               sleep=time.sleep, classes=CLASSES) -> pd.DataFrame:
    """Every row of every class passing ``cuts``, paged by objID; each page is fetched in as many
    column groups as keep the query strings short (:func:`column_groups`) and joined on objID."""
    if not 0 < page_size <= SKYSERVER_ROW_CAP:
        raise ValueError(f"page_size must be in 1..{SKYSERVER_ROW_CAP}")
    throttle = Throttle(per_minute, sleep=sleep)
    parts = []
    for cls in classes:
        groups = column_groups(cls, cuts, page_size, data_release)
        if len(groups) > 1:
            log.info("%s: each page is fetched in %d column groups (query strings within %d characters)", cls,
                     len(groups), MAX_QUERY_STRING)
        last, n = None, 0
        while True:
            page = query_in_groups(lambda g: catalog_sql(cls, cuts, page_size, last, g), groups,
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
    lower = {c.lower(): c for c in df.columns}
    df = df.rename(columns={lower[n.lower()]: n for n in names if n.lower() in lower})
    check_columns(df, required=names, source=str(path))
    return coerce(df[names], source=str(path))


def write_catalog(out, survey: dict, cuts: list[Cut], sdss=None, sleep=time.sleep) -> pd.DataFrame:
    """The catalogue step of the SDSS path: query SkyServer, or read ``survey.catalog_file``."""
    from .io import write_parquet_atomic

    release = survey["data_release"]
    if survey.get("catalog_file"):
        catalog = read_catalog_file(survey["catalog_file"])
        origin = f"CasJobs export {survey['catalog_file']}"
    else:
        catalog = query_pool(cuts, data_release=release, timeout=survey["timeout_s"],
                             page_size=survey["page_size"], per_minute=survey["max_queries_per_minute"],
                             retries=survey["retries"], backoff_s=survey["backoff_s"], sdss=sdss, sleep=sleep)
        origin = "SkyServer SQL via astroquery"
    log.info("catalogue: %d rows from %s; classes %s", len(catalog), origin,
             catalog["class"].value_counts().to_dict())
    write_parquet_atomic(catalog, out, {"source": f"SDSS DR{release}", "origin": origin})
    return catalog


class FrameFetcher:
    """Downloads, verifies, and (optionally) deletes the frames of one field at a time.

    - A frame already in ``root`` is verified before it is used (a corrupt file left there is
      deleted and fetched again), and a download is verified before it is renamed into place.
    - HTTP 404 raises :class:`~sdssclr.frames.MissingFrame` (the shard skips and counts the
      field); a redirect to another scheme or a ``Content-Encoding`` are errors naming the URL;
      timeouts, stalls, 5xx and truncated or corrupt bodies are retried with backoff.
    - After :meth:`stop` (one field failed) no further request is sent.
    - Several jobs, or several workflows, may share ``root``: each holds a shared ``flock`` on a
      field's lock file while it uses the field, and :meth:`release` deletes the frames only when
      it can take the lock exclusively, i.e. when nobody else is using them.
    """

    def __init__(self, base_url: str, data_release: int, root, *, timeout: float = 60, retries: int = 5,
                 backoff_s: float = 2.0, parallel: int = 8, keep_frames: bool = False,
                 session=None, sleep=time.sleep):
        import requests

        self.base_url, self.data_release, self.root = base_url, int(data_release), Path(root)
        self.timeout, self.retries, self.backoff_s = timeout, retries, backoff_s
        self.keep_frames, self.sleep = keep_frames, sleep
        self.session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=parallel, pool_maxsize=parallel)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.slots = threading.BoundedSemaphore(parallel)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.field_locks: dict[tuple, object] = {}
        self.bytes_on_disk = 0
        self.high_water = 0
        self.fetched = 0
        self.fetched_bytes = 0
        self.reused = 0
        self.refetched = 0

    def _account(self, delta: int):
        with self.lock:
            self.bytes_on_disk += delta
            self.high_water = max(self.high_water, self.bytes_on_disk)

    def stop(self) -> None:
        """Send no further request (a field failed; the shard is stopping)."""
        self.stopped.set()

    def fetch(self, key: tuple, band: str) -> Frame:
        """One frame of a field, verified and decoded: the file already on disk when it passes
        verification, else a fresh download (renamed into place only once verified)."""
        path = self.root / frame_relpath(*key, band)
        if path.exists():
            try:
                frame = parse_frame(path, decompress(path), band, key)
            except FrameError as exc:
                log.warning("%s; deleting it and downloading the frame again", exc)
                path.unlink(missing_ok=True)
                with self.lock:
                    self.refetched += 1
            else:
                with self.lock:
                    self.reused += 1
                return frame
        url = frame_url(self.base_url, self.data_release, *key, band)
        problem = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning("%s: %s; retry %d/%d in %.1f s", url, problem, attempt, self.retries, delay)
                self.sleep(delay)
            with self.slots:
                if self.stopped.is_set():
                    raise FrameError(f"{url}: not requested, the shard is stopping after another field failed")
                try:
                    data = self._get(url)
                except _Retry as exc:
                    problem = str(exc)
                    continue
            try:
                frame = parse_frame(path, decompress(path, data), band, key)
            except FrameError as exc:
                problem = f"failed verification ({exc})"
                continue
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
            self._account(len(data))
            with self.lock:
                self.fetched += 1
                self.fetched_bytes += len(data)
            return frame
        raise FrameError(f"{url}: download failed after {self.retries} retries: {problem}")

    def _get(self, url: str) -> bytes:
        import requests
        from urllib.parse import urljoin, urlsplit

        target = url
        try:
            for _ in range(6):  # redirects are followed by hand, so that each target is checked
                with self.session.get(target, stream=True, timeout=(self.timeout, self.timeout),
                                      allow_redirects=False) as r:
                    if r.is_redirect:
                        nxt = urljoin(target, r.headers["Location"])
                        if urlsplit(nxt).scheme != urlsplit(url).scheme:
                            raise FrameError(f"{url}: redirected to {nxt}, another scheme; refusing to follow")
                        target = nxt
                        continue
                    if r.status_code == 404:
                        raise MissingFrame(f"{url}: not found on the archive (HTTP 404)")
                    if r.status_code >= 400:
                        raise _Retry(f"HTTP {r.status_code}")
                    encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
                    if encoding not in ("", "identity"):
                        raise FrameError(f"{url}: served with Content-Encoding {encoding!r}; a frame is sent as is")
                    data = b"".join(c for c in r.iter_content(1 << 20) if c)
                    expected = r.headers.get("Content-Length")
                    if expected is not None and int(expected) != len(data):
                        raise _Retry(f"truncated body ({len(data)} of {expected} bytes)")
                    return data
            raise FrameError(f"{url}: too many redirects")
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise _Retry(f"{type(exc).__name__}") from exc
        except requests.exceptions.ChunkedEncodingError as exc:
            raise _Retry(f"truncated or broken transfer ({exc})") from exc

    def _lock_path(self, key: tuple) -> Path:
        return self.root / ".locks" / ("field-" + "-".join(str(int(k)) for k in key) + ".lock")

    def acquire(self, key: tuple) -> dict[str, Frame]:
        import fcntl
        from concurrent.futures import ThreadPoolExecutor

        from .bands import BANDS
        from .stamps import remove_stale_temporaries

        lock_path = self._lock_path(key)
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a+")
        fcntl.flock(fh, fcntl.LOCK_SH)  # the field's frames stay while anyone holds this
        with self.lock:
            self.field_locks[key] = fh
        names = [frame_relpath(*key, b).rsplit("/", 1)[-1] for b in BANDS]
        directory = self.root / frame_relpath(*key, BANDS[0]).rsplit("/", 1)[0]
        if remove_stale_temporaries(directory, names):
            log.info("field %s: removed temporary files left by an interrupted download", key)
        try:
            with ThreadPoolExecutor(max_workers=len(BANDS)) as pool:
                return dict(zip(BANDS, pool.map(lambda b: self.fetch(key, b), BANDS)))
        except BaseException:
            self.release(key)
            raise

    def release(self, key: tuple) -> None:
        import fcntl

        with self.lock:
            fh = self.field_locks.pop(key, None)
        if fh is None:
            return
        try:
            if self.keep_frames:
                return
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                log.info("field %s: frames in use by another job; leaving them to it", key)
                return
            for path in field_paths(self.root, *key).values():
                try:
                    size = path.stat().st_size
                    path.unlink()
                    self._account(-size)
                except FileNotFoundError:
                    pass
        finally:
            fh.close()

    def summary(self) -> str:
        return (f"downloaded {self.fetched} frames ({self.fetched_bytes / 1e6:.1f} MB), reused {self.reused} "
                f"verified ones, replaced {self.refetched} corrupt ones; disk high-water mark "
                f"{self.high_water / 1e6:.1f} MB")


class _Retry(Exception):
    pass


def frame_source(survey: dict, synthetic_root=None):
    """The frame provider of a run: the synthetic frames, a local mirror, or the archive."""
    from .stamps import LocalFrames

    if survey["source"] == "synthetic":
        return LocalFrames(synthetic_root)
    if survey.get("frames_dir"):
        return LocalFrames(survey["frames_dir"])
    return FrameFetcher(survey["sas_url"], survey["data_release"], survey["download_dir"],
                        timeout=survey["timeout_s"], retries=survey["retries"], backoff_s=survey["backoff_s"],
                        parallel=survey["parallel_downloads"], keep_frames=survey["keep_frames"])

