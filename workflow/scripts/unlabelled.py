"""Adapter: rule unlabelled -> sdssclr.samples.unlabelled.write_unlabelled."""

from sdssclr.io import log_to
from sdssclr.samples.unlabelled import write_unlabelled

with log_to(snakemake.log[0]):
    write_unlabelled(
        snakemake.input.photometric,
        snakemake.input.catalog,
        snakemake.input.samples,
        snakemake.wildcards.dataset,
        snakemake.params.cuts,
        snakemake.params.unlabelled["per_field"],
        snakemake.params.unlabelled["seed"],
        snakemake.output[0],
    )
