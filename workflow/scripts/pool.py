"""Adapter: rule pool -> sdssclr.samples.pools.write_pool."""

from sdssclr.io import log_to
from sdssclr.samples.pools import write_pool

with log_to(snakemake.log[0]):
    write_pool(snakemake.input.catalog, snakemake.wildcards.dataset, snakemake.params.cuts, snakemake.output[0])
