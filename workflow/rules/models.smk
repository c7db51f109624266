rule train:
    """Train one model for one experiment, task and seed; evaluate it on the experiment's test split."""
    input:
        unpack(train_inputs),
    output:
        model="results/runs/{experiment}/{task}/{model}/split{split}/seed{seed}/model.pt",
        metrics="results/runs/{experiment}/{task}/{model}/split{split}/seed{seed}/metrics.json",
        predictions="results/runs/{experiment}/{task}/{model}/split{split}/seed{seed}/predictions.parquet",
    log:
        "results/logs/train_{experiment}_{task}_{model}_split{split}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_{experiment}_{task}_{model}_split{split}_seed{seed}.tsv"
    wildcard_constraints:
        experiment="|".join(OWN_EXPERIMENTS),
    conda:
        "../../envs/torch.yaml"
    threads: 4
    resources:
        gpu=model_gpus,
        mem_mb=32000,
        runtime=720,
    params:
        cfg=model_config,
        experiment=lambda wildcards: wildcards.experiment,
        fraction=1.0,
        min_val_per_class=1,
    script:
        "../scripts/train.py"


rule transfer:
    """Experiment 3: the parent experiment's trained model on faint+compact test objects."""
    input:
        unpack(transfer_inputs),
    output:
        metrics="results/runs/{experiment}/{task}/{model}/split{split}/seed{seed}/metrics.json",
        predictions="results/runs/{experiment}/{task}/{model}/split{split}/seed{seed}/predictions.parquet",
    log:
        "results/logs/transfer_{experiment}_{task}_{model}_split{split}_seed{seed}.log",
    wildcard_constraints:
        experiment="|".join(TRANSFER_EXPERIMENTS) or "^$",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=60,
    script:
        "../scripts/transfer.py"


rule label_efficiency_run:
    """label_efficiency.experiment trained on a stratified fraction of its training and validation labels."""
    input:
        unpack(train_inputs),
    output:
        model="results/label_efficiency/{task}/{model}/frac{frac}/split{split}/seed{seed}/model.pt",
        metrics="results/label_efficiency/{task}/{model}/frac{frac}/split{split}/seed{seed}/metrics.json",
        predictions="results/label_efficiency/{task}/{model}/frac{frac}/split{split}/seed{seed}/predictions.parquet",
    log:
        "results/logs/label_efficiency_{task}_{model}_frac{frac}_split{split}_seed{seed}.log",
    benchmark:
        "results/benchmarks/label_efficiency_{task}_{model}_frac{frac}_split{split}_seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 4
    resources:
        gpu=model_gpus,
        mem_mb=32000,
        runtime=720,
    params:
        cfg=model_config,
        experiment=LE["experiment"],
        fraction=lambda wc: float(wc.frac),
        min_val_per_class=LE["min_val_per_class"],
    script:
        "../scripts/train.py"
