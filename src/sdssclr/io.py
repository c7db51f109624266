"""Atomic file output, Parquet metadata and log redirection used by every workflow step.

Every output is written to a temporary file in the destination directory and renamed into
place only once complete, so a crash never leaves a file that looks finished. Content hashes
(:func:`array_hash`, :func:`file_hash`) key resumed work on what it was computed from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def path_list(paths) -> list:
    """``paths`` as a list: one path (a str or Path), or any iterable of them (None: empty)."""
    if paths is None:
        return []
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def array_hash(*arrays) -> str:
    """SHA-256 of the dtypes, shapes and bytes of ``arrays`` (the content a piece of work reads)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def file_hash(path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the final suffix (``suffix`` overrides it) so that writers that
    dispatch on the extension (numpy, astropy) behave. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=(suffix or "".join(path.suffixes)) + ".tmp"
    )
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs follow the umask like open()
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it; there is no other portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_parquet_atomic(df: pd.DataFrame, path, metadata: dict[str, str] | None = None) -> None:
    """Write a DataFrame as Parquet atomically; ``metadata`` goes into the file's key-value store."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta.update({k.encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet_metadata(path) -> dict[str, str]:
    """The key-value metadata written by :func:`write_parquet_atomic` (pandas' own entry dropped)."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}


@contextlib.contextmanager
def log_to(logfile):
    """Send logging, stdout and stderr (tqdm's progress bars included) to ``logfile``.

    Workflow scripts wrap their body in this so that everything lands in the rule's log.
    """
    if logfile is None:
        yield
        return
    Path(logfile).parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "a", buffering=1) as fh:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        root = logging.getLogger()
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(logging.INFO)
        try:
            yield
        except SystemExit as exc:
            logging.getLogger("sdssclr").warning("step stopped with exit status %s", exc.code)
            raise
        except BaseException:
            logging.getLogger("sdssclr").exception("step failed")
            raise
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            sys.stdout, sys.stderr = old_out, old_err


def remove_stale_temporaries(directory: Path, prefixes=None) -> int:
    """Delete temporary files (``.NAME.*.tmp``, see :func:`atomic_path`) that a killed job left in
    ``directory``, all of them or those of files named in ``prefixes``; returns the count."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    n = 0
    for tmp in directory.glob(".*.tmp"):
        if prefixes is None or any(tmp.name.startswith(f".{p}.") for p in prefixes):
            tmp.unlink(missing_ok=True)
            n += 1
    return n


def data_source(path) -> str:
    """The data source ('synthetic' or 'SDSS DR<n>') recorded in a Parquet file's metadata."""
    try:
        return read_parquet_metadata(path)["source"]
    except KeyError:
        raise ValueError(f"{path}: no 'source' in its metadata; it was not written by this workflow") from None
