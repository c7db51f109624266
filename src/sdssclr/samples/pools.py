"""The pool of each dataset: the catalogue objects passing the dataset's cuts.

The cuts themselves are defined in :mod:`sdssclr.samples.cuts` (one definition for the SQL and
the local filter); here they are applied to the catalogue, with a cut report and the pool sizes
next to the paper's in the log.
"""

from __future__ import annotations

import logging

import pandas as pd

from ..catalog import OBJECT_CLASSES, check_columns
from ..io import data_source, write_parquet_atomic
from .cuts import apply_cuts, cut_report, dataset_cuts
from .object_lists import listed_pool, read_objid_list

log = logging.getLogger(__name__)


#: Pool sizes after the cuts reported by Chaini et al. 2023 for DR16 (STAR, GALAXY, QSO).
PAPER_POOL_SIZES = {"compact": {"STAR": 173_813, "GALAXY": 80_779, "QSO": 527_922},
                    "faint_compact": {"STAR": 55_323, "GALAXY": 74_503, "QSO": 382_899}}


def write_pool(catalog_path, dataset: str, cuts_config: dict, out, objid_list=None, what: str | None = None
               ) -> pd.DataFrame:
    """Apply ``dataset``'s cuts to the catalogue, or to the objects of ``objid_list`` in it
    (:mod:`sdssclr.samples.object_lists`); log the cut report and pool sizes vs the paper."""
    source = data_source(catalog_path)
    catalog = pd.read_parquet(catalog_path)
    check_columns(catalog, source=str(catalog_path))
    cuts = dataset_cuts(dataset, cuts_config)
    what = what or dataset
    if objid_list:
        pool = listed_pool(catalog, read_objid_list(objid_list), cuts, f"{what} (list {objid_list})")
        pool = pool.reset_index(drop=True)
    else:
        log.info("cuts for %s (source: %s), in order:\n%s", what, source,
                 cut_report(catalog, cuts).to_string(index=False))
        pool = catalog[apply_cuts(catalog, cuts)].reset_index(drop=True)
    sizes = pool["class"].value_counts().reindex(OBJECT_CLASSES, fill_value=0)
    for cls in OBJECT_CLASSES:
        log.info("%s pool: %-6s %9d (paper, DR16: %d)", what, cls, sizes[cls], PAPER_POOL_SIZES[dataset][cls])
    write_parquet_atomic(pool, out, {"source": source, "dataset": dataset,
                                     "objid_list": str(objid_list) if objid_list else ""})
    return pool
