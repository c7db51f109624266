"""Adapter: rules train and label_efficiency_run -> sdssclr.learn.supervised.run_training."""

from sdssclr.io import log_to
from sdssclr.learn.supervised import run_training

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
        snakemake.output.predictions,
        encoder_path=snakemake.input.get("encoder"),
        fraction=snakemake.params.fraction,
        min_val_per_class=snakemake.params.min_val_per_class,
        experiment=snakemake.params.experiment,
        # operational, read from the config rather than params so that it never triggers a rerun
        device=snakemake.config["classifiers"]["device"],
        threads=snakemake.threads,
        fail_at_chance=snakemake.config["classifiers"]["fail_at_chance"],
    )
