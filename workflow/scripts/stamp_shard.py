"""Adapter: rule stamp_shard -> sdssclr.stamps.run_shard."""

from sdssclr.io import log_to
from sdssclr.sdss import frame_source
from sdssclr.stamps import run_shard

with log_to(snakemake.log[0]):
    run_shard(
        snakemake.input.plan,
        int(snakemake.wildcards.shard),
        frame_source(snakemake.params.survey, snakemake.params.synthetic_root),
        snakemake.output.stamps,
        snakemake.output.index,
        size=snakemake.params.size,
        policy=snakemake.params.policy,
        threads=snakemake.threads,
    )
