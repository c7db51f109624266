"""Adapter: rules table1 and experiment_table -> sdssclr.results.tables.write_results_table."""

from sdssclr.io import log_to
from sdssclr.results.tables import write_results_table

with log_to(snakemake.log[0]):
    write_results_table(
        snakemake.input.metrics,
        snakemake.output[0],
        experiments=snakemake.params.experiments,
        tasks=snakemake.params.tasks,
        models=snakemake.params.models,
        seeds=snakemake.params.seeds,
        split_seeds=snakemake.params.split_seeds,
        title=snakemake.params.title,
        comparison=snakemake.params.comparison,
    )
