"""Adapter: rule similarity_index -> sdssclr.results.similarity.build_index."""

from pathlib import Path

from sdssclr.io import log_to
from sdssclr.results.similarity import build_index

with log_to(snakemake.log[0]):
    build_index(snakemake.input[0], Path(snakemake.output.index).parent)
