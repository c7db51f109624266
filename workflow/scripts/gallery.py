"""Adapter: rule gallery -> sdssclr.results.figures.plot_gallery."""

from sdssclr.results.figures import plot_gallery
from sdssclr.io import log_to

with log_to(snakemake.log[0]):
    wc = snakemake.wildcards
    plot_gallery(snakemake.input.predictions, snakemake.input.metrics, snakemake.input.index, snakemake.output[0],
                 models=snakemake.params.models, baseline=snakemake.params.baseline, task=wc.task,
                 title=f"{wc.experiment} {wc.task}", source=snakemake.params.source)
