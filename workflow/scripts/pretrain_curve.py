"""Adapter: rule pretrain_curve_plot -> sdssclr.results.figures.plot_pretrain_curve."""

from sdssclr.results.figures import plot_pretrain_curve
from sdssclr.io import log_to

with log_to(snakemake.log[0]):
    wc = snakemake.wildcards
    plot_pretrain_curve(snakemake.input[0], snakemake.output[0], f"SimCLR on {wc.dataset}, seed {wc.seed}",
                        snakemake.params.source)
