rule pool:
    """Apply a dataset's cuts (the same definitions that render the SQL) to the catalogue."""
    input:
        catalog=CATALOG,
    output:
        "results/samples/pool_{dataset}.parquet",
    log:
        "results/logs/pool_{dataset}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        cuts=lambda wildcards: cuts_of(wildcards.dataset, config["cuts"]),
    script:
        "../scripts/pool.py"


rule split:
    """Balanced undersampling and train/val/test split of one experiment."""
    input:
        unpack(split_inputs),
    output:
        "results/splits/split{split}/{experiment}.parquet",
    log:
        "results/logs/split_{experiment}_split{split}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        experiment=lambda wc: config["experiments"][wc.experiment],
        per_class=split_per_class,
        seed=lambda wc: int(wc.split),
        calibration_fraction=config["conformal"]["calibration_fraction"],
    script:
        "../scripts/split.py"


rule unlabelled:
    """Unlabelled objects of a dataset's regime in the labelled sample's fields (photometric cuts)."""
    input:
        photometric=PHOTOMETRIC,
        catalog=CATALOG,
        splits=splits_of(EXPERIMENTS),
    output:
        "results/samples/unlabelled_{dataset}.parquet",
    log:
        "results/logs/unlabelled_{dataset}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        cuts=lambda wildcards: cuts_of(wildcards.dataset, config["cuts"]),
        unlabelled=config["unlabelled"],
    script:
        "../scripts/unlabelled.py"
