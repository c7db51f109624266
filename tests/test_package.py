"""The package's architecture, as a newcomer relies on it: stages that import only from earlier
stages, no reaching into another module's private names, and table/figure code free of torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import imports_of

SRC = Path(__file__).resolve().parents[1] / "src" / "sdssclr"
#: The stages in pipeline order; every other module is a shared piece (or the command line).
STAGES = ("survey", "samples", "stamps", "learn", "results")


def modules():
    """(dotted name, path) of every module of the package."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def imports(name: str, path: Path):
    """(node, absolute module, imported names) of every import of the module, at any depth."""
    return imports_of(path, package_of(name, path))


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_stage_of_every_module_is_found():
    found = {stage_of(n) for n, _ in modules()}
    assert found == {*STAGES, None}


def test_no_import_climbs_back_up_a_stage():
    """A stage imports shared modules and earlier stages only; shared modules import no stage."""
    wrong = []
    for name, path in modules():
        if name == "sdssclr.__main__":  # the command line sits on top of every stage
            continue
        own = stage_of(name)
        for node, module, names in imports(name, path):
            if not module.startswith("sdssclr"):
                continue
            targets = [module] + [f"{module}.{n}" for n in names if module in ("sdssclr", *(f"sdssclr.{s}" for s in STAGES))]
            for target in targets:
                theirs = stage_of(target)
                if theirs is None:
                    continue
                if own is None or STAGES.index(theirs) > STAGES.index(own):
                    wrong.append(f"{path.relative_to(SRC.parent)}:{node.lineno} ({own or 'shared'}) imports {target}")
    assert not wrong, "imports against the pipeline order:\n" + "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another():
    wrong = []
    for name, path in modules():
        tree = ast.parse(path.read_text())
        module_aliases = set()
        for node, module, names in imports(name, path):
            if not module.startswith("sdssclr"):
                continue
            for alias in getattr(node, "names", []):
                if isinstance(node, ast.ImportFrom) and alias.name.startswith("_") and not alias.name.startswith("__"):
                    wrong.append(f"{path.relative_to(SRC.parent)}:{node.lineno} imports {module}.{alias.name}")
                module_aliases.add((alias.asname or alias.name).split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                wrong.append(f"{path.relative_to(SRC.parent)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not wrong, "private names used across modules:\n" + "\n".join(wrong)


def test_the_checker_sees_a_private_import_and_a_climbing_import(tmp_path, monkeypatch):
    """The two checks above on a constructed package, so that they cannot pass by seeing nothing."""
    pkg = tmp_path / "sdssclr"
    (pkg / "survey").mkdir(parents=True)
    (pkg / "results").mkdir()
    for d in (pkg, pkg / "survey", pkg / "results"):
        (d / "__init__.py").write_text("")
    (pkg / "results" / "tables.py").write_text("def _pyplot():\n    pass\n")
    (pkg / "survey" / "fetch.py").write_text("from ..results.tables import _pyplot\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    with pytest.raises(AssertionError, match="survey/fetch.py:1 \\(survey\\) imports sdssclr.results.tables"):
        test_no_import_climbs_back_up_a_stage()
    with pytest.raises(AssertionError, match="imports sdssclr.results.tables._pyplot"):
        test_no_module_imports_a_private_name_of_another()


def test_no_results_module_imports_torch_at_load():
    """Tables, figures and reports run in envs/data.yaml, which has no torch."""
    names = [n for n, _ in modules() if stage_of(n) == "results"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "    if 'torch' in sys.modules:\n"
            "        sys.exit(f'{name} imports torch')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:] or res.stdout
