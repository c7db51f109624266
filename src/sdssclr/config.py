"""Configuration: validation against the workflow's JSON schema, with errors naming the key."""

from __future__ import annotations

from pathlib import Path

import yaml


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
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - allowed):
                problems.append(f"{_key([*err.absolute_path, extra])}: unknown key")
            continue
        problems.append(f"{_key(err.absolute_path)}: {err.message}")
    if not problems:
        problems.extend(_relations(config))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _relations(config: dict) -> list[str]:
    problems = []
    experiments = config["experiments"]
    for name, exp in experiments.items():
        if "train_from" in exp:
            parent = experiments.get(exp["train_from"])
            if parent is None or "dataset" not in parent:
                problems.append(f"experiments.{name}.train_from: {exp['train_from']!r} is not an "
                                "experiment with its own dataset")
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
