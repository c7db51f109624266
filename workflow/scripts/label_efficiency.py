"""Adapter: rule label_efficiency -> sdssclr.results.tables (table) and sdssclr.results.figures (plot)."""

from sdssclr.io import log_to
from sdssclr.results.figures import plot_label_efficiency
from sdssclr.results.tables import label_efficiency_summary, write_label_efficiency_table

with log_to(snakemake.log[0]):
    le = snakemake.params.le
    comparison = snakemake.params.comparison
    summary, source = label_efficiency_summary(
        snakemake.input.metrics,
        models=le["models"],
        fractions=le["fractions"],
        seeds=snakemake.params.seeds,
        split_seeds=snakemake.params.split_seeds,
        comparison=comparison,
    )
    common = dict(
        experiment=le["experiment"],
        models=le["models"],
        task=le["task"],
        comparison=comparison,
    )
    write_label_efficiency_table(
        summary,
        source,
        snakemake.output.table,
        fractions=le["fractions"],
        seeds=snakemake.params.seeds,
        split_seeds=snakemake.params.split_seeds,
        **common,
    )
    plot_label_efficiency(summary, source, snakemake.output.plot, **common)
