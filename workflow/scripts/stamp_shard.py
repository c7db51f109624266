"""Adapter: rule stamp_shard -> sdssclr.stamps.shards.run_shard (frames from sdssclr.survey.fetch.frame_source)."""

from sdssclr.io import log_to
from sdssclr.survey.fetch import frame_source
from sdssclr.stamps.shards import run_shard

with log_to(snakemake.log[0]):
    # where and how frames are fetched (mirror, archive URL, timeouts, parallelism, kept files) is
    # operational: read from the config, not from params, so that changing it never reruns a shard
    survey = dict(snakemake.config["survey"], source=snakemake.params.source,
                  data_release=snakemake.params.data_release)
    run_shard(
        snakemake.input.plan,
        int(snakemake.wildcards.shard),
        frame_source(survey, snakemake.input.frames or None),
        snakemake.output.stamps,
        snakemake.output.index,
        size=snakemake.params.size,
        policy=snakemake.params.policy,
        # a tolerance, not part of what a finished shard holds: from the config, so raising it after
        # a failure reruns only the shards that failed (their cut fields are kept)
        max_missing_fraction=snakemake.config["stamps"]["max_missing_fraction"],
        threads=snakemake.threads,
    )
