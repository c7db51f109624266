"""Adapter: rule sample -> sdssclr.samples.splits.write_sample."""

from sdssclr.io import log_to
from sdssclr.samples.splits import write_sample

with log_to(snakemake.log[0]):
    write_sample(
        snakemake.wildcards.experiment,
        snakemake.params.experiment,
        snakemake.params.per_class,
        snakemake.params.seed,
        snakemake.output[0],
        pool_path=snakemake.input.pool,
        parent_sample_path=snakemake.input.get("parent"),
    )
