"""Adapter: rule sdss_catalog -> sdssclr.sdss.write_catalog (compact cuts, every class)."""

from sdssclr.cuts import dataset_cuts
from sdssclr.io import log_to
from sdssclr.sdss import write_catalog

with log_to(snakemake.log[0]):
    # The faint+compact pool is a subset of the compact pool: one pull serves both datasets.
    write_catalog(snakemake.output[0], snakemake.params.survey, dataset_cuts("compact", snakemake.params.cuts))
