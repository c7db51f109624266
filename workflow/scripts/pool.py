"""Adapter: rule pool -> sdssclr.splits.write_pool."""

from sdssclr.io import log_to
from sdssclr.splits import write_pool

with log_to(snakemake.log[0]):
    write_pool(snakemake.input.catalog, snakemake.wildcards.dataset, snakemake.params.cuts, snakemake.output[0])
