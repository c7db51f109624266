from pathlib import Path

from sdssclr.config import scientific, validate
from sdssclr.experiments import ExperimentGraph
from sdssclr.registry import MODELS as REGISTERED_MODELS, PRETRAINING_SETS, spec
from sdssclr.registry import model_config as registry_model_config
from sdssclr.samples.cuts import cuts_of
from sdssclr.workflow import check_cluster_requests, export_package_path

# A bad config stops here, before any job is scheduled, with the offending key named.
validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# Workflow scripts import the sdssclr package from this checkout, also inside conda envs.
export_package_path(str(Path(workflow.basedir) / "src"))


# On SLURM, a job that no node can run stops the run before anything is submitted.
onstart:
    check_cluster_requests(workflow)


# What depends on what between experiments (owners, transfers, encoders): sdssclr.experiments.
GRAPH = ExperimentGraph(config["experiments"])
EXPERIMENTS = GRAPH.names
OWN_EXPERIMENTS = GRAPH.own
TRANSFER_EXPERIMENTS = GRAPH.transfers
DATASETS = list(config["datasets"])
# The experiments whose samples' fields the unlabelled objects (and the SDSS photometric pull) come from.
FIELD_EXPERIMENTS = GRAPH.field_experiments()
# Stamps are cut per consumer (sdssclr.stamps.shards): one set per experiment's sample and one per
# dataset's unlabelled objects, each for every split seed.
STAMP_SETS = EXPERIMENTS + [f"unlabelled_{d}" for d in DATASETS]
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
    stampset="|".join(STAMP_SETS),


def splits_of(experiments, split_seeds=None):
    """The split files of ``experiments`` for ``split_seeds`` (default: every split seed)."""
    return expand(
        rules.split.output[0],
        experiment=experiments,
        split=split_seeds or SPLIT_SEEDS,
    )


def samples_of(experiments, split_seeds=None):
    """The sample files (objects drawn, what is stamped) of ``experiments`` for ``split_seeds``."""
    return expand(
        rules.sample.output[0],
        experiment=experiments,
        split=split_seeds or SPLIT_SEEDS,
    )


def photometric_objects(wildcards):
    """The photometric objects without spectra an unlabelled sample is drawn from: the synthetic
    survey's, or the SDSS pull for the fields of the dataset's sample and split seed."""
    if SOURCE == "synthetic":
        return rules.synthetic_survey.output.photometric
    return rules.sdss_photometric.output.photometric.format(
        split=wildcards.split, dataset=wildcards.dataset
    )


def photometric_file_input():
    return config["survey"]["photometric_file"] or []


def catalog_file_input():
    return config["survey"]["catalog_file"] or []


def objid_list_of(dataset):
    """A dataset's object list (datasets.<name>.objid_list), or none."""
    return config["datasets"][dataset].get("objid_list") or []


def test_objid_list_of(experiment):
    """A transfer experiment's list of test objects (experiments.<name>.test_objid_list), or none."""
    return config["experiments"][experiment].get("test_objid_list") or []


def sample_pool(name):
    """The pool an experiment draws from: its dataset's, or a transfer experiment's listed test pool."""
    if name in TRANSFER_EXPERIMENTS and test_objid_list_of(name):
        return rules.test_pool.output[0].format(experiment=name)
    return rules.pool.output[0].format(dataset=GRAPH.sample_dataset(name))


def catalog_lists():
    """The object lists whose objects the SDSS catalogue must hold, and whether some pool still
    needs the cut query (a dataset drawn from without a list)."""
    lists, unlisted = [], False
    for name in GRAPH.names:
        if name in TRANSFER_EXPERIMENTS and test_objid_list_of(name):
            lists.append(test_objid_list_of(name))
            continue
        listed = objid_list_of(GRAPH.sample_dataset(name))
        lists += [listed] if listed else []
        unlisted |= not listed
    return sorted(set(lists)), unlisted


def stamp_index(split, stampset):
    """The index of one stamp set: an experiment's sample or ``unlabelled_{dataset}``."""
    return rules.stamp_index.output[0].format(split=split, stampset=stampset)


def stamp_files(indexes):
    """The stamp shards the stamp set indexes ``indexes`` point into: declared by every job that
    reads stamps, so that a lost shard is cut again before such a job runs."""
    return [
        str(Path(index).with_name(f"shard-{k:04d}.npy"))
        for index in indexes
        for k in range(N_SHARDS)
    ]


def unlabelled_stamps(datasets, split):
    """The stamp sets of the unlabelled objects of ``datasets`` (none if disabled)."""
    if config["unlabelled"]["per_field"] == 0:
        return []
    return [stamp_index(split, f"unlabelled_{d}") for d in datasets]


def encoder_stamps(dataset, split, objects="all"):
    """The stamp sets an encoder of ``dataset`` pretrains on and embeds: its owners' samples and,
    for the ``all`` set, the unlabelled objects it sees."""
    own = [stamp_index(split, name) for name in GRAPH.owners(dataset)]
    if objects != "all":
        return own
    return own + unlabelled_stamps(GRAPH.unlabelled_datasets(dataset), split)


def predict_stamps(experiment):
    """What an experiment's survey predictions classify: its own objects and the unlabelled
    objects of its dataset (first split seed)."""
    return [stamp_index(FIRST_SPLIT, experiment)] + unlabelled_stamps(
        [GRAPH.dataset_of(experiment)], FIRST_SPLIT
    )


def stamp_plan_objects(wildcards):
    """What one stamp set is cut for: an experiment's sample or a dataset's unlabelled objects."""
    name = wildcards.stampset
    if name in EXPERIMENTS:
        return samples_of([name], [wildcards.split])
    return [
        rules.unlabelled.output[0].format(
            split=wildcards.split, dataset=name[len("unlabelled_") :]
        )
    ]


def experiment_structure():
    """Which experiment trains on, reuses or tests on which dataset (sdssclr.experiments), without
    the sample sizes: what a pretraining set's owners and unlabelled datasets are read from.
    Sorted, so that the order in which override files name the experiments never reruns a job.
    """
    keys = ("dataset", "train_from", "test_dataset")
    return {
        name: {k: v for k, v in sorted(exp.items()) if k in keys}
        for name, exp in sorted(config["experiments"].items())
    }


def pretrain_set_inputs(wildcards):
    """The splits of the experiments training on the dataset (a pretraining set may hold none of
    their test objects) and the unlabelled pools the encoder pretrains on."""
    inputs = {
        f"split_{name}": splits_of([name], [wildcards.split])[0]
        for name in GRAPH.owners(wildcards.dataset)
    }
    if config["unlabelled"]["per_field"] > 0 and wildcards.objects == "all":
        for ds in GRAPH.unlabelled_datasets(wildcards.dataset):
            inputs[f"unlabelled_{ds}"] = rules.unlabelled.output[0].format(
                split=wildcards.split, dataset=ds
            )
    return inputs


def downloads_on_submit_host():
    """Downloading stamp jobs run on the submit host when compute nodes have no internet."""
    survey = config["survey"]
    return (
        SOURCE == "sdss"
        and not survey["frames_dir"]
        and survey["download_on_submit_host"]
    )


def sample_inputs(wildcards):
    """Inputs of an experiment's sample: its dataset pool, and an experiment reusing another's
    models also its parent's sample (whose training objects it may not test on)."""
    name = wildcards.experiment
    inputs = {"pool": sample_pool(name)}
    if name in TRANSFER_EXPERIMENTS:
        inputs["parent"] = samples_of([GRAPH.parent(name)], [wildcards.split])[0]
    return inputs


def sample_config(name):
    """The keys of an experiment that decide which objects it draws."""
    keys = (
        "dataset",
        "ratios",
        "test_dataset",
        "test_per_class",
        "calibration_per_class",
        "keep_parent_overlap",
    )
    return {k: v for k, v in config["experiments"][name].items() if k in keys}


def split_inputs(wildcards):
    """Inputs of an experiment's split: its sample, and a transfer experiment its parent's split."""
    name = wildcards.experiment
    inputs = {"sample": samples_of([name], [wildcards.split])[0]}
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
    """A training run reads its split and its sample's stamps; pretrained models also their encoder. The
    label-efficiency runs have no experiment wildcard: theirs is label_efficiency.experiment.
    """
    experiment = wildcards.get("experiment", LE["experiment"])
    index = [stamp_index(wildcards.split, experiment)]
    inputs = {
        "split": splits_of([experiment], [wildcards.split])[0],
        "index": index,
        "stamps": stamp_files(index),
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
    """Experiment 3 evaluates the parent experiment's trained model on its own test split: its own
    objects' stamps and the parent's (its calibration objects, the shift diagnostic); a pretrained
    model also the encoder's pretraining set, which may hold none of the test objects.
    """
    parent = GRAPH.parent(wildcards.experiment)
    model = rules.train.output.model.format(
        experiment=parent,
        task=wildcards.task,
        model=wildcards.model,
        split=wildcards.split,
        seed=wildcards.seed,
    )
    inputs = {
        "model": model,
        "split": splits_of([wildcards.experiment], [wildcards.split])[0],
        "index": [
            stamp_index(wildcards.split, wildcards.experiment),
            stamp_index(wildcards.split, parent),
        ],
    }
    inputs["stamps"] = stamp_files(inputs["index"])
    registered = spec(wildcards.model)
    if registered.pretrained:
        inputs["pretraining"] = rules.pretrain_set.output[0].format(
            dataset=GRAPH.dataset_of(parent),
            split=wildcards.split,
            objects=registered.pretraining,
        )
    return inputs


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
        *[f"results/similarity/{d}/{first}/seed{s}/index.faiss" for d, s in pretrained],
        *expand(
            "results/predictions/{experiment}/{task}/{model}.parquet",
            experiment=OWN_EXPERIMENTS,
            task=TASKS,
            model=config["predictions"]["models"],
        ),
    ]
