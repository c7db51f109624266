"""Adapter: rule confusion_plot -> sdssclr.tables.write_confusion_plot."""

from sdssclr.io import log_to
from sdssclr.tables import write_confusion_plot

with log_to(snakemake.log[0]):
    write_confusion_plot(
        snakemake.input,
        snakemake.output[0],
        experiment=snakemake.wildcards.experiment,
        task=snakemake.wildcards.task,
        models=snakemake.params.models,
    )
