rule stamp_plan:
    """Manifest of one stamp set (an experiment's sample, or a dataset's unlabelled objects), whole
    fields assigned to a fixed number of shards."""
    input:
        objects=stamp_plan_objects,
    output:
        "results/stamps/split{split}/{stampset}/plan.parquet",
    log:
        "results/logs/stamp_plan_{stampset}_split{split}.log",
    # before any training: the objects and stamps every job downstream waits for
    priority: 20
    conda:
        "../../envs/data.yaml"
    params:
        n_shards=N_SHARDS,
        labelled=lambda wc: wc.stampset in EXPERIMENTS,
    script:
        "../scripts/stamp_plan.py"


rule stamp_shard:
    """Cut one shard's stamps field by field through each band's WCS (SDSS frames streamed)."""
    input:
        plan=rules.stamp_plan.output[0],
        frames=FRAMES,
    output:
        stamps="results/stamps/split{split}/{stampset}/shard-{shard}.npy",
        index="results/stamps/split{split}/{stampset}/shard-{shard}.parquet",
    log:
        "results/logs/stamp_shard_{stampset}_split{split}_{shard}.log",
    benchmark:
        "results/benchmarks/stamp_shard_{stampset}_split{split}_{shard}.tsv"
    # before any training: the objects and stamps every job downstream waits for
    priority: 20
    localrule: downloads_on_submit_host()
    conda:
        "../../envs/data.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        size=config["stamps"]["size"],
        policy=config["stamps"]["policy"],
        source=SOURCE,
        data_release=config["survey"]["data_release"],
    script:
        "../scripts/stamp_shard.py"


rule stamp_index:
    """The Parquet index of one stamp set over its shards (each checked against its stamps), with
    its objects' catalogue columns and the stamp flags."""
    input:
        shards=expand(
            "results/stamps/split{{split}}/{{stampset}}/shard-{shard}.parquet",
            shard=[f"{k:04d}" for k in range(N_SHARDS)],
        ),
        # the stamps the index points into (checked; a missing shard is cut again)
        stamps=expand(
            "results/stamps/split{{split}}/{{stampset}}/shard-{shard}.npy",
            shard=[f"{k:04d}" for k in range(N_SHARDS)],
        ),
        # the columns of the objects the set was cut for (catalogue or photometric)
        objects=stamp_plan_objects,
    output:
        "results/stamps/split{split}/{stampset}/index.parquet",
    log:
        "results/logs/stamp_index_{stampset}_split{split}.log",
    # before any training: the objects and stamps every job downstream waits for
    priority: 20
    conda:
        "../../envs/data.yaml"
    params:
        labelled=lambda wc: wc.stampset in EXPERIMENTS,
    script:
        "../scripts/stamp_index.py"
