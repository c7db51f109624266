"""Frames of a field, from where a run finds them: the synthetic tree, a local mirror, or the archive.

Every provider answers ``acquire(key) -> {band: path or decoded Frame}``, ``release(key)`` and
``stop()`` for a field key (rerun, run, camcol, field); :func:`frame_source` picks the run's.

:class:`FrameFetcher` downloads the five bands of a field from the Science Archive Server (the
URL template of :func:`sdssclr.survey.frames.frame_url`, the files ``SDSS.get_images`` reads),
with a bounded number of parallel downloads, retries with backoff on timeouts, stalls, 5xx and
truncated bodies, and verification before use (complete bz2 stream, FITS opens, 2-D image, WCS).
A file is written to a temporary name and renamed into place only once verified, so a file at its
final path is a verified frame and is never fetched again (resume after a crash). With
``keep_frames=False`` a field's frames are deleted once its stamps are cut, so disk use stays
bounded by the fields in flight; the high-water mark is logged.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from ..bands import BANDS
from ..io import atomic_path, remove_stale_temporaries
from .frames import Frame, FrameError, MissingFrame, decompress, field_paths, frame_relpath, frame_url, parse_frame

log = logging.getLogger(__name__)


class FrameFetcher:
    """Downloads, verifies, and (optionally) deletes the frames of one field at a time.

    - A frame already in ``root`` is verified before it is used (a corrupt file left there is
      deleted and fetched again), and a download is verified before it is renamed into place.
    - HTTP 404 raises :class:`~sdssclr.survey.frames.MissingFrame` (the shard skips and counts the
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


class LocalFrames:
    """Frames already on disk below a ``photoObj/frames`` root (synthetic survey or a mirror).
    A field whose file is absent raises :class:`~sdssclr.survey.frames.MissingFrame`."""

    def __init__(self, root):
        self.root = Path(root)

    def acquire(self, key: tuple) -> dict[str, Path]:
        paths = field_paths(self.root, *key)
        absent = [str(p) for p in paths.values() if not p.exists()]
        if absent:
            raise MissingFrame(f"frames absent from {self.root}: {', '.join(absent)}")
        return paths

    def release(self, key: tuple) -> None:
        pass

    def stop(self) -> None:
        pass


def frame_source(survey: dict, synthetic_root=None):
    """The frame provider of a run: the synthetic frames, a local mirror, or the archive."""
    if survey["source"] == "synthetic":
        return LocalFrames(synthetic_root)
    if survey.get("frames_dir"):
        return LocalFrames(survey["frames_dir"])
    return FrameFetcher(survey["sas_url"], survey["data_release"], survey["download_dir"],
                        timeout=survey["timeout_s"], retries=survey["retries"], backoff_s=survey["backoff_s"],
                        parallel=survey["parallel_downloads"], keep_frames=survey["keep_frames"])
