"""Adapter: rule pretrain -> sdssclr.pretrain.run (torchrun when the job has several GPUs)."""

from sdssclr.io import log_to
from sdssclr.pretrain import run

with log_to(snakemake.log[0]):
    run(
        dict(
            split_path=snakemake.input.split,
            index_path=snakemake.input.index,
            out_encoder=snakemake.output.encoder,
            out_curve=snakemake.output.curve,
            out_embeddings=snakemake.output.embeddings,
            cfg=snakemake.params.cfg,
            seed=int(snakemake.wildcards.seed),
            threads=snakemake.threads,
        ),
        gpus=int(snakemake.resources.get("gpu", 0)),
    )
