"""Fixtures shared by the stage folders. The sdssclr package is imported as installed
(``pip install -e ".[dev]"``); pytest puts this folder on the path, for ``loopback`` and this module."""

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def schema():
    return SCHEMA


@pytest.fixture()
def base_config():
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())


def cuts_config():
    return dict(compact_max_ratio=0.5, faint_rule="mean_mag", faint_min_mag=20.0, faint_r_max=23.0,
                err_ratio_max=0.1, psfmagerr_r_max=0.2)


def run_snakemake(workdir, *args, cores: int = 2):
    import subprocess

    cmd = [sys.executable, "-m", "snakemake", *args, "--directory", str(workdir), "--cores", str(cores),
           "--workflow-profile", "none", "-s", str(REPO / "Snakefile")]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)


def stamp_sets(results, *names, split=2023):
    """Index paths of the named stamp sets of a finished run (default: every set of the split seed)."""
    root = Path(results) / "stamps" / f"split{split}"
    return [root / n / "index.parquet" for n in names] if names else sorted(root.glob("*/index.parquet"))


def all_stamps(results, *names, split=2023):
    """The stamp sets' index rows together, each object once (as sdssclr.stamps.shards.read_index)."""
    from sdssclr.stamps.shards import read_index

    return read_index(stamp_sets(results, *names, split=split))


@pytest.fixture(scope="session")
def synthetic_catalog():
    """One synthetic catalogue measured from its frames (rendered in memory), shared by the tests
    that need catalogue rows: 9,000 objects in 150 fields, 60% of them galaxies (few galaxies are
    compact enough for the samples)."""
    from sdssclr.survey.synthetic import generate_catalog

    return generate_catalog(9000, 60, (320, 320), seed=5, class_fractions=(0.25, 0.6, 0.15), threads=2)[0]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow (default target) on the tiny synthetic config, run once per session."""
    workdir = tmp_path_factory.mktemp("wf")
    # one thread per job: the tiny jobs are start-up bound, so two at a time is faster
    res = run_snakemake(workdir, "--configfile", str(REPO / "tests" / "data" / "tiny.yaml"), "--max-threads", "1")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return workdir / "results"


def build_tiny_data(root, n_objects=1400, per_class=40):
    """Catalogue -> pools -> exp1 split -> stamps with the package functions alone (no Snakemake),
    for machines that have no Snakemake (the GPU test)."""
    import yaml

    from sdssclr.samples.pools import write_pool
    from sdssclr.samples.splits import write_sample, write_split
    from sdssclr.stamps.shards import merge_index, run_shard, write_plan
    from sdssclr.survey.fetch import frame_source
    from sdssclr.survey.synthetic import generate_survey

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    root = Path(root)
    # most objects galaxies: about one galaxy in twelve passes the compact cut
    generate_survey(root / "catalog.parquet", root / "frames", n_objects=n_objects, objects_per_field=30,
                    frame_shape=(192, 192), seed=1, class_fractions=(0.25, 0.55, 0.2))
    write_pool(root / "catalog.parquet", "compact", cfg["cuts"], root / "pool.parquet")
    write_sample("exp1", cfg["experiments"]["exp1"], per_class, 0, root / "sample_exp1.parquet",
                 pool_path=root / "pool.parquet")
    write_split("exp1", cfg["experiments"]["exp1"], 0, root / "exp1.parquet", sample_path=root / "sample_exp1.parquet")
    write_plan([root / "sample_exp1.parquet"], 1, root / "stamps" / "plan.parquet")
    run_shard(root / "stamps" / "plan.parquet", 0, frame_source({"source": "synthetic"}, root / "frames"),
              root / "stamps" / "shard-0000.npy", root / "stamps" / "shard-0000.parquet", size=32, policy="drop")
    merge_index([root / "stamps" / "shard-0000.parquet"], root / "sample_exp1.parquet", root / "stamps" / "index.parquet")
    return root / "exp1.parquet", root / "stamps" / "index.parquet"


def imports_of(path, package: str):
    """(node, absolute module, imported names) of every import in the Python file ``path``, at any
    depth (lazy imports inside functions too); relative imports are resolved against ``package``,
    the package the file belongs to."""
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(parts + ([node.module] if node.module else []))
            yield node, module, [a.name for a in node.names]

