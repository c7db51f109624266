"""The files a run leaves for the tables and figures, written and read without torch.

- ``predictions.parquet`` of a training or evaluation run: one row per test and calibration
  object with objID, true class, split, dereddened r and ``{row}.p_{CLASS}`` for every table row
  of the run (the model and its components), so tables compare models object by object.
- ``embeddings.parquet`` of a pretraining run: objID and the encoder's embedding of every usable
  stamp (a fixed-size list column).
``metrics.json`` is plain JSON (:func:`sdssclr.io.write_json_atomic`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import FEATURES
from ..io import atomic_path, write_parquet_atomic

if TYPE_CHECKING:  # the stamps (and astropy behind them) only for the annotation
    from ..stamps.objects import Objects


def write_predictions(path, objs: Objects, probas: dict[str, np.ndarray], classes, metadata: dict) -> pd.DataFrame:
    """One row per object: objID, true class, split (test or calib), dereddened r magnitude, and
    ``{row}.p_{CLASS}`` for every model row."""
    cols = {"objID": objs.objid, "class": objs.classes, "split": objs.split,
            "r_mag": objs.features[:, FEATURES.index("dered_r")]}
    for name, p in probas.items():
        for k, c in enumerate(classes):
            cols[f"{name}.p_{c}"] = p[:, k].astype(np.float32)
    df = pd.DataFrame(cols)
    write_parquet_atomic(df, path, metadata)
    return df


def read_predictions(path, row: str, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(objID, true label index, predicted label index) of one table row on the test objects of a
    predictions file."""
    df = pd.read_parquet(path)
    df = df[df["split"] == "test"]
    cols = [f"{row}.p_{c}" for c in classes]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{path}: no predictions for {row!r} (missing columns {missing})")
    lookup = {c: i for i, c in enumerate(classes)}
    return (df["objID"].to_numpy(np.int64), df["class"].map(lookup).to_numpy(np.int64),
            df[cols].to_numpy().argmax(1))


def write_embeddings(objid, emb: np.ndarray, path, metadata: dict) -> None:
    """Embeddings (N, d) of objects ``objid`` as Parquet, with ``metadata`` in the file."""
    d = emb.shape[1]
    table = pa.table({"objID": pa.array(objid, pa.int64()),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), pa.float32()), d)})
    table = table.replace_schema_metadata({k: str(v) for k, v in metadata.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_embeddings(path) -> tuple[np.ndarray, np.ndarray]:
    """(objID, embeddings (N, d)) of a file written by :func:`write_embeddings`."""
    table = pq.read_table(path)
    col = table.column("embedding").combine_chunks()
    d = col.type.list_size
    return table.column("objID").to_numpy(), col.flatten().to_numpy().reshape(-1, d)
