"""Adapter: rule confusion_plot -> sdssclr.results.figures.plot_confusion."""

from sdssclr.io import log_to
from sdssclr.results.figures import plot_confusion

with log_to(snakemake.log[0]):
    plot_confusion(
        snakemake.input,
        snakemake.output[0],
        experiment=snakemake.wildcards.experiment,
        task=snakemake.wildcards.task,
        models=snakemake.params.models,
    )
