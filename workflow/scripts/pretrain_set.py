"""Adapter: rule pretrain_set -> sdssclr.samples.pretraining_set.write_pretraining_set."""

from sdssclr.io import log_to
from sdssclr.samples.pretraining_set import write_pretraining_set

with log_to(snakemake.log[0]):
    inputs = dict(snakemake.input.items())
    write_pretraining_set(
        snakemake.wildcards.dataset,
        snakemake.params.experiments,
        {k[len("split_"):]: v for k, v in inputs.items() if k.startswith("split_")},
        {k[len("unlabelled_"):]: v for k, v in inputs.items() if k.startswith("unlabelled_")},
        list(snakemake.input.index),
        snakemake.wildcards.objects,
        snakemake.output[0],
    )
