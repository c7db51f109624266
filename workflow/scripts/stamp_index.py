"""Adapter: rule stamp_index -> sdssclr.stamps.shards.merge_index."""

from sdssclr.io import log_to
from sdssclr.stamps.shards import merge_index

with log_to(snakemake.log[0]):
    merge_index(snakemake.input.shards, snakemake.input.objects, snakemake.output[0], snakemake.params.labelled)
