from pathlib import Path

from sdssclr.config import scientific, validate
from sdssclr.experiments import ExperimentGraph
from sdssclr.registry import MODELS as REGISTERED_MODELS, PRETRAINING_SETS, spec
from sdssclr.registry import model_config as registry_model_config
from sdssclr.samples.cuts import cuts_of
from sdssclr.workflow import export_package_path

# A bad config stops here, before any job is scheduled, with the offending key named.
validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# Workflow scripts import the sdssclr package from this checkout, also inside conda envs.
export_package_path(str(Path(workflow.basedir) / "src"))

# What depends on what between experiments (owners, transfers, encoders): sdssclr.experiments.
GRAPH = ExperimentGraph(config["experiments"])
EXPERIMENTS = GRAPH.names
OWN_EXPERIMENTS = GRAPH.own
TRANSFER_EXPERIMENTS = GRAPH.transfers
DATASETS = list(config["datasets"])
N_SHARDS = config["stamps"]["n_shards"]
SOURCE = config["survey"]["source"]
TASKS = config["tasks"]
MODELS = config["models"]
SEEDS = config["seeds"]
SPLIT_SEEDS = config["split_seeds"]
# The figures, the conformal report, predictions and similarity search show the first split seed.
FIRST_SPLIT = SPLIT_SEEDS[0]
LE = config["label_efficiency"]


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    dataset="|".join(DATASETS),
    shard=r"\d{4}",
    seed=r"\d+",
    split=r"\d+",
    task="SG|SGQ",
    model="|".join(sorted(REGISTERED_MODELS, key=len, reverse=True)),
    frac=r"[0-9.]+",
    objects="|".join(PRETRAINING_SETS),


def splits_of(experiments, split_seeds=None):
    """The split files of ``experiments`` for ``split_seeds`` (default: every split seed)."""
    return expand(
        rules.split.output[0],
        experiment=experiments,
        split=split_seeds or SPLIT_SEEDS,
    )


def photometric_file_input():
    return config["survey"]["photometric_file"] or []


def catalog_file_input():
    return config["survey"]["catalog_file"] or []


def unlabelled_pools():
    """Unlabelled objects to stamp: those of every pretrained dataset's regime (none if disabled)."""
    if config["unlabelled"]["per_field"] == 0:
        return []
    return expand(rules.unlabelled.output[0], dataset=DATASETS)


def pretrain_set_inputs(wildcards):
    """Every split (a pretraining set may hold no test object of any experiment using the encoder)
    and the unlabelled pools the encoder pretrains on."""
    inputs = {
        f"split_{name}": splits_of([name], [wildcards.split])[0] for name in EXPERIMENTS
    }
    if config["unlabelled"]["per_field"] > 0 and wildcards.objects == "all":
        for ds in GRAPH.unlabelled_datasets(wildcards.dataset):
            inputs[f"unlabelled_{ds}"] = rules.unlabelled.output[0].format(dataset=ds)
    return inputs


def downloads_on_submit_host():
    """Downloading stamp jobs run on the submit host when compute nodes have no internet."""
    survey = config["survey"]
    return (
        SOURCE == "sdss"
        and not survey["frames_dir"]
        and survey["download_on_submit_host"]
    )


def split_inputs(wildcards):
    """Inputs of an experiment's split: its dataset pool, or its parent's split and the test pool."""
    name = wildcards.experiment
    inputs = {"pool": rules.pool.output[0].format(dataset=GRAPH.sample_dataset(name))}
    if name in TRANSFER_EXPERIMENTS:
        inputs["parent"] = splits_of([GRAPH.parent(name)], [wildcards.split])[0]
    return inputs


def split_per_class(wildcards):
    """Objects per class of the experiment's own dataset (none for an experiment reusing another's)."""
    name = wildcards.experiment
    if name in TRANSFER_EXPERIMENTS:
        return None
    return config["datasets"][GRAPH.dataset_of(name)]["per_class"]


def pretrain_split(wildcards):
    """The split whose training objects pretrain (and whose validation objects monitor) the encoder
    of a dataset."""
    return splits_of([GRAPH.encoder_split(wildcards.dataset)], [wildcards.split])[0]


def pretrain_science():
    """The pretraining keys that decide what is computed (operational ones are read by the script)."""
    return scientific(config, "pretrain")


def encoder_path(experiment, split, seed, objects="all"):
    """The encoder an experiment's pretrained models use, pretrained on ``objects`` ('all':
    labelled training and unlabelled objects; 'labelled': the labelled training objects only).
    """
    return rules.pretrain.output.encoder.format(
        dataset=GRAPH.dataset_of(experiment), split=split, seed=seed, objects=objects
    )


def pretrained(name):
    """Output ``name`` (curve, embeddings) of the wildcards' encoder pretrained on all objects,
    the one the figures and the similarity search show."""
    return lambda wc: getattr(rules.pretrain.output, name).format(
        dataset=wc.dataset, split=wc.split, seed=wc.seed, objects="all"
    )


def train_inputs(wildcards):
    """A training run reads its split and the stamps; pretrained models also their encoder. The
    label-efficiency runs have no experiment wildcard: theirs is label_efficiency.experiment.
    """
    experiment = wildcards.get("experiment", LE["experiment"])
    inputs = {
        "split": splits_of([experiment], [wildcards.split])[0],
        "index": rules.stamp_index.output[0],
    }
    model = spec(wildcards.model)
    if model.pretrained:
        inputs["encoder"] = encoder_path(
            experiment, wildcards.split, wildcards.seed, model.pretraining
        )
    return inputs


def model_config(wildcards):
    """The only config keys one model's training run reads (sdssclr.registry.model_config)."""
    return registry_model_config(config, wildcards.model)


def model_gpus(wildcards):
    return int(spec(wildcards.model).uses_gpu)


def transfer_inputs(wildcards):
    """Experiment 3 evaluates the parent experiment's trained model on its own test split."""
    model = rules.train.output.model.format(
        experiment=GRAPH.parent(wildcards.experiment),
        task=wildcards.task,
        model=wildcards.model,
        split=wildcards.split,
        seed=wildcards.seed,
    )
    return {
        "model": model,
        "split": splits_of([wildcards.experiment], [wildcards.split])[0],
        "index": rules.stamp_index.output[0],
    }


def run_files(name, experiments, tasks=None, models=None, seeds=None, split_seeds=None):
    """``name`` (metrics.json, predictions.parquet) of every run of the given experiments: every
    model seed on every split seed unless narrowed."""
    return expand(
        "results/runs/{experiment}/{task}/{model}/split{split}/seed{seed}/{name}",
        experiment=experiments,
        task=tasks or TASKS,
        model=models or MODELS,
        split=split_seeds or SPLIT_SEEDS,
        seed=seeds or SEEDS,
        name=name,
    )


def run_metrics(experiments, tasks=None, models=None, seeds=None, split_seeds=None):
    return run_files("metrics.json", experiments, tasks, models, seeds, split_seeds)


def label_efficiency_files(name="metrics.json"):
    """Fraction 1.0 is the Table 1 run of the experiment itself; smaller fractions are runs of their own."""
    paths = []
    for frac in LE["fractions"]:
        for model in LE["models"]:
            for split in SPLIT_SEEDS:
                for seed in SEEDS:
                    if frac >= 1.0:
                        paths += run_files(
                            name,
                            [LE["experiment"]],
                            [LE["task"]],
                            [model],
                            [seed],
                            [split],
                        )
                    else:
                        paths.append(
                            f"results/label_efficiency/{LE['task']}/{model}/frac{frac:g}/"
                            f"split{split}/seed{seed}/{name}"
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
    pretrained = [(d, s) for d in GRAPH.pretrained_datasets() for s in SEEDS]
    first = f"split{FIRST_SPLIT}"
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
            f"results/figures/{kind}_{d}_{first}_seed{s}.png"
            for kind in ("pretrain", "embedding")
            for d, s in pretrained
        ],
        *[f"results/similarity/{d}/{first}/seed{s}/vectors.npy" for d, s in pretrained],
        *expand(
            "results/predictions/{experiment}/{task}/{model}.parquet",
            experiment=OWN_EXPERIMENTS,
            task=TASKS,
            model=config["predictions"]["models"],
        ),
    ]
