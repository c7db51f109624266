"""Adapter: rule stamp_plan -> sdssclr.stamps.shards.write_plan."""

from sdssclr.io import log_to
from sdssclr.stamps.shards import write_plan

with log_to(snakemake.log[0]):
    # where frames come from is operational: read from the config, so it never reruns the plan
    survey = snakemake.config["survey"]
    streamed = survey["source"] == "sdss" and not survey["frames_dir"]
    write_plan(snakemake.input.objects, snakemake.params.n_shards, snakemake.output[0], snakemake.params.labelled,
               streamed=streamed)
