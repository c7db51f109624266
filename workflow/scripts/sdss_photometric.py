"""Adapter: rule sdss_photometric -> sdssclr.samples.unlabelled.write_photometric."""

from sdssclr.io import log_to
from sdssclr.samples.unlabelled import write_photometric

with log_to(snakemake.log[0]):
    # timeouts, retries and throttle are operational: from the config, not params
    survey = dict(snakemake.config["survey"], data_release=snakemake.params.data_release)
    write_photometric(
        snakemake.output[0],
        survey,
        snakemake.input.samples,
        snakemake.params.cuts,
        snakemake.params.unlabelled,
        export=snakemake.input.export or None,
    )
