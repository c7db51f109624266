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

from .catalog import CLASSES, COLUMNS, COLUMN_NAMES, CatalogError, check_columns, coerce
from .cuts import Cut, where_clause
from .frames import Frame, FrameError, decompress, field_paths, frame_relpath, frame_url, parse_frame
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


def catalog_sql(cls: str, cuts: list[Cut], page_size: int, after_objid: int | None = None) -> str:
    """The SkyServer SQL of one page of one class's pool."""
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}")
    select = ",\n  ".join(c.select() for c in COLUMNS)
    where = where_clause(cuts)
    page = f"\n  AND p.objID > {int(after_objid)}" if after_objid is not None else ""
    sql = (f"SELECT TOP {int(page_size)}\n  {select}\n"
           "FROM SpecObj AS s\n  JOIN PhotoObj AS p ON p.objID = s.bestObjID\n"
           f"WHERE s.class = '{cls}'\n  AND {where}{page}\nORDER BY p.objID")
    assert "--" not in sql
    return sql


def _transient(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, (requests.Timeout, requests.ConnectionError, TimeoutError, ConnectionError))


def query_page(sql: str, *, data_release: int, timeout: float, retries: int = 5, backoff_s: float = 2.0,
               throttle: Throttle | None = None, sdss=None, sleep=time.sleep) -> pd.DataFrame:
    """Run one query; return its rows (an empty frame when SkyServer finds none).

    Retries transient failures with exponential backoff and ``cache=False``; raises
    :class:`QueryError` when they persist and :class:`CatalogError` when a parsed table lacks
    some of the expected columns.
    """
    from astroquery.exceptions import RemoteServiceError

    if sdss is None:
        from astroquery.sdss import SDSS as sdss
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
            return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMN_NAMES})
        df = table.to_pandas()
        present = [c for c in COLUMN_NAMES if c in df.columns]
        if not present:
            problem = f"a table without any expected column ({list(df.columns)[:5]})"
            continue
        check_columns(df, source="SkyServer response")
        return df
    raise QueryError(f"SkyServer query failed after {retries} retries: {problem}")


def query_pool(cuts: list[Cut], *, data_release: int, timeout: float, page_size: int = SKYSERVER_ROW_CAP,
               per_minute: float = 60, retries: int = 5, backoff_s: float = 2.0, sdss=None,
               sleep=time.sleep, classes=CLASSES) -> pd.DataFrame:
    """Every row of every class passing ``cuts``, paged by objID."""
    if not 0 < page_size <= SKYSERVER_ROW_CAP:
        raise ValueError(f"page_size must be in 1..{SKYSERVER_ROW_CAP}")
    throttle = Throttle(per_minute, sleep=sleep)
    parts = []
    for cls in classes:
        last, n = None, 0
        while True:
            sql = catalog_sql(cls, cuts, page_size, last)
            page = query_page(sql, data_release=data_release, timeout=timeout, retries=retries,
                              backoff_s=backoff_s, throttle=throttle, sdss=sdss, sleep=sleep)
            page = coerce(page)
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


def read_catalog_file(path) -> pd.DataFrame:
    """A CasJobs export (CSV or Parquet) with the columns of :data:`COLUMNS`.

    Column names are matched case-insensitively (CasJobs keeps the SELECT aliases' case, other
    tools lower-case them); missing columns raise :class:`CatalogError` listing all of them.
    """
    path = Path(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, comment="#")
    lower = {c.lower(): c for c in df.columns}
    df = df.rename(columns={lower[n.lower()]: n for n in COLUMN_NAMES if n.lower() in lower})
    check_columns(df, source=str(path))
    return coerce(df[list(COLUMN_NAMES)])


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
    """Downloads, verifies, and (optionally) deletes the frames of one field at a time."""

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
        self.bytes_on_disk = 0
        self.high_water = 0
        self.fetched = 0
        self.fetched_bytes = 0
        self.reused = 0

    def _account(self, delta: int):
        with self.lock:
            self.bytes_on_disk += delta
            self.high_water = max(self.high_water, self.bytes_on_disk)

    def fetch(self, key: tuple, band: str) -> Path | Frame:
        """One frame of a field: the path of a verified file already on disk, or the frame just
        downloaded and verified (already decoded, so the cutter does not decompress it again)."""
        path = self.root / frame_relpath(*key, band)
        if path.exists():  # only verified files are ever renamed into place
            with self.lock:
                self.reused += 1
            return path
        url = frame_url(self.base_url, self.data_release, *key, band)
        problem = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning("%s: %s; retry %d/%d in %.1f s", url, problem, attempt, self.retries, delay)
                self.sleep(delay)
            with self.slots:
                try:
                    data = self._get(url)
                except _Retry as exc:
                    problem = str(exc)
                    continue
            try:
                frame = parse_frame(path, decompress(path, data), band)
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

        try:
            with self.session.get(url, stream=True, timeout=(self.timeout, self.timeout)) as r:
                if r.status_code == 404:
                    raise FrameError(f"{url}: not found on the archive (HTTP 404)")
                if r.status_code >= 400:
                    raise _Retry(f"HTTP {r.status_code}")
                chunks = [c for c in r.iter_content(1 << 20) if c]
                data = b"".join(chunks)
                expected = r.headers.get("Content-Length")
                if expected is not None and int(expected) != len(data):
                    raise _Retry(f"truncated body ({len(data)} of {expected} bytes)")
                return data
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise _Retry(f"{type(exc).__name__}") from exc
        except requests.exceptions.ChunkedEncodingError as exc:
            raise _Retry(f"truncated or broken transfer ({exc})") from exc

    def acquire(self, key: tuple) -> dict[str, Path | Frame]:
        from concurrent.futures import ThreadPoolExecutor

        from .bands import BANDS

        with ThreadPoolExecutor(max_workers=len(BANDS)) as pool:
            paths = dict(zip(BANDS, pool.map(lambda b: self.fetch(key, b), BANDS)))
        return paths

    def release(self, key: tuple) -> None:
        if self.keep_frames:
            return
        for path in field_paths(self.root, *key).values():
            try:
                size = path.stat().st_size
                path.unlink()
                self._account(-size)
            except FileNotFoundError:
                pass

    def summary(self) -> str:
        return (f"downloaded {self.fetched} frames ({self.fetched_bytes / 1e6:.1f} MB), reused {self.reused} "
                f"already verified; disk high-water mark {self.high_water / 1e6:.1f} MB")


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

