"""Adapter: rule label_efficiency -> sdssclr.tables.write_label_efficiency."""

from sdssclr.io import log_to
from sdssclr.tables import write_label_efficiency

with log_to(snakemake.log[0]):
    le = snakemake.params.le
    write_label_efficiency(
        snakemake.input.metrics,
        snakemake.output.table,
        snakemake.output.plot,
        models=le["models"],
        fractions=le["fractions"],
        seeds=snakemake.params.seeds,
        task=le["task"],
        comparison=snakemake.params.comparison,
    )
