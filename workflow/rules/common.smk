from pathlib import Path

from sdssclr.config import validate
from sdssclr.workflow import export_package_path

# A bad config stops here, before any job is scheduled, with the offending key named.
validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# Workflow scripts import the sdssclr package from this checkout, also inside conda envs.
export_package_path(str(Path(workflow.basedir) / "src"))

EXPERIMENTS = list(config["experiments"])
DATASETS = list(config["datasets"])
N_SHARDS = config["stamps"]["n_shards"]
SOURCE = config["survey"]["source"]


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    dataset="|".join(DATASETS),
    shard=r"\d{4}",
    seed=r"\d+",


def catalog_path():
    return "results/survey/catalog.parquet"


def frames_root():
    """Root of the synthetic survey's photoObj/frames tree."""
    return "results/survey/frames"


def frames_input():
    """Frames the stamp jobs depend on: the synthetic tree; SDSS frames are read from
    survey.frames_dir or downloaded by the stamp jobs themselves (streamed)."""
    return frames_root() if SOURCE == "synthetic" else []


def downloads_on_submit_host():
    """Downloading stamp jobs run on the submit host when compute nodes have no internet."""
    survey = config["survey"]
    return (
        SOURCE == "sdss"
        and not survey["frames_dir"]
        and survey["download_on_submit_host"]
    )


def catalog_file_input():
    return config["survey"]["catalog_file"] or []


def split_inputs(wildcards):
    """Inputs of an experiment's split: its dataset pool, or its parent's split and the test pool."""
    exp = config["experiments"][wildcards.experiment]
    if "dataset" in exp:
        return {"pool": f"results/samples/pool_{exp['dataset']}.parquet"}
    return {
        "pool": f"results/samples/pool_{exp['test_dataset']}.parquet",
        "parent": f"results/splits/{exp['train_from']}.parquet",
    }


def pretrain_datasets():
    """Datasets that some experiment trains on (exp3 reuses exp1's, so no pretraining of its own)."""
    return sorted(
        {e["dataset"] for e in config["experiments"].values() if "dataset" in e}
    )


def pretrain_split(wildcards):
    """The split whose training objects pretrain the encoder of a dataset."""
    owners = [
        n
        for n, e in config["experiments"].items()
        if e.get("dataset") == wildcards.dataset
    ]
    return f"results/splits/{owners[0]}.parquet"


def shard_ids():
    return [f"{k:04d}" for k in range(N_SHARDS)]
