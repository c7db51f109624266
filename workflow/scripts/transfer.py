"""Adapter: rule transfer -> sdssclr.supervised.evaluate_run (no retraining)."""

from sdssclr.io import log_to
from sdssclr.supervised import evaluate_run

with log_to(snakemake.log[0]):
    evaluate_run(
        snakemake.input.model,
        snakemake.input.split,
        snakemake.input.index,
        snakemake.output.metrics,
        embeddings_path=snakemake.input.embeddings,
        model_name=snakemake.wildcards.model,
        experiment=snakemake.wildcards.experiment,
    )
