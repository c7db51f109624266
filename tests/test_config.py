import copy
import subprocess
import sys

import pytest

from conftest import SCHEMA
from sdssclr.config import ConfigError, load, validate


def test_shipped_configs_are_valid(repo, schema):
    load(repo / "config.yaml", schema)
    demo = load(repo / "config.yaml", schema, [repo / "demo.yaml"])
    assert demo["survey"]["source"] == "synthetic"
    # the benchmark configurations of the whole design
    cpu = load(repo / "config.yaml", schema, [repo / "demo.yaml", repo / "benchmarks" / "cpu-design.yaml"])
    assert len(cpu["seeds"]) == len(cpu["split_seeds"]) == 2
    from sdssclr.registry import MODELS

    assert cpu["models"] == cpu["label_efficiency"]["models"] == list(MODELS)  # every row, every budget
    small = load(repo / "config.yaml", schema, [repo / "sdss-small.yaml"])
    assert small["survey"]["source"] == "sdss" and small["datasets"]["compact"]["per_class"] <= 1000
    gpu = load(repo / "config.yaml", schema, [repo / "benchmarks" / "gpu-medium.yaml"])
    assert len(gpu["seeds"]) >= 5 and len(gpu["split_seeds"]) >= 2


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["stamps"].update(size=3), "stamps.size"),
        (lambda c: c["survey"].update(source="sdss17"), "survey.source"),
        (lambda c: c["cuts"].update(faint_rule="median"), "cuts.faint_rule"),
        (lambda c: c["stamps"].update(shard_size=10), "stamps.shard_size: unknown key"),
        (lambda c: c.update(sedes=[0]), "sedes: unknown key"),
        (lambda c: c["experiments"]["exp1"].update(ratios=[6, 1]), "experiments.exp1.ratios"),
        (lambda c: c.update(tasks=["SG", "SG"]), "tasks"),
        (lambda c: c["datasets"]["compact"].pop("per_class"), "datasets.compact"),
        (lambda c: c["datasets"]["compact"].update(per_class="80000"), "datasets.compact.per_class"),
        (lambda c: c["cuts"].update(faint_min_mag=float("nan")), "cuts.faint_min_mag: nan is not a finite number"),
        (lambda c: c["pretrain"].update(lr=float("inf")), "pretrain.lr: inf is not a finite number"),
        (lambda c: c["experiments"]["exp1"].update(ratios=[6, float("nan"), 1]),
         "experiments.exp1.ratios.1: nan is not a finite number"),
        (lambda c: c["stamps"].update(n_shards=2.0), "stamps.n_shards: 2.0 is not an integer"),
        (lambda c: c["seeds"].append(3.0), "seeds.3: 3.0 is not an integer"),
        (lambda c: c["stamps"].update(size=24), "pretrain.augment.crop: 28 is larger than stamps.size 24"),
        (lambda c: c["survey"].update(sas_url="ftp://data.sdss.org/sas"), "survey.sas_url"),
        (lambda c: c["survey"].update(frames_dir="/no/such/mirror"), "survey.frames_dir: /no/such/mirror does not exist"),
        (lambda c: c["datasets"]["compact"].update(per_class=5), "with 5 per class leaves the val split empty"),
        (lambda c: c["comparison"].update(baseline="simclr-linear") or c.update(models=["margnet"]),
         "comparison.baseline: 'simclr-linear' is not one of models"),
        (lambda c: c.update(models=["margnet", "resnet"]), "models.1: 'resnet' is not one of"),
        (lambda c: c["conformal"].update(alpha=1.0), "conformal.alpha"),
        (lambda c: c["conformal"].update(alpha=float("nan")), "conformal.alpha: nan is not a finite number"),
        (lambda c: c["conformal"].update(calibration_fraction=0.0001),
         "conformal.calibration_fraction: 0.0001 of exp2's 5000 validation objects per class leaves 0 for calibration"),
        (lambda c: c["conformal"].update(mondrian="yes"), "conformal.mondrian"),
        (lambda c: c["conformal"].update(magnitude_bins=0), "conformal.magnitude_bins"),
        (lambda c: c["predictions"].update(models=["simclr"]) or c.update(models=["margnet", "gbdt"])
         or c["label_efficiency"].update(models=["margnet"]),
         r"predictions.models: \['simclr'\] are not among models"),
        (lambda c: c["unlabelled"].update(per_field=-1), "unlabelled.per_field"),
        (lambda c: c["unlabelled"].update(per_field=2.5), "unlabelled.per_field: 2.5 is not an integer"),
        (lambda c: c["pretrain"].update(objects="labelled"), "pretrain.objects: unknown key"),
        (lambda c: c["pretrain"]["augment"].update(min_fresh_noise=-0.5), "pretrain.augment.min_fresh_noise"),
        (lambda c: c["pretrain"]["augment"].pop("min_fresh_noise"), "pretrain.augment"),
        (lambda c: c["classifiers"]["margformer"].update(encoder_lr=1e-4), "classifiers.margformer.encoder_lr"),
        (lambda c: c["classifiers"]["finetune"].update(encoder_lr=[]), "classifiers.finetune.encoder_lr"),
        (lambda c: c["classifiers"]["finetune"].update(encoder_lr=[1e-4, 0.0]), "classifiers.finetune.encoder_lr.1"),
        (lambda c: c["classifiers"]["margformer"].update(encoder_lr=[1e-4, 1e-4]),
         "classifiers.margformer.encoder_lr"),
        (lambda c: c["experiments"]["exp3"].update(calibration_per_class=0), "experiments.exp3.calibration_per_class"),
        (lambda c: c["experiments"]["exp3"].pop("calibration_per_class"), "experiments.exp3"),
        (lambda c: c["experiments"]["exp3"].update(keep_parent_overlap="yes"), "experiments.exp3.keep_parent_overlap"),
        (lambda c: c["experiments"]["exp3"].pop("keep_parent_overlap"), "experiments.exp3"),
        (lambda c: c["models"].remove("simclr-margformer") or c["predictions"]["models"].remove("simclr-margformer")
         or c["label_efficiency"]["models"].remove("simclr-margformer") or c["comparison"]["primary"].update(
             model="simclr-margformer-labelled"),
         "models: a model pretrained on labelled objects only needs the model it ablates beside it"),
        (lambda c: c["survey"].update(photometric_file="/no/such/export.csv"),
         "survey.photometric_file: /no/such/export.csv does not exist"),
        (lambda c: c["datasets"]["compact"].update(objid_list="/no/such/objlist.npy"),
         "datasets.compact.objid_list: /no/such/objlist.npy does not exist"),
        (lambda c: c["datasets"]["faint_compact"].update(objid_list=7), "datasets.faint_compact.objid_list"),
        (lambda c: c["experiments"]["exp3"].update(test_objid_list="/no/such/exp3.parquet"),
         "experiments.exp3.test_objid_list: /no/such/exp3.parquet does not exist"),
        (lambda c: c["experiments"]["exp3"].update(test_objid_list=str(SCHEMA)),
         f"experiments.exp3.test_objid_list: {SCHEMA} is neither a Parquet table nor a"),
        (lambda c: c["experiments"]["exp1"].update(test_objid_list="x.npy"),
         "experiments.exp1.test_objid_list: unknown key"),
        (lambda c: c["synthetic"].update(neighbour_galaxies=-1), "synthetic.neighbour_galaxies"),
        (lambda c: c["synthetic"].update(neighbour_galaxies=float("nan")),
         "synthetic.neighbour_galaxies: nan is not a finite number"),
        (lambda c: c["synthetic"].pop("neighbour_galaxies"), "synthetic"),
        (lambda c: c["label_efficiency"].update(experiment="exp3"),
         "label_efficiency.experiment: 'exp3' is not an experiment with its own dataset"),
        (lambda c: c["label_efficiency"].update(experiment="exp9"),
         "label_efficiency.experiment: 'exp9' is not an experiment with its own dataset"),
        (lambda c: c["label_efficiency"].update(experiment=1), "label_efficiency.experiment"),
        (lambda c: c.update(split_seeds=[]), "split_seeds"),
        (lambda c: c.update(split_seeds=[2023, 2023]), "split_seeds"),
        (lambda c: c.update(split_seeds=2023), "split_seeds: 2023 is not of type 'array'"),
        (lambda c: c["comparison"].update(equivalence_margin=0), "comparison.equivalence_margin"),
        (lambda c: c["comparison"].update(equivalence_margin=float("nan")),
         "comparison.equivalence_margin: nan is not a finite number"),
        (lambda c: c["comparison"]["primary"].update(control="twotower"),
         "comparison.primary.control: 'twotower' is not the random-init control of 'simclr-margformer'"),
        (lambda c: c["comparison"]["primary"].update(model="resnet"), "comparison.primary.model"),
        (lambda c: c["models"].remove("linear-random"),
         "models: every pretrained model needs its random-init control beside it; missing for simclr-linear"),
        (lambda c: c["label_efficiency"]["models"].remove("margformer"),
         "label_efficiency.models: every pretrained model needs its random-init control"),
        (lambda c: c["classifiers"]["margnet"]["cnn"].update(warmup_steps=-1), "classifiers.margnet.cnn.warmup_steps"),
        (lambda c: c["classifiers"]["margformer"].pop("warmup_steps"), "classifiers.margformer"),
        (lambda c: c["classifiers"].update(fail_at_chance="yes"), "classifiers.fail_at_chance"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(base_config, schema, mutate, key):
    config = copy.deepcopy(base_config)
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(config, schema)


def test_every_schema_key_has_a_description(schema):
    import yaml

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert "description" in sub or "$ref" in sub, f"{'.'.join(path + [name])} has no description"
            walk(sub, path + [name])

    spec = yaml.safe_load(schema.read_text())
    walk(spec, [])
    for name, sub in spec.get("$defs", {}).items():
        walk(sub, ["$defs", name])


def test_workflow_stops_on_bad_config_before_any_job(repo, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--cores", "1",
         "--workflow-profile", "none", "-s", str(repo / "Snakefile"), "--config", "split_seeds=[-1]"],
        capture_output=True, text=True,
    )
    assert res.returncode != 0
    assert "split_seeds" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()
