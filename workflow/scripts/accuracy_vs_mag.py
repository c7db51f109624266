"""Adapter: rule accuracy_vs_magnitude -> sdssclr.results.figures.plot_accuracy_vs_magnitude."""

from sdssclr.results.figures import plot_accuracy_vs_magnitude
from sdssclr.io import log_to

with log_to(snakemake.log[0]):
    wc = snakemake.wildcards
    plot_accuracy_vs_magnitude(snakemake.input, snakemake.output[0], models=snakemake.params.models,
                               title=f"{wc.experiment} {wc.task}", source=snakemake.params.source)
