rule pretrain_set:
    """The objects one encoder pretrains on ('all': labelled training + unlabelled; 'labelled':
    labelled training only), never a test object."""
    input:
        unpack(pretrain_set_inputs),
        index=lambda wc: encoder_stamps(wc.dataset, wc.split, wc.objects),
    output:
        "results/pretrain/{dataset}/split{split}/{objects}/objects.parquet",
    log:
        "results/logs/pretrain_set_{dataset}_split{split}_{objects}.log",
    priority: 10
    conda:
        "../../envs/data.yaml"
    params:
        experiments=experiment_structure(),
    script:
        "../scripts/pretrain_set.py"


rule pretrain:
    """SimCLR on one dataset's pretraining set for one seed (GPU; resumes from its checkpoint)."""
    input:
        objects=rules.pretrain_set.output[0],
        split=pretrain_split,
        index=lambda wc: encoder_stamps(wc.dataset, wc.split, wc.objects),
        stamps=lambda wc: stamp_files(encoder_stamps(wc.dataset, wc.split, wc.objects)),
    output:
        encoder="results/pretrain/{dataset}/split{split}/{objects}/seed{seed}/encoder.pt",
        curve="results/pretrain/{dataset}/split{split}/{objects}/seed{seed}/curve.tsv",
        embeddings="results/pretrain/{dataset}/split{split}/{objects}/seed{seed}/embeddings.parquet",
    log:
        "results/logs/pretrain_{dataset}_split{split}_{objects}_seed{seed}.log",
    benchmark:
        "results/benchmarks/pretrain_{dataset}_split{split}_{objects}_seed{seed}.tsv"
    # first among ready jobs: every pretrained model waits for its encoder
    priority: 10
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        gpu=config["pretrain"]["gpus"],
        mem_mb=32000,
        runtime=1440,
    params:
        cfg=pretrain_science(),
    script:
        "../scripts/pretrain.py"
