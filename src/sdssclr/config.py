"""Configuration: validation against the workflow's JSON schema, with errors naming the key.

Stricter than JSON Schema alone: a number must be finite (YAML's ``.nan`` and ``.inf`` are
refused everywhere), an integer must be written as one (``2.0`` is not an integer here, although
JSON Schema would accept it), and relations between keys that the schema cannot express are
checked (references between experiments, the stamp size against the crop, every split holding
objects of every class, local paths that must exist).
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from .experiments import ExperimentGraph, has_own_dataset, split_sizes
from .registry import MODELS


#: Keys that change how a step runs, never what it computes (where frames come from, timeouts,
#: parallelism, devices, kept files, checkpoint intervals). Rules pass them to their scripts
#: through the config rather than ``params``, and no resume key includes them, so changing one
#: never reruns a job or discards a checkpoint.
OPERATIONAL: dict[str, tuple[str, ...]] = {
    "survey": ("timeout_s", "page_size", "max_queries_per_minute", "retries", "backoff_s", "frames_dir", "sas_url",
               "download_dir", "parallel_downloads", "keep_frames", "download_on_submit_host"),
    "stamps": ("max_missing_fraction",),
    "pretrain": ("device", "embed_batch_size", "gpus", "checkpoint_every"),
    "classifiers": ("device",),
}


def scientific(config: dict, section: str) -> dict:
    """``config[section]`` without its operational keys."""
    return {k: v for k, v in config[section].items() if k not in OPERATIONAL.get(section, ())}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(config: dict, schema_path) -> dict:
    """Validate ``config`` against the YAML/JSON schema at ``schema_path``.

    Raises :class:`ConfigError` listing every problem as ``key: reason``, e.g.
    ``stamps.size: -3 is less than the minimum of 8``. Unknown keys are reported by their full
    name. Also checks relations the schema cannot express (experiment references).
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    schema["$defs"]["model_name"]["enum"] = list(MODELS)  # the one list of model names
    validator = _strict_validator()(schema)
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - allowed):
                problems.append(f"{_key([*err.absolute_path, extra])}: unknown key")
            continue
        message = err.message
        if isinstance(err.instance, float) and not math.isfinite(err.instance):
            message = f"{err.instance} is not a finite number"
        elif err.validator == "type" and isinstance(err.instance, float) and "integer" in str(err.validator_value):
            message = f"{err.instance!r} is not an integer (write it without a decimal point)"
        problems.append(f"{_key(err.absolute_path)}: {message}")
    if not problems:
        problems.extend(_relations(config))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _strict_validator():
    """Draft 2020-12 with the stricter types of this module: finite numbers, true integers."""
    import jsonschema

    base = jsonschema.Draft202012Validator

    def is_number(checker, value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def is_integer(checker, value):
        return isinstance(value, int) and not isinstance(value, bool)

    checker = base.TYPE_CHECKER.redefine_many({"number": is_number, "integer": is_integer})
    return jsonschema.validators.extend(base, type_checker=checker)


def _relations(config: dict) -> list[str]:
    problems = []
    crop, size = config["pretrain"]["augment"]["crop"], config["stamps"]["size"]
    if crop > size:
        problems.append(f"pretrain.augment.crop: {crop} is larger than stamps.size {size}")
    survey = config["survey"]
    for key in ("frames_dir", "catalog_file", "photometric_file"):
        path = survey.get(key)
        if survey["source"] == "sdss" and path and not Path(path).exists():
            problems.append(f"survey.{key}: {path} does not exist")
    lists = [(f"datasets.{name}.objid_list", d.get("objid_list")) for name, d in config["datasets"].items()]
    lists += [(f"experiments.{name}.test_objid_list", e.get("test_objid_list"))
              for name, e in config["experiments"].items()]
    for key, path in lists:
        if path and not Path(path).is_file():
            problems.append(f"{key}: {path} does not exist")
        elif path and Path(path).suffix.lower() not in {".parquet", ".pq", ".npy"}:
            problems.append(f"{key}: {path} is neither a Parquet table nor a .npy array")
    for name, exp in config["experiments"].items():
        if has_own_dataset(exp) and exp["dataset"] in config["datasets"]:
            per_class = config["datasets"][exp["dataset"]]["per_class"]
            sizes = split_sizes(per_class, exp["ratios"])
            val = sizes["val"]
            n_cal = round(config["conformal"]["calibration_fraction"] * val)
            if not 0 < n_cal < val:
                problems.append(f"conformal.calibration_fraction: {config['conformal']['calibration_fraction']} of "
                                f"{name}'s {val} validation objects per class leaves {n_cal} for calibration and "
                                f"{val - n_cal} for validation; both need at least one")
            empty = [s for s, n in sizes.items() if n < 1]
            if empty:
                problems.append(f"experiments.{name}.ratios: {exp['ratios']} with {per_class} per class leaves the "
                                f"{', '.join(empty)} split empty ({sizes} per class)")
    base = config["comparison"]["baseline"]
    if base not in config["models"]:
        problems.append(f"comparison.baseline: {base!r} is not one of models {config['models']}")
    for key, models in (("models", config["models"]), ("label_efficiency.models", config["label_efficiency"]["models"])):
        missing = [f"{m} (control {MODELS[m].control})" for m in models
                   if MODELS[m].pretrained and MODELS[m].control not in models]
        if missing:
            problems.append(f"{key}: every pretrained model needs its random-init control beside it; missing for "
                            f"{', '.join(missing)}")
        alone = [f"{m} (ablates {MODELS[m].ablates})" for m in models if MODELS[m].ablates and MODELS[m].ablates not in models]
        if alone:
            problems.append(f"{key}: a model pretrained on labelled objects only needs the model it ablates beside it; "
                            f"missing for {', '.join(alone)}")
    primary = config["comparison"]["primary"]
    for key in ("model", "control"):
        if primary[key] not in config["models"]:
            problems.append(f"comparison.primary.{key}: {primary[key]!r} is not one of models {config['models']}")
    if MODELS[primary["model"]].control != primary["control"]:
        problems.append(f"comparison.primary.control: {primary['control']!r} is not the random-init control of "
                        f"{primary['model']!r} (that is {MODELS[primary['model']].control or 'none'!r})")
    unknown = [m for m in config["predictions"]["models"] if m not in config["models"]]
    if unknown:
        problems.append(f"predictions.models: {unknown} are not among models {config['models']}")
    if base not in config["label_efficiency"]["models"]:
        problems.append(f"label_efficiency.models: must include the comparison baseline {base!r}")
    graph = ExperimentGraph(config["experiments"])
    problems.extend(graph.problems())
    le = config["label_efficiency"]["experiment"]
    if le not in graph.own:
        problems.append(f"label_efficiency.experiment: {le!r} is not an experiment with its own dataset "
                        f"(one of {graph.own})")
    return problems


def load(path, schema_path, overrides: list | None = None) -> dict:
    """Load a config file, deep-merge override files over it, validate, return it."""
    config = yaml.safe_load(Path(path).read_text())
    for extra in overrides or []:
        config = deep_merge(config, yaml.safe_load(Path(extra).read_text()) or {})
    return validate(config, schema_path)


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
