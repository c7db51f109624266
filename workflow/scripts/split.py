"""Adapter: rule split -> sdssclr.samples.splits.write_split."""

from sdssclr.io import log_to
from sdssclr.samples.splits import write_split

with log_to(snakemake.log[0]):
    write_split(
        snakemake.wildcards.experiment,
        snakemake.params.experiment,
        snakemake.params.seed,
        snakemake.output[0],
        sample_path=snakemake.input.sample,
        parent_path=snakemake.input.get("parent"),
        calibration_fraction=snakemake.params.calibration_fraction,
    )
