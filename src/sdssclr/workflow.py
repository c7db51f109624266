"""Glue used by the Snakefile itself (not by the science code)."""

from __future__ import annotations

import math
import os
import subprocess


def export_package_path(src: str) -> None:
    """Put ``src`` first on PYTHONPATH so that rule scripts, which Snakemake runs in fresh Python
    processes (inside conda envs too), import this checkout's sdssclr without installing it.
    Every job, local or on a cluster node, parses the Snakefile and so calls this again."""
    parts = [src, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src)]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)


# --- the cluster's nodes against the jobs' requests, before anything is submitted -------------

#: sinfo's one line per node and partition: name | partition (default marked *) | CPUs | memory
#: (MB) | generic resources | the partition's time limit.
SINFO_FORMAT = "%N|%P|%c|%m|%G|%l"


def _gpus(gres: str) -> dict:
    """{model or '': count} of the GPUs in an sinfo GRES string ('gpu:2', 'gpu:a100:4(S:0-1)',
    '(null)', several comma-separated)."""
    out = {}
    for item in gres.split(","):
        parts = item.split("(")[0].strip().split(":")
        if parts[0] != "gpu" or len(parts) < 2:
            continue
        try:
            count = int(parts[-1])
        except ValueError:
            continue
        model = parts[1] if len(parts) == 3 else ""
        out[model] = out.get(model, 0) + count
    return out


def _minutes(limit: str) -> float:
    """An sinfo time limit ('infinite', '2-00:00:00', '12:00:00', '30:00', '45') in minutes."""
    if limit in ("infinite", "UNLIMITED", "n/a", ""):
        return math.inf
    days, _, clock = limit.rpartition("-")
    fields = [int(x) for x in clock.split(":")]
    h, m, s = ([0] * (3 - len(fields)) + fields) if len(fields) > 1 else (0, fields[0], 0)
    return (int(days) if days else 0) * 1440 + h * 60 + m + s / 60


def parse_sinfo(text: str) -> list[dict]:
    """Nodes of ``sinfo -h -N -o SINFO_FORMAT`` output: name, partition, default (bool), cpus,
    mem_mb, gpus ({model: count}), max_minutes."""
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, partition, cpus, mem, gres, limit = line.strip().split("|")
        nodes.append({"name": name, "partition": partition.rstrip("*"), "default": partition.endswith("*"),
                      "cpus": int(cpus.rstrip("+")), "mem_mb": int(mem.rstrip("+")), "gpus": _gpus(gres),
                      "max_minutes": _minutes(limit)})
    return nodes


def slurm_nodes() -> list[dict]:
    """The cluster's nodes as sinfo reports them (see :func:`parse_sinfo`)."""
    res = subprocess.run(["sinfo", "-h", "-N", "-o", SINFO_FORMAT], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"sinfo failed ({res.returncode}): {res.stderr.strip()}")
    return parse_sinfo(res.stdout)


def job_request(rule: str, threads: int, resources) -> dict:
    """What one job asks the scheduler for: the rule, CPUs, memory, GPUs (and type), partition,
    wall time; ``resources`` is the job's resource mapping (Snakemake's ``job.resources``)."""
    get = resources.get
    gpus = get("gpu", 0) or 0
    return {"rule": rule, "cpus": int(get("cpus_per_task", 0) or threads or 1), "mem_mb": get("mem_mb"),
            "gpus": int(gpus) if str(gpus).isdigit() else 0, "gpu_model": get("gpu_model") or "",
            "partition": get("slurm_partition") or "", "runtime": get("runtime")}


def _fits(req: dict, node: dict) -> bool:
    """Whether ``node`` can take ``req`` (its partition is chosen by the caller)."""
    if req["cpus"] > node["cpus"] or (req["mem_mb"] or 0) > node["mem_mb"]:
        return False
    if req["runtime"] and float(req["runtime"]) > node["max_minutes"]:
        return False
    if req["gpus"]:
        have = node["gpus"].get(req["gpu_model"], 0) if req["gpu_model"] else sum(node["gpus"].values())
        if req["gpus"] > have:
            return False
    return True


def _describe(req: dict) -> str:
    gpu = f", {req['gpus']} GPU{'s' if req['gpus'] > 1 else ''}" + (f" ({req['gpu_model']})" if req["gpu_model"] else "")
    where = f" in partition {req['partition']}" if req["partition"] else " in the default partition"
    time = f", {req['runtime']} min" if req["runtime"] else ""
    return f"{req['cpus']} CPUs, {req['mem_mb'] or 0} MB{gpu}{time}{where}"


def unschedulable(requests, nodes: list[dict]) -> list[str]:
    """One message per rule whose request no node can satisfy (the scheduler would leave it
    pending forever), naming the rule, the request and the largest node of that partition. A
    job without a partition is checked against the default partition (all nodes if none is)."""
    default = {n["partition"] for n in nodes if n["default"]}
    problems = {}
    for req in requests:
        pool = [n for n in nodes if (n["partition"] == req["partition"] if req["partition"]
                                     else (not default or n["partition"] in default))]
        if req["rule"] in problems or any(_fits(req, n) for n in pool):
            continue
        if not pool:
            problems[req["rule"]] = (f"rule {req['rule']} asks for {_describe(req)}: the cluster has no such "
                                     f"partition (partitions: {', '.join(sorted({n['partition'] for n in nodes}))})")
            continue
        big = max(pool, key=lambda n: (n["cpus"], n["mem_mb"]))
        gpus = sum(big["gpus"].values())
        limit = "no limit" if math.isinf(big["max_minutes"]) else f"{big['max_minutes']:.0f} min"
        problems[req["rule"]] = (f"rule {req['rule']} asks for {_describe(req)}, which no node offers (largest: "
                                 f"{big['name']}, {big['cpus']} CPUs, {big['mem_mb']} MB, {gpus} GPUs, {limit}); "
                                 "lower it in profiles/slurm/config.yaml (set-threads / set-resources)")
    return list(problems.values())


def check_cluster_requests(workflow) -> None:
    """Stop a SLURM run before submitting anything when a job asks for more than any node offers,
    or when a workstation's global gpu counter would serialise the cluster's GPU jobs. Called from
    the Snakefile's ``onstart``; other executors are left alone."""
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is None or plugin.name != "slurm":
        return
    problems = []
    counter = workflow.global_resources.get("gpu")
    counter = getattr(counter, "value", counter)  # a Resource in Snakemake 9, an int before
    if isinstance(counter, int) and not isinstance(counter, bool):
        problems.append(f"a global gpu counter of {counter} is set (profiles/default loaded as the workflow profile, "
                        f"or --resources gpu={counter}): on SLURM it lets {counter} GPU job(s) run on the whole "
                        "cluster at a time. Run with --workflow-profile profiles/slurm, which replaces "
                        "profiles/default; the scheduler counts the GPUs")
    requests = [job_request(job.rule.name, job.threads, job.resources) for job in workflow.dag.needrun_jobs()
                if not job.is_local]
    problems += unschedulable(requests, slurm_nodes())
    if problems:
        raise UnschedulableError("this run cannot go to SLURM as configured (nothing was submitted):\n  "
                                 + "\n  ".join(problems))


class UnschedulableError(RuntimeError):
    """A job's request exceeds every node of the cluster."""
