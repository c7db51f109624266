"""Adapter: rule synthetic_survey -> sdssclr.survey.synthetic.generate_survey."""

from sdssclr.io import log_to
from sdssclr.survey.synthetic import generate_survey

with log_to(snakemake.log[0]):
    generate_survey(
        snakemake.output.catalog,
        snakemake.output.frames,
        truth_path=snakemake.output.truth,
        photometric_path=snakemake.output.photometric,
        threads=snakemake.threads,
        **snakemake.params.synthetic,
    )
