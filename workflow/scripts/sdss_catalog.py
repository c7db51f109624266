"""Adapter: rule sdss_catalog -> sdssclr.survey.skyserver.write_catalog (compact cuts, every class,
and the objects of the object lists)."""

from sdssclr.io import log_to
from sdssclr.samples.cuts import dataset_cuts, where_clause
from sdssclr.samples.object_lists import read_objid_list
from sdssclr.survey.skyserver import write_catalog

with log_to(snakemake.log[0]):
    # timeouts, retries, throttle and page size are operational: read from the config, not from
    # params, so that changing them never pulls the catalogue again
    survey = dict(snakemake.config["survey"], data_release=snakemake.params.data_release,
                  catalog_file=snakemake.input.export or None)
    listed = [read_objid_list(p)["objID"] for p in snakemake.input.objid_lists]
    # The faint+compact pool is a subset of the compact pool: one pull serves both datasets.
    write_catalog(snakemake.output[0], survey, where_clause(dataset_cuts("compact", snakemake.params.cuts)),
                  listed=listed, pool_query=snakemake.params.pool_query)
