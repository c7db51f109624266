"""Adapter: rule conformal -> sdssclr.results.coverage.write_conformal_report."""

from sdssclr.results.coverage import write_conformal_report
from sdssclr.io import log_to

with log_to(snakemake.log[0]):
    write_conformal_report(
        snakemake.input,
        snakemake.output.table,
        snakemake.output.plot,
        models=snakemake.params.models,
        alpha=snakemake.params.alpha,
        mondrian=snakemake.params.mondrian,
        n_bins=snakemake.params.n_bins,
    )
