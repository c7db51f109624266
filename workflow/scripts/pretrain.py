"""Adapter: rule pretrain -> sdssclr.learn.pretrain.run (torchrun when the job has several GPUs)."""

from sdssclr.io import log_to
from sdssclr.learn.pretrain import OPERATIONAL_KEYS, run

with log_to(snakemake.log[0]):
    run(
        dict(
            split_path=snakemake.input.split,
            objects_path=snakemake.input.objects,
            index_paths=list(snakemake.input.index),
            out_encoder=snakemake.output.encoder,
            out_curve=snakemake.output.curve,
            out_embeddings=snakemake.output.embeddings,
            # device, batch size of the embedding pass, GPUs and checkpoint interval are operational:
            # from the config, not params, so that changing them never reruns pretraining
            cfg=snakemake.params.cfg | {k: snakemake.config["pretrain"][k] for k in OPERATIONAL_KEYS},
            seed=int(snakemake.wildcards.seed),
            threads=snakemake.threads,
        ),
        gpus=int(snakemake.resources.get("gpu", 0)),
    )
