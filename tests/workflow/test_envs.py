"""Every rule's conda environment lists the third-party packages its script imports, directly or
through the sdssclr modules it reaches, so that ``--use-conda`` cannot fail on a missing import."""

import re
import sys
from pathlib import Path

import yaml

from conftest import imports_of

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "workflow" / "rules"
SRC = REPO / "src"
#: Import name -> conda-forge package name, for every third-party import of the package.
CONDA_NAME = {"numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "pyarrow": "pyarrow", "astropy": "astropy",
              "astroquery": "astroquery", "requests": "requests", "sklearn": "scikit-learn",
              "matplotlib": "matplotlib-base", "tqdm": "tqdm", "yaml": "pyyaml", "jsonschema": "jsonschema",
              "torch": "pytorch", "threadpoolctl": "threadpoolctl", "sep": "sep",
              "faiss": "faiss-cpu"}


def rules() -> dict[str, dict[str, str]]:
    """rule name -> {'conda': path, 'script': path}, read from the rule files."""
    out, current, want = {}, None, None
    for smk in sorted(RULES.glob("*.smk")):
        for line in smk.read_text().splitlines():
            if m := re.match(r"\s*rule (\w+):", line):
                current = out.setdefault(m.group(1), {})
                want = None
            elif m := re.match(r"\s*(conda|script):\s*$", line):
                want = m.group(1)
            elif want and current is not None and (m := re.match(r'\s*"([^"]+)"', line)):
                current[want] = str((RULES / m.group(1)).resolve())
                want = None
    return out


def module_path(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def third_party(script: Path) -> dict[str, str]:
    """Top-level third-party import names reached from ``script`` -> the first file importing it."""
    found, seen, todo = {}, set(), [(script, None)]
    while todo:
        path, package = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node, base, names in imports_of(path, package):
            mods = [base] + [f"{base}.{n}" for n in names]
            for mod in mods:
                top = mod.split(".")[0]
                if top == "sdssclr":
                    parts = mod.split(".")
                    for k in range(1, len(parts) + 1):  # the packages on the way are imported too
                        p = module_path(".".join(parts[:k]))
                        if p is not None:
                            pkg = ".".join(parts[:k]) if p.name == "__init__.py" else ".".join(parts[:k - 1])
                            todo.append((p, pkg))
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def env_packages(env: str) -> set[str]:
    deps = yaml.safe_load(Path(env).read_text())["dependencies"]
    return {re.split(r"[<>=!\s]", d, maxsplit=1)[0] for d in deps if isinstance(d, str)}


def test_every_rule_has_an_env_and_a_script():
    found = rules()
    assert {"synthetic_survey", "pool", "stamp_shard", "pretrain", "train", "table1", "conformal"} <= set(found)
    for name, r in found.items():
        if name == "all":
            continue
        assert "conda" in r and Path(r["conda"]).exists(), name
        assert "script" in r and Path(r["script"]).exists(), name


def test_each_env_lists_what_its_rules_import():
    missing = []
    for name, r in rules().items():
        if "script" not in r:
            continue
        have = env_packages(r["conda"])
        for top, where in sorted(third_party(Path(r["script"])).items()):
            assert top in CONDA_NAME, f"{where} imports {top}: add its conda name to CONDA_NAME"
            if CONDA_NAME[top] not in have:
                missing.append(f"rule {name} ({Path(r['conda']).name}) lacks {CONDA_NAME[top]}, imported by {where}")
    assert not missing, "\n".join(missing)


def test_tables_and_figures_run_without_torch():
    envs = {name: Path(r["conda"]).name for name, r in rules().items() if "conda" in r}
    for name in ("table1", "experiment_table", "label_efficiency", "confusion_plot", "conformal", "gallery",
                 "embedding_map", "pretrain_curve_plot", "accuracy_vs_magnitude", "html_page", "similarity_index"):
        assert envs[name] == "data.yaml", name
    assert "pytorch" not in env_packages(REPO / "envs" / "data.yaml")


def test_the_import_walk_follows_the_package_into_torch():
    """The walk is not blind: the training adapter reaches torch through sdssclr.learn."""
    found = third_party(REPO / "workflow" / "scripts" / "train.py")
    assert "torch" in found and found["torch"].startswith("src/sdssclr/learn/")
