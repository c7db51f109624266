"""Adapter: rule predict -> sdssclr.learn.predict.predict_survey."""

from sdssclr.io import log_to
from sdssclr.learn.predict import predict_survey

with log_to(snakemake.log[0]):
    predict_survey(
        snakemake.input.models,
        snakemake.input.split,
        snakemake.input.index,
        snakemake.output[0],
        alpha=snakemake.params.alpha,
        mondrian=snakemake.params.mondrian,
        # operational, read from the config rather than params so that it never triggers a rerun
        device=snakemake.config["classifiers"]["device"],
        threads=snakemake.threads,
    )
