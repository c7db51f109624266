"""Adapter: rules pool and test_pool -> sdssclr.samples.pools.write_pool."""

from sdssclr.io import log_to
from sdssclr.samples.pools import write_pool

with log_to(snakemake.log[0]):
    dataset = snakemake.params.get("dataset") or snakemake.wildcards.dataset
    write_pool(snakemake.input.catalog, dataset, snakemake.params.cuts, snakemake.output[0],
               objid_list=snakemake.input.get("objid_list") or None,
               what=f"{snakemake.wildcards.experiment} test" if "experiment" in snakemake.wildcards.keys() else None)
