"""Adapter: rule pretrain_set -> sdssclr.pretraining_set.write."""

from sdssclr.io import log_to
from sdssclr.pretraining_set import write

with log_to(snakemake.log[0]):
    inputs = dict(snakemake.input.items())
    write(
        snakemake.wildcards.dataset,
        snakemake.params.experiments,
        {k[len("split_"):]: v for k, v in inputs.items() if k.startswith("split_")},
        {k[len("unlabelled_"):]: v for k, v in inputs.items() if k.startswith("unlabelled_")},
        snakemake.input.index,
        snakemake.params.objects,
        snakemake.output[0],
    )
