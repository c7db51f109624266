"""CUDA checks (bf16 autocast, channels_last, GPU-resident data); skipped without a GPU."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import build_tiny_data
from sdssclr.learn.augment import add_blur, border_noise, rot90_flip
from sdssclr.learn.pretrain import pretrain
from sdssclr.learn.runfiles import read_embeddings
from sdssclr.learn.simclr import nt_xent

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_loss_and_augmentations_agree_with_cpu():
    torch.manual_seed(0)
    z1, z2 = torch.randn(64, 128), torch.randn(64, 128)
    assert nt_xent(z1.cuda(), z2.cuda(), 0.2).item() == pytest.approx(nt_xent(z1, z2, 0.2).item(), rel=1e-4)
    x = torch.rand(32, 5, 32, 32, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(1)
    y = rot90_flip(x, g)
    assert y.is_cuda and torch.allclose(y.sum((2, 3)), x.sum((2, 3)), rtol=1e-5)
    b = add_blur(x, torch.full((32, 5), 3.0, device="cuda"), torch.full((32, 5), 5.0, device="cuda"))
    assert b.shape == x.shape and torch.isfinite(b).all()
    assert border_noise(x).is_cuda


def test_pretraining_on_cuda(tmp_path, repo):
    split, index = build_tiny_data(tmp_path)
    cfg = yaml.safe_load((repo / "config.yaml").read_text())["pretrain"]
    cfg.update(encoder="resnet18", batch_size=64, epochs=2, warmup_epochs=1, lr=0.1, device="auto")
    pretrain(split, index, tmp_path / "enc.pt", tmp_path / "curve.tsv", tmp_path / "emb.parquet", cfg=cfg, seed=0)
    curve = pd.read_csv(tmp_path / "curve.tsv", sep="\t")
    assert np.isfinite(curve["loss"]).all() and (curve["images_per_s"] > 0).all()
    objid, emb = read_embeddings(tmp_path / "emb.parquet")
    assert emb.shape[1] == 512 and np.isfinite(emb).all() and len(objid) > 50
    print("\n" + curve.to_string(index=False))


def test_classifiers_on_cuda(tmp_path, repo):
    from sdssclr.config import deep_merge
    from sdssclr.learn.supervised import run_training
    from sdssclr.registry import MODELS, model_config

    split, index = build_tiny_data(tmp_path)
    full = deep_merge(yaml.safe_load((repo / "config.yaml").read_text()), yaml.safe_load((repo / "demo.yaml").read_text()))
    full["pretrain"].update(encoder="resnet18", epochs=1, batch_size=64, device="auto")
    pretrain(split, index, tmp_path / "enc.pt", tmp_path / "curve.tsv", tmp_path / "emb.parquet", cfg=full["pretrain"],
             seed=0)
    cls = full["classifiers"]
    for net in ("ann", "cnn", "fusion"):
        cls["margnet"][net].update(max_epochs=3)
    cls["margnet"]["cnn"].update(width=1.0, dense=1024)  # the paper-size CNN, bf16
    cls["finetune"].update(max_epochs=2)
    cls["margformer"].update(max_epochs=2)
    for model in MODELS:
        d = tmp_path / model
        m = run_training(split, index, model, "SGQ", 0, model_config(full, model), d / "model.pt", d / "m.json",
                         d / "p.parquet", encoder_path=tmp_path / "enc.pt", experiment="exp1")
        assert 0 <= m["accuracy"] <= 1 and m["n_test"] > 0
        print(model, m["accuracy"])
