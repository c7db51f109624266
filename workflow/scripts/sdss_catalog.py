"""Adapter: rule sdss_catalog -> sdssclr.survey.skyserver.write_catalog (compact cuts, every class)."""

from sdssclr.io import log_to
from sdssclr.samples.cuts import dataset_cuts, where_clause
from sdssclr.survey.skyserver import write_catalog

with log_to(snakemake.log[0]):
    # timeouts, retries, throttle and page size are operational: read from the config, not from
    # params, so that changing them never pulls the catalogue again
    survey = dict(snakemake.config["survey"], data_release=snakemake.params.data_release,
                  catalog_file=snakemake.input[0] if snakemake.input else None)
    # The faint+compact pool is a subset of the compact pool: one pull serves both datasets.
    write_catalog(snakemake.output[0], survey, where_clause(dataset_cuts("compact", snakemake.params.cuts)))
