"""Similarity search over an encoder's embeddings: "show me objects that look like this one".

:func:`build_index` turns a pretraining run's ``embeddings.parquet`` into a saved index folder:
``vectors.npy`` (float32, L2-normalised rows, memory-mapped when queried) and ``objid.npy``.
:func:`query` finds the ``k`` nearest neighbours of an object by cosine similarity with
scikit-learn's exact brute-force :class:`~sklearn.neighbors.NearestNeighbors` (on unit vectors
cosine similarity is a dot product; at a million 512-d objects one query is a ~2 GB scan of
about 0.4 s on 2 cores, see ``benchmarks/similarity.py``). The command line::

    python -m sdssclr similar OBJID --k 20 [--index results/similarity/compact/split2023/seed0]

prints the neighbours with their spectroscopic class where known, and writes a gri stamp gallery.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn.neighbors import NearestNeighbors

from ..io import atomic_path, path_list
from ..learn.runfiles import read_embeddings
from ..stamps.objects import load_by_objid
from ..stamps.shards import usable_index
from .plotting import pyplot, save_png, stamp_rgb

log = logging.getLogger(__name__)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise FloatingPointError("non-finite embedding values")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def save_index(objid: np.ndarray, vectors: np.ndarray, folder) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(np.unique(objid)) != len(objid):
        raise ValueError("duplicate objIDs in the embeddings")
    for name, arr in (("vectors.npy", normalise(vectors)), ("objid.npy", np.asarray(objid, dtype=np.int64))):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)


def build_index(embeddings_path, folder) -> int:
    objid, emb = read_embeddings(embeddings_path)
    save_index(objid, emb, folder)
    log.info("%s: %d objects x %d dimensions", folder, *emb.shape)
    return len(objid)


class SimilarityIndex:
    """A saved index, memory-mapped; :meth:`neighbours` by cosine similarity."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.vectors = np.load(self.folder / "vectors.npy", mmap_mode="r")
        self.objid = np.load(self.folder / "objid.npy")
        self.row = pd.Series(np.arange(len(self.objid)), index=self.objid)
        # Brute force on unit vectors: the squared-Euclidean ranking equals the cosine ranking, and
        # scikit-learn computes it as one chunked matrix product.
        self.nn = NearestNeighbors(algorithm="brute", metric="sqeuclidean").fit(self.vectors)

    def neighbours_of_vector(self, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(objIDs, cosine similarities) of the ``k`` nearest objects to ``v``, nearest first."""
        v = normalise(np.atleast_2d(v))
        dist, idx = self.nn.kneighbors(v, n_neighbors=min(k, len(self.objid)))
        return self.objid[idx[0]], 1.0 - dist[0] / 2.0  # |a - b|^2 = 2 - 2 cos on unit vectors

    def neighbours(self, objid: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest *other* objects of an indexed object."""
        if objid not in self.row.index:
            raise KeyError(f"objID {objid} is not in the index {self.folder}")
        ids, sim = self.neighbours_of_vector(np.asarray(self.vectors[self.row[objid]]), k + 1)
        keep = ids != objid
        return ids[keep][:k], sim[keep][:k]


def query(folder, objid: int, k: int, stamps_index=None, gallery=None) -> pd.DataFrame:
    """The neighbours as a table (rank, objID, similarity, class, r magnitude where the stamp index
    knows them), and a gallery PNG of the object and its neighbours when ``gallery`` is given."""
    ids, sim = SimilarityIndex(folder).neighbours(int(objid), k)
    table = pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "objID": ids, "similarity": sim})
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
