rule pool:
    """Apply a dataset's cuts (the same definitions that render the SQL) to the catalogue, or to
    the objects of its object list."""
    input:
        catalog=CATALOG,
        objid_list=lambda wc: objid_list_of(wc.dataset),
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


rule test_pool:
    """A transfer experiment's test pool from its object list: the listed objects passing its
    test dataset's cuts (experiments.<name>.test_objid_list)."""
    input:
        catalog=CATALOG,
        objid_list=lambda wc: test_objid_list_of(wc.experiment),
    output:
        "results/samples/test_pool_{experiment}.parquet",
    log:
        "results/logs/test_pool_{experiment}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        dataset=lambda wc: config["experiments"][wc.experiment]["test_dataset"],
        cuts=lambda wc: cuts_of(
            config["experiments"][wc.experiment]["test_dataset"], config["cuts"]
        ),
    script:
        "../scripts/pool.py"


rule sample:
    """The objects one experiment draws for one split seed (balanced, train/val/test): what its
    stamps are cut for."""
    input:
        unpack(sample_inputs),
    output:
        "results/samples/split{split}/{experiment}.parquet",
    log:
        "results/logs/sample_{experiment}_split{split}.log",
    # before any training: the objects and stamps every job downstream waits for
    priority: 20
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        experiment=lambda wc: sample_config(wc.experiment),
        per_class=split_per_class,
        seed=lambda wc: int(wc.split),
    script:
        "../scripts/sample.py"


rule split:
    """An experiment's split: its sample with the calibration objects carved out (experiment 3:
    its parent's split and its own test and calibration objects)."""
    input:
        unpack(split_inputs),
    output:
        "results/splits/split{split}/{experiment}.parquet",
    log:
        "results/logs/split_{experiment}_split{split}.log",
    # before any training: the objects and stamps every job downstream waits for
    priority: 20
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        experiment=lambda wc: config["experiments"][wc.experiment],
        seed=lambda wc: int(wc.split),
        calibration_fraction=config["conformal"]["calibration_fraction"],
    script:
        "../scripts/split.py"


rule unlabelled:
    """Unlabelled objects of a dataset's regime in the fields of its labelled sample (photometric
    cuts), for one split seed."""
    input:
        photometric=photometric_objects,
        catalog=CATALOG,
        samples=lambda wc: samples_of(GRAPH.field_experiments(wc.dataset), [wc.split]),
    output:
        "results/samples/split{split}/unlabelled_{dataset}.parquet",
    log:
        "results/logs/unlabelled_{dataset}_split{split}.log",
    # before any training: the objects and stamps every job downstream waits for
    priority: 20
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        cuts=lambda wildcards: cuts_of(wildcards.dataset, config["cuts"]),
        unlabelled=config["unlabelled"],
    script:
        "../scripts/unlabelled.py"
