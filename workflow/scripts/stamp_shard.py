"""Adapter: rule stamp_shard -> sdssclr.stamps.run_shard."""

from sdssclr.io import log_to
from sdssclr.stamps import LocalFrames, run_shard

with log_to(snakemake.log[0]):
    run_shard(
        snakemake.input.plan,
        int(snakemake.wildcards.shard),
        LocalFrames(snakemake.input.frames),
        snakemake.output.stamps,
        snakemake.output.index,
        size=snakemake.params.size,
        policy=snakemake.params.policy,
        threads=snakemake.threads,
    )
