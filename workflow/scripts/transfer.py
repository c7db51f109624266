"""Adapter: rule transfer -> sdssclr.learn.supervised.evaluate_run (no retraining)."""

from sdssclr.io import log_to
from sdssclr.learn.supervised import evaluate_run

with log_to(snakemake.log[0]):
    evaluate_run(
        snakemake.input.model,
        snakemake.input.split,
        snakemake.input.index,
        snakemake.output.metrics,
        snakemake.output.predictions,
        experiment=snakemake.wildcards.experiment,
        device=snakemake.config["classifiers"]["device"],
        pretraining=snakemake.input.get("pretraining"),
    )
