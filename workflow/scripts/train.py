"""Adapter: rules train and label_efficiency_run -> sdssclr.supervised.run_training."""

from sdssclr.io import log_to
from sdssclr.supervised import run_training

with log_to(snakemake.log[0]):
    run_training(
        snakemake.input.split,
        snakemake.input.index,
        snakemake.wildcards.model,
        snakemake.wildcards.task,
        int(snakemake.wildcards.seed),
        snakemake.params.cfg,
        snakemake.output.model,
        snakemake.output.metrics,
        encoder_path=snakemake.input.get("encoder"),
        embeddings_path=snakemake.input.get("embeddings"),
        fraction=snakemake.params.fraction,
        experiment=snakemake.wildcards.get("experiment", "exp1"),
        threads=snakemake.threads,
    )
