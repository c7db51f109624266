from pathlib import Path

from sdssclr.registry import MODELS as REGISTERED_MODELS, spec
from sdssclr.registry import model_config as registry_model_config
from sdssclr.config import scientific, validate
from sdssclr.pretraining_set import unlabelled_datasets
from sdssclr.workflow import export_package_path

# A bad config stops here, before any job is scheduled, with the offending key named.
validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# Workflow scripts import the sdssclr package from this checkout, also inside conda envs.
export_package_path(str(Path(workflow.basedir) / "src"))

EXPERIMENTS = sorted(config["experiments"])
DATASETS = list(config["datasets"])
N_SHARDS = config["stamps"]["n_shards"]
SOURCE = config["survey"]["source"]


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    dataset="|".join(DATASETS),
    shard=r"\d{4}",
    seed=r"\d+",
    task="SG|SGQ",
    model="|".join(sorted(REGISTERED_MODELS, key=len, reverse=True)),
    frac=r"[0-9.]+",


def catalog_path():
    return "results/survey/catalog.parquet"


def photometric_path():
    """Photometric objects without spectra in the labelled sample's fields (the unlabelled source)."""
    return "results/survey/photometric.parquet"


def photometric_file_input():
    return config["survey"]["photometric_file"] or []


def unlabelled_pools():
    """Unlabelled objects to stamp: those of every pretrained dataset's regime (none if disabled)."""
    if config["unlabelled"]["per_field"] == 0:
        return []
    return expand("results/samples/unlabelled_{dataset}.parquet", dataset=DATASETS)


def pretrain_set_inputs(wildcards):
    """Every split (a pretraining set may hold no test object of any experiment using the encoder)
    and the unlabelled pools the encoder pretrains on."""
    inputs = {f"split_{name}": f"results/splits/{name}.parquet" for name in EXPERIMENTS}
    if config["unlabelled"]["per_field"] > 0 and config["pretrain"]["objects"] == "all":
        for ds in unlabelled_datasets(config["experiments"], wildcards.dataset):
            inputs[f"unlabelled_{ds}"] = f"results/samples/unlabelled_{ds}.parquet"
    return inputs


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


def split_per_class(wildcards):
    """Objects per class of the experiment's own dataset (none for an experiment reusing another's)."""
    exp = config["experiments"][wildcards.experiment]
    return config["datasets"][exp["dataset"]]["per_class"] if "dataset" in exp else None


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


OWN_EXPERIMENTS = [n for n, e in config["experiments"].items() if "dataset" in e]
TRANSFER_EXPERIMENTS = [n for n in EXPERIMENTS if n not in OWN_EXPERIMENTS]
TASKS = config["tasks"]
MODELS = config["models"]
SEEDS = config["seeds"]
LE = config["label_efficiency"]


def dataset_of(experiment):
    """The dataset an experiment's models are trained (and pretrained) on."""
    exp = config["experiments"][experiment]
    return exp["dataset"] if "dataset" in exp else dataset_of(exp["train_from"])


def pretrain_science():
    """The pretraining keys that decide what is computed (operational ones are read by the script)."""
    return scientific(config, "pretrain")


def encoder_path(experiment, seed):
    return f"results/pretrain/{dataset_of(experiment)}/seed{seed}/encoder.pt"


def train_inputs(wildcards):
    """A training run reads its split and the stamps; pretrained models also their encoder."""
    experiment = getattr(wildcards, "experiment", "exp1")
    inputs = {
        "split": f"results/splits/{experiment}.parquet",
        "index": "results/stamps/index.parquet",
    }
    if spec(wildcards.model).pretrained:
        inputs["encoder"] = encoder_path(experiment, wildcards.seed)
    return inputs


def model_config(wildcards):
    """The only config keys one model's training run reads (sdssclr.registry.model_config)."""
    return registry_model_config(config, wildcards.model)


def model_gpus(wildcards):
    return int(spec(wildcards.model).uses_gpu)


def transfer_inputs(wildcards):
    """Experiment 3 evaluates the parent experiment's trained model on its own test split."""
    parent = config["experiments"][wildcards.experiment]["train_from"]
    run = (
        f"results/runs/{parent}/{wildcards.task}/{wildcards.model}/seed{wildcards.seed}"
    )
    return {
        "model": f"{run}/model.pt",
        "split": f"results/splits/{wildcards.experiment}.parquet",
        "index": "results/stamps/index.parquet",
    }


def run_files(name, experiments, tasks=None, models=None, seeds=None):
    """``name`` (metrics.json, predictions.parquet) of every run of the given experiments."""
    return expand(
        "results/runs/{experiment}/{task}/{model}/seed{seed}/{name}",
        experiment=experiments,
        task=tasks or TASKS,
        model=models or MODELS,
        seed=seeds or SEEDS,
        name=name,
    )


def run_metrics(experiments, tasks=None, models=None, seeds=None):
    return run_files("metrics.json", experiments, tasks, models, seeds)


def label_efficiency_files(name="metrics.json"):
    """Fraction 1.0 is the Table 1 run of exp1 itself; smaller fractions are runs of their own."""
    paths = []
    for frac in LE["fractions"]:
        for model in LE["models"]:
            for seed in SEEDS:
                if frac >= 1.0:
                    paths += run_files(name, ["exp1"], [LE["task"]], [model], [seed])
                else:
                    paths.append(
                        f"results/label_efficiency/{LE['task']}/{model}/frac{frac:g}/seed{seed}/{name}"
                    )
    return paths


def final_targets():
    return [
        "results/table1.md",
        *expand("results/experiments/{experiment}.md", experiment=EXPERIMENTS),
        "results/label_efficiency.md",
        "results/label_efficiency.png",
        *expand(
            "results/figures/confusion_{experiment}_{task}.png",
            experiment=EXPERIMENTS,
            task=TASKS,
        ),
        *report_targets(),
    ]


def report_targets():
    """What the Snakemake report shows, and the survey-wide products (predictions, similarity)."""
    pretrained = [(d, s) for d in pretrain_datasets() for s in SEEDS]
    return [
        *expand(
            "results/report/{page}.html",
            page=["table1", "label_efficiency", "conformal"],
        ),
        "results/figures/conformal_coverage.png",
        *expand(
            "results/figures/{kind}_{experiment}_{task}.png",
            kind=["gallery", "accuracy_vs_mag"],
            experiment=EXPERIMENTS,
            task=TASKS,
        ),
        *[
            f"results/figures/{kind}_{d}_seed{s}.png"
            for kind in ("pretrain", "embedding")
            for d, s in pretrained
        ],
        *[f"results/similarity/{d}/seed{s}/vectors.npy" for d, s in pretrained],
        *expand(
            "results/predictions/{experiment}/{task}/{model}.parquet",
            experiment=OWN_EXPERIMENTS,
            task=TASKS,
            model=config["predictions"]["models"],
        ),
    ]


def shard_ids():
    return [f"{k:04d}" for k in range(N_SHARDS)]
