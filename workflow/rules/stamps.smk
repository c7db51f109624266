rule stamp_plan:
    """Manifest of every object to cut, whole fields assigned to a fixed number of shards."""
    input:
        splits=splits_of(EXPERIMENTS),
        unlabelled=unlabelled_pools(),
    output:
        "results/stamps/plan.parquet",
    log:
        "results/logs/stamp_plan.log",
    conda:
        "../../envs/data.yaml"
    params:
        n_shards=N_SHARDS,
    script:
        "../scripts/stamp_plan.py"


rule stamp_shard:
    """Cut one shard's stamps field by field through each band's WCS (SDSS frames streamed)."""
    input:
        plan=rules.stamp_plan.output[0],
        frames=FRAMES,
    output:
        stamps="results/stamps/shard-{shard}.npy",
        index="results/stamps/shard-{shard}.parquet",
    log:
        "results/logs/stamp_shard_{shard}.log",
    benchmark:
        "results/benchmarks/stamp_shard_{shard}.tsv"
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
    """One Parquet index over all shards (each checked against its stamps), with the catalogue
    columns and the stamp flags."""
    input:
        shards=expand(
            rules.stamp_shard.output.index, shard=[f"{k:04d}" for k in range(N_SHARDS)]
        ),
        # the stamps the index points into (checked; a missing shard is cut again)
        stamps=expand(
            rules.stamp_shard.output.stamps,
            shard=[f"{k:04d}" for k in range(N_SHARDS)],
        ),
        catalog=CATALOG,
        photometric=PHOTOMETRIC,
    output:
        "results/stamps/index.parquet",
    log:
        "results/logs/stamp_index.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/stamp_index.py"
