import copy
import subprocess
import sys

import pytest

from sdssclr.config import ConfigError, load, validate


def test_shipped_configs_are_valid(repo, schema):
    load(repo / "config.yaml", schema)
    demo = load(repo / "config.yaml", schema, [repo / "demo.yaml"])
    assert demo["survey"]["source"] == "synthetic"


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
         "--workflow-profile", "none", "-s", str(repo / "Snakefile"), "--config", "split_seed=-1"],
        capture_output=True, text=True,
    )
    assert res.returncode != 0
    assert "split_seed" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()
