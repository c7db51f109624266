"""The cluster profile against a real SLURM: the single-node scheduler `.ci/slurm start` brings
up (Debian's slurmctld, slurmd and munge; a node declared with 16 CPUs, 64 GB and two GPUs).
Without a reachable SLURM these tests are skipped, so `pytest` on a laptop still passes; the
dry-run test needs only the executor plugin."""

import re
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import REPO

TINY = REPO / "tests" / "data" / "tiny.yaml"
#: Two MargNet runs (GPU jobs) of experiment 1 and everything they need: 10 jobs.
TARGETS = [f"results/runs/exp1/SG/margnet/split2023/seed{seed}/metrics.json" for seed in (0, 1)]


def _plugin_missing():
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    return None


def _slurm_unreachable():
    if _plugin_missing():
        return _plugin_missing()
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return "no SLURM client commands (start one with .ci/slurm start)"
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: no SLURM controller reachable"
    if res.returncode != 0 or "up" not in res.stdout:
        return f"no SLURM controller reachable (sinfo: {res.stderr.strip()[:200]})"
    return None


needs_slurm = pytest.mark.skipif(bool(_slurm_unreachable()), reason=_slurm_unreachable() or "")


def snakemake_slurm(workdir, *args, timeout=1800):
    """Snakemake with the cluster profile as written, plus what this scheduler needs: status by
    squeue (no accounting daemon) polled every few seconds, and one thread per job as the local
    run that the outputs are compared with uses."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--workflow-profile", str(REPO / "profiles" / "slurm"),
           "--configfile", str(TINY), "--directory", str(workdir), "-s", str(REPO / "Snakefile"),
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
           "--latency-wait", "10"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=timeout)


def scontrol_job(jobid: str) -> dict:
    res = subprocess.run(["scontrol", "show", "job", "-o", jobid], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return dict(re.findall(r"(\w+)=(\S*)", res.stdout))


def same(a, b) -> bool:
    """Equal nested state (dicts, lists, tensors, numbers): what two checkpoints hold."""
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.skipif(bool(_plugin_missing()), reason=_plugin_missing() or "")
def test_a_dry_run_with_the_cluster_profile_asks_the_scheduler_for_a_gpu_for_every_gpu_job(tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "results/table1.md", "--workflow-profile",
           str(REPO / "profiles" / "slurm"), "--configfile", str(TINY), "--directory", str(tmp_path),
           "-s", str(REPO / "Snakefile"), "-n"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "Using workflow specific profile" in out and "profiles/slurm" in out
    assert "Provided resources: gpu" not in out  # no workstation counter on the cluster
    jobs = re.findall(r"rule (\w+):\n(.*?)\n\n", out, re.S)
    gpu_rules = {"pretrain", "train"}
    seen = {rule: 0 for rule in gpu_rules}
    for rule, body in jobs:
        resources = re.search(r"resources: (.*)", body).group(1)
        model = re.search(r"model=([\w-]+)", body)
        if rule == "pretrain" or (rule == "train" and model.group(1) != "gbdt"):
            assert "gpu=1" in resources.split(", "), (rule, resources)
            seen[rule] += 1
        else:
            assert "gpu=1" not in resources.split(", "), (rule, resources)  # gpu=0: no --gpus
    assert seen["pretrain"] > 0 and seen["train"] > 0


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm")
    res = snakemake_slurm(workdir, *TARGETS, "--max-threads", "1")
    return workdir, res


@pytest.mark.slurm
@pytest.mark.slow
@needs_slurm
def test_the_cluster_profile_runs_every_job_as_a_slurm_job_with_the_local_runs_outputs(slurm_run, tiny_run):
    workdir, res = slurm_run
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    total = int(re.search(r"^total\s+(\d+)", out, re.M).group(1))
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", out)
    assert len(submitted) == total == 10, out[-3000:]
    jobs = {jobid: (rule, scontrol_job(jobid)) for jobid, rule in submitted}
    for jobid, (rule, info) in jobs.items():
        assert info["JobState"] == "COMPLETED" and info["WorkDir"] == str(workdir), (jobid, rule, info)
    # the two GPU jobs: each given a GPU by the scheduler, side by side on the two-GPU node
    trains = [info for rule, info in jobs.values() if rule == "train"]
    assert len(trains) == 2 and all(info["TresPerJob"] == "gres:gpu:1" for info in trains)
    assert max(info["StartTime"] for info in trains) < min(info["EndTime"] for info in trains)
    # the outputs are the local run's (tests/conftest.py: tiny_run, one thread per job as here)
    results = workdir / "results"
    produced = [p for p in results.rglob("*") if p.is_file() and not {"logs", "benchmarks"} & set(p.parts)]
    assert len(produced) > 20
    for path in produced:
        local = tiny_run / path.relative_to(results)
        if path.suffix == ".pt":  # a zip archive: compare the weights
            assert same(torch.load(path, weights_only=True), torch.load(local, weights_only=True)), path
        else:
            assert path.read_bytes() == local.read_bytes(), path


@pytest.mark.slurm
@needs_slurm
def test_a_request_no_node_can_satisfy_stops_the_run_naming_the_rule_before_anything_is_submitted(tmp_path):
    for option, wanted in ((["--set-threads", "train=64"], "rule train asks for 64 CPUs"),
                           (["--set-resources", "train:mem_mb=900000"], "900000 MB")):
        res = snakemake_slurm(tmp_path, TARGETS[0], *option, timeout=300)
        out = res.stdout + res.stderr
        assert res.returncode != 0 and wanted in out and "which no node offers" in out, out[-3000:]
        assert "nothing was submitted" in out and "submitted with SLURM jobid" not in out
