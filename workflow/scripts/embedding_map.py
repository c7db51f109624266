"""Adapter: rule embedding_map -> sdssclr.results.figures.plot_embedding_map."""

from sdssclr.results.figures import plot_embedding_map
from sdssclr.io import log_to

with log_to(snakemake.log[0]):
    wc = snakemake.wildcards
    plot_embedding_map(snakemake.input.embeddings, snakemake.input.split, snakemake.output[0],
                       title=f"SimCLR encoder of {wc.dataset}, seed {wc.seed}", seed=int(wc.seed))
