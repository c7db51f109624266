"""The check that stops a SLURM run before submission when no node can take a job's request
(hand-written sinfo output; no scheduler needed)."""

import math

from sdssclr.workflow import job_request, parse_sinfo, unschedulable

SINFO = """\
gpu01|gpu*|32|256000|gpu:a100:4(S:0-1)|2-00:00:00
gpu02|gpu*|32|256000|gpu:a100:4(S:0-1)|2-00:00:00
cpu01|cpu|64|512000|(null)|infinite
cpu01|debug|64|512000|(null)|30:00
"""


def test_sinfo_lines_become_nodes_with_their_gpus_and_time_limits():
    nodes = parse_sinfo(SINFO)
    assert [(n["name"], n["partition"], n["default"]) for n in nodes] == [
        ("gpu01", "gpu", True), ("gpu02", "gpu", True), ("cpu01", "cpu", False), ("cpu01", "debug", False)]
    assert nodes[0]["gpus"] == {"a100": 4} and nodes[0]["cpus"] == 32 and nodes[0]["mem_mb"] == 256000
    assert nodes[0]["max_minutes"] == 2880 and math.isinf(nodes[2]["max_minutes"]) and nodes[3]["max_minutes"] == 30
    assert nodes[2]["gpus"] == {}
    assert parse_sinfo("n1|p*|16|64000|gpu:2,gpu:v100:1|1:00:00")[0]["gpus"] == {"": 2, "v100": 1}


def request(rule="train", threads=4, **resources):
    return job_request(rule, threads, resources)


def test_requests_that_fit_a_node_pass():
    nodes = parse_sinfo(SINFO)
    fitting = [request(mem_mb=32000, gpu=1, runtime=720), request("pretrain", 8, mem_mb=200000, gpu=4),
               request("pool", 1, mem_mb=8000, slurm_partition="cpu", runtime=100000),
               request("train", 4, gpu=1, gpu_model="a100")]
    assert unschedulable(fitting, nodes) == []


def test_a_request_beyond_every_node_is_named_with_the_rule_and_the_largest_node():
    nodes = parse_sinfo(SINFO)
    cases = {
        "more CPUs": (request(threads=48), "48 CPUs"),
        "more memory": (request(mem_mb=300000), "300000 MB"),
        "more GPUs": (request(gpu=8), "8 GPUs"),
        "an absent GPU type": (request(gpu=1, gpu_model="h100"), "(h100)"),
        "longer than the partition allows": (request(runtime=3000), "3000 min"),
        "GPUs in a CPU partition": (request(gpu=1, slurm_partition="cpu"), "partition cpu"),
    }
    for what, (req, text) in cases.items():
        [message] = unschedulable([req], nodes)
        assert message.startswith("rule train asks for") and text in message, what
        assert "largest:" in message and "profiles/slurm/config.yaml" in message, what


def test_one_message_per_rule_and_unknown_partitions_are_named():
    nodes = parse_sinfo(SINFO)
    problems = unschedulable([request(threads=99), request(threads=99), request("pretrain", 8, gpu=1,
                                                                                 slurm_partition="big")], nodes)
    assert len(problems) == 2
    assert "rule pretrain" in problems[1] and "no such partition" in problems[1] and "cpu, debug, gpu" in problems[1]


def test_without_a_default_partition_any_node_may_take_the_job():
    nodes = parse_sinfo(SINFO.replace("gpu*", "gpu"))
    assert unschedulable([request(threads=64, mem_mb=500000)], nodes) == []  # cpu01 has 64 CPUs
    assert len(unschedulable([request(threads=64, gpu=1)], nodes)) == 1  # but no GPU
