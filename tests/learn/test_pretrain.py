"""Pretraining on CPU: deterministic, resumable after SIGTERM, checkpoint loadable weights-only."""

import os
import signal

import numpy as np
import pytest
import torch
import yaml

from sdssclr.learn.checkpoints import load_checkpoint
from sdssclr.learn.engine import Preempted
from sdssclr.learn.pretrain import load_encoder, pretrain
from sdssclr.learn.runfiles import read_embeddings
from conftest import stamp_sets


@pytest.fixture()
def cfg(repo):
    c = yaml.safe_load((repo / "config.yaml").read_text())["pretrain"]
    c.update(encoder="small", batch_size=32, epochs=3, warmup_epochs=1, lr=0.05, checkpoint_every=1, device="cpu")
    return c


def outputs(d):
    return dict(out_encoder=d / "encoder.pt", out_curve=d / "curve.tsv", out_embeddings=d / "emb.parquet")


def run(tiny_run, d, cfg, **kw):
    return pretrain(tiny_run / "splits" / "split2023" / "exp1.parquet", stamp_sets(tiny_run, "exp1"),
                    **outputs(d), cfg=cfg, seed=3, **kw)


def test_resume_after_sigterm_matches_an_uninterrupted_run(tiny_run, tmp_path, cfg):
    run(tiny_run, tmp_path / "a", cfg)

    def preempt(epoch, step):
        if (epoch, step) == (1, 1):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted) as exc:
        run(tiny_run, tmp_path / "b", cfg, on_step=preempt)
    assert exc.value.code == 143
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    progress = ckpt["current"]
    assert progress["stage"] == "simclr" and (progress["epoch"], progress["step"]) == (1, 2)
    assert len(progress["history"]) == 1
    assert not (tmp_path / "b" / "encoder.pt").exists()
    run(tiny_run, tmp_path / "b", cfg)  # the rerun resumes

    a = load_checkpoint(tmp_path / "a" / "encoder.pt")["encoder"]
    b = load_checkpoint(tmp_path / "b" / "encoder.pt")["encoder"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(read_embeddings(tmp_path / "a" / "emb.parquet")[1],
                          read_embeddings(tmp_path / "b" / "emb.parquet")[1])
    assert (tmp_path / "a" / "curve.tsv").read_text().split("\n")[0] == "epoch\tloss\tlr\timages_per_s\tview_sky_corr\tknn_val_acc"


def test_checkpoint_of_another_config_is_ignored(tiny_run, tmp_path, cfg):
    def preempt(epoch, step):
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted):
        run(tiny_run, tmp_path, cfg, on_step=preempt)
    cfg = dict(cfg, temperature=0.5)
    history = run(tiny_run, tmp_path, cfg)["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_encoder_checkpoint_holds_what_probes_need(tiny_run, tmp_path, cfg):
    run(tiny_run, tmp_path, dict(cfg, epochs=1))
    enc, norm, crop = load_encoder(tmp_path / "encoder.pt")
    assert crop == 28 and norm.method == "arcsinh" and len(norm.scale) == 5
    assert enc(torch.zeros(2, 5, crop, crop)).shape == (2, enc.dim)
    ckpt = load_checkpoint(tmp_path / "encoder.pt")
    assert ckpt["source"] == "synthetic"


def test_ddp_with_two_cpu_processes(tiny_run, tmp_path, cfg, repo):
    """The torchrun path (gloo on CPU): negatives gathered across processes, rank 0 writes."""
    import json
    import subprocess
    import sys

    spec = dict(split_path=str(tiny_run / "splits" / "split2023" / "exp1.parquet"), index_paths=[str(p) for p in stamp_sets(tiny_run, "exp1")],
                **{k: str(v) for k, v in outputs(tmp_path).items()}, cfg=dict(cfg, epochs=1), seed=0,
                log=str(tmp_path / "log"))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=str(repo / "src"), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "sdssclr.learn.pretrain", str(tmp_path / "spec.json")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    log = (tmp_path / "log").read_text()
    assert "x 2 process(es)" in log
    objid, emb = read_embeddings(tmp_path / "emb.parquet")
    assert np.isfinite(emb).all() and len(objid) > 0
