"""Adapter: rule stamp_plan -> sdssclr.stamps.shards.write_plan."""

from sdssclr.io import log_to
from sdssclr.stamps.shards import write_plan

with log_to(snakemake.log[0]):
    write_plan(snakemake.input.objects, snakemake.params.n_shards, snakemake.output[0], snakemake.params.labelled)
