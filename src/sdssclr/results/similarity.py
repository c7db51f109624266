"""Similarity search over an encoder's embeddings: "show me objects that look like this one".

:func:`build_index` turns a pretraining run's ``embeddings.parquet`` into a saved index folder:
``vectors.npy`` (the L2-normalised float32 embeddings, memory-mapped when queried), ``index.faiss``
(a FAISS index of them, searched by inner product, which on unit vectors is the cosine
similarity) and ``objid.npy`` (the objID of each row). FAISS is the
field's standard for vector search (Stein et al. searched their SDSS self-supervised embeddings
with it). The kind of index follows the size (:func:`index_spec`):

- up to :data:`EXACT_MAX_BYTES` of float32 vectors, an exact flat index (``Flat``; 4 x dim bytes
  per object, every query a scan);
- beyond, a compressed inverted-file index (``IVF<nlist>,PQ<m>``) in memory: the vectors are
  quantised to ``m`` one-byte codes (at most :data:`PQ_BYTES`, plus an 8-byte id) in ``nlist``
  k-means cells, of which a query scans :data:`NPROBE`; its :data:`RERANK` x k best candidates are
  then re-ranked by their exact cosine similarity, read from the memory-mapped ``vectors.npy``
  (on disk, only those rows touched). The reported similarities are exact; the search can miss a
  neighbour (recall against exact search in ``benchmarks/similarity.py``).
  ``python -m sdssclr similar`` says which kind it searched.

The command line::

    python -m sdssclr similar OBJID --k 20 [--index results/similarity/compact/split2023/seed0]

prints the neighbours with their spectroscopic class where known, and writes a gri stamp gallery.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, path_list
from ..learn.runfiles import read_embeddings
from ..stamps.objects import load_by_objid
from ..stamps.shards import usable_index
from .plotting import pyplot, save_png, stamp_rgb

log = logging.getLogger(__name__)

#: Largest exact index (bytes of float32 vectors): 2 GiB, e.g. 4 million 128-d or 1 million 512-d
#: embeddings. Beyond it the index is compressed.
EXACT_MAX_BYTES = 2 * 1024**3
#: Bytes of product-quantisation code per object in a compressed index (plus 8 for its row id).
PQ_BYTES = 64
#: Inverted-file cells scanned per query.
NPROBE = 64
#: Candidates per neighbour asked for that a compressed index re-ranks exactly.
RERANK = 10
#: Training vectors per k-means cell for a compressed index (FAISS asks for at least 39).
TRAIN_PER_CELL = 64
#: Vectors added to an index at a time (bounds the normalised copy in memory).
ADD_CHUNK = 1_000_000


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise FloatingPointError("non-finite embedding values")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def index_spec(n: int, dim: int, exact_max_bytes: int = EXACT_MAX_BYTES) -> str:
    """The FAISS factory string for ``n`` vectors of ``dim``: exact ``Flat`` while the vectors fit
    ``exact_max_bytes``, else ``IVF<nlist>,PQ<m>`` with about sqrt(n) cells (a power of two) and
    the largest ``m`` dividing ``dim`` with at most :data:`PQ_BYTES` and at least two dimensions
    per sub-quantiser."""
    if n * dim * 4 <= exact_max_bytes:
        return "Flat"
    nlist = 2 ** round(math.log2(math.sqrt(n)))
    m = max(d for d in range(1, max(1, min(dim // 2, PQ_BYTES)) + 1) if dim % d == 0)
    return f"IVF{nlist},PQ{m}"


def save_index(objid: np.ndarray, vectors: np.ndarray, folder, exact_max_bytes: int = EXACT_MAX_BYTES,
               seed: int = 0) -> str:
    """Write ``vectors.npy`` (normalised), ``index.faiss`` and ``objid.npy`` for the rows of
    ``vectors`` (any float array); returns the index kind. A compressed index is trained on a
    seeded sample."""
    import faiss

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    objid = np.asarray(objid, dtype=np.int64)
    if len(np.unique(objid)) != len(objid):
        raise ValueError("duplicate objIDs in the embeddings")
    n, dim = vectors.shape
    spec = index_spec(n, dim, exact_max_bytes)
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        ivf = faiss.extract_index_ivf(index)
        rows = np.sort(np.random.default_rng(seed).choice(n, min(n, TRAIN_PER_CELL * ivf.nlist), replace=False))
        index.train(normalise(vectors[rows]))
        ivf.nprobe = NPROBE
    with atomic_path(folder / "vectors.npy") as tmp:
        unit = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
        for lo in range(0, n, ADD_CHUNK):
            unit[lo:lo + ADD_CHUNK] = normalise(vectors[lo:lo + ADD_CHUNK])
            index.add(unit[lo:lo + ADD_CHUNK])
        unit.flush()
        del unit
    with atomic_path(folder / "objid.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, objid)
    with atomic_path(folder / "index.faiss") as tmp:
        faiss.write_index(index, str(tmp))
    return spec


def build_index(embeddings_path, folder) -> int:
    objid, emb = read_embeddings(embeddings_path)
    spec = save_index(objid, emb, folder)
    log.info("%s: %d objects x %d dimensions, FAISS index %s", folder, *emb.shape, spec)
    return len(objid)


class SimilarityIndex:
    """A saved index; :meth:`neighbours` by cosine similarity (exact or approximate: :attr:`exact`)."""

    def __init__(self, folder):
        import faiss

        self.folder = Path(folder)
        self.index = faiss.read_index(str(self.folder / "index.faiss"))
        self.vectors = np.load(self.folder / "vectors.npy", mmap_mode="r")
        self.objid = np.load(self.folder / "objid.npy")
        if not self.index.ntotal == len(self.vectors) == len(self.objid):
            raise ValueError(f"{self.folder}: index.faiss holds {self.index.ntotal} vectors, vectors.npy "
                             f"{len(self.vectors)} and objid.npy {len(self.objid)} objIDs")
        self.exact = isinstance(self.index, faiss.IndexFlat)
        self.row = pd.Series(np.arange(len(self.objid)), index=self.objid)

    def describe(self) -> str:
        """What was searched: 'exact (N objects)' or 'approximate (IVF-PQ, ...)'."""
        if self.exact:
            return f"exact search over {self.index.ntotal} objects"
        import faiss

        ivf = faiss.extract_index_ivf(self.index)
        return (f"approximate search over {self.index.ntotal} objects (FAISS IVF-PQ, {ivf.nlist} cells, "
                f"{ivf.nprobe} scanned per query, candidates re-ranked exactly)")

    def neighbours_of_vector(self, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(objIDs, cosine similarities) of the ``k`` nearest objects to ``v``, nearest first."""
        v = normalise(np.atleast_2d(v))
        k = min(k, len(self.objid))
        if self.exact:
            sim, idx = self.index.search(v, k)
            return self.objid[idx[0]], sim[0]
        _, idx = self.index.search(v, min(len(self.objid), RERANK * k))
        rows = np.unique(idx[0][idx[0] >= 0])  # sorted: the memory map reads in file order
        sim = np.asarray(self.vectors[rows]) @ v[0]
        best = np.argsort(-sim, kind="stable")[:k]
        return self.objid[rows[best]], sim[best]

    def vector(self, objid: int) -> np.ndarray:
        """The indexed (unit) vector of an object."""
        if objid not in self.row.index:
            raise KeyError(f"objID {objid} is not in the index {self.folder}")
        return np.asarray(self.vectors[self.row[objid]])

    def neighbours(self, objid: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest *other* objects of an indexed object."""
        ids, sim = self.neighbours_of_vector(self.vector(objid), k + 1)
        keep = ids != objid
        return ids[keep][:k], sim[keep][:k]


def query(folder, objid: int, k: int, stamps_index=None, gallery=None) -> pd.DataFrame:
    """The neighbours as a table (rank, objID, similarity, class, r magnitude where the stamp index
    knows them), and a gallery PNG of the object and its neighbours when ``gallery`` is given."""
    index = SimilarityIndex(folder)
    ids, sim = index.neighbours(int(objid), k)
    table = pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "objID": ids, "similarity": sim})
    table.attrs["index"] = index.describe()
    stamps_index = [p for p in path_list(stamps_index) if Path(p).exists()]
    if stamps_index:
        # every indexed object has a usable stamp (the embeddings are of those), read the index once
        idx = usable_index(stamps_index).set_index("objID")
        known = idx.reindex(ids)
        table["class"] = known["class"].fillna("unlabelled").to_numpy() if "class" in idx else "unknown"
        table["r_mag"] = known["dered_r"].to_numpy() if "dered_r" in idx else np.nan
        if gallery is not None:
            write_gallery(int(objid), table, idx, stamps_index, gallery)
    return table


def write_gallery(objid: int, table: pd.DataFrame, usable: pd.DataFrame, stamps_index, out_png) -> None:
    """gri stamps of the query and its neighbours; ``usable`` is the stamp index's usable rows by objID."""
    plt = pyplot()
    ids = np.r_[objid, table["objID"].to_numpy()]
    objs = load_by_objid(stamps_index, ids, index=usable)
    n = len(ids)
    cols = min(n, 7)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_frame_on(False)
            continue
        ax.imshow(stamp_rgb(objs.stamps[k]), origin="lower")
        if k == 0:
            ax.set_title(f"query\n{objs.classes[0] or 'unlabelled'}", fontsize=6, color="crimson")
        else:
            r = table.iloc[k - 1]
            ax.set_title(f"#{k} {r.get('class', '')}\ncos {r['similarity']:.3f}", fontsize=6)
    fig.suptitle(f"objID {objid} and its {n - 1} nearest neighbours (gri)", fontsize=8)
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, out_png, dpi=110)
