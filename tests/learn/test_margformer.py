"""MargFormer: photometric features query image tokens through cross-attention."""

import numpy as np
import pytest
import torch

from sdssclr.learn.augment import Normalizer
from sdssclr.learn.checkpoints import save_atomic
from sdssclr.learn.classifiers import build
from sdssclr.learn.encoders import ENCODERS, build_encoder
from sdssclr.learn.networks import MargFormer, MargFormerHead


def head(**kw):
    torch.manual_seed(0)
    return MargFormerHead(token_dim=32, n_tokens=16, n_classes=3, dim=24, depth=2, heads=4, queries=3, **kw).eval()


def test_cross_attention_shapes():
    h = head()
    out = h(torch.randn(7, 24), torch.randn(7, 16, 32))
    assert out.shape == (7, 3)
    for name in ENCODERS:
        enc = build_encoder(name, 28).eval()
        tokens = enc.tokens(torch.zeros(2, 5, 28, 28))
        assert tokens.shape[0] == 2 and tokens.shape[2] == enc.dim
        assert tokens.shape[1] == (16 if ENCODERS[name]["kind"] == "resnet" else 49)  # 4x4 cells, 7x7 patches
        assert enc(torch.zeros(2, 5, 28, 28)).shape == (2, enc.dim)
        net = MargFormer(enc, 2, 28, dim=16, depth=1, heads=2, queries=2)
        assert net(torch.zeros(3, 5, 28, 28), torch.zeros(3, 24)).shape == (3, 2)


def test_the_query_is_built_from_the_features():
    h = head()
    feats, tokens = torch.randn(5, 24), torch.randn(5, 16, 32)
    base = h(feats, tokens)
    for k in (0, 11, 23):
        moved = feats.clone()
        moved[:, k] += 1.0
        assert not torch.allclose(h(moved, tokens), base, atol=1e-5)  # every feature reaches the query
    # the features alone set the query: the same image with other photometry answers differently
    assert not torch.allclose(h(feats.flip(0), tokens), base.flip(0), atol=1e-5)


def test_permuting_tokens_with_their_positions_leaves_the_output_unchanged():
    h = head()
    feats, tokens = torch.randn(4, 24), torch.randn(4, 16, 32)
    base = h(feats, tokens)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        h.pos.copy_(h.pos[:, perm])
    assert torch.allclose(h(feats, tokens[:, perm]), base, atol=1e-5)
    # ...while permuting the tokens alone changes it: the positions matter
    with torch.no_grad():
        h.pos.copy_(h.pos[:, torch.argsort(perm)])
    assert not torch.allclose(h(feats, tokens[:, perm]), base, atol=1e-4)


def saved_encoder(path, name: str):
    """An 8-px encoder ``name`` saved as a pretraining run saves it (its weights stand for pretrained ones)."""
    enc = build_encoder(name, 8)
    norm = Normalizer("robust", [1.0] * 5, [0.0] * 5, [0.05] * 5)
    save_atomic({"encoder": enc.state_dict(), "encoder_name": name, "dim": enc.dim, "normalizer": norm.to_dict(),
                 "crop": 8, "seed": 0, "config": {}, "source": "synthetic"}, path)
    return path


def random_objects(n: int, seed: int):
    """``n`` objects of random 10-px stamps and features, two classes, split train/val/test in turn."""
    from sdssclr.stamps.objects import Objects

    rng = np.random.default_rng(seed)
    return Objects(objid=np.arange(n), stamps=rng.normal(size=(n, 5, 10, 10)).astype(np.float32),
                   features=rng.normal(size=(n, 24)).astype(np.float32), psf_fwhm_px=np.ones((n, 5), np.float32),
                   classes=np.array(["X"] * n), split=np.array(["train", "val", "test"] * (n // 3)),
                   labels=rng.integers(0, 2, n))


@pytest.mark.parametrize("encoder", ["small", "vit-small"])
def test_the_control_is_the_pretrained_model_architecture_from_random_init(encoder, tmp_path):
    torch.manual_seed(123)  # stands for pretrained weights: not what the control starts from
    saved_encoder(tmp_path / "encoder.pt", encoder)
    cfg = {"feature_scaling": "quantile", "dim": 16, "depth": 1, "heads": 2, "queries": 2, "dropout": 0.1, "lr": 1e-3,
           "encoder_lr": [1e-4, 1e-3], "weight_decay": 0.05, "batch_size": 32, "head_epochs": 1, "max_epochs": 1, "patience": 1, "min_steps": 1}
    o = random_objects(60, seed=0)
    pre = build("simclr-margformer", 2, cfg)
    pre.fit(o, seed=0, encoder_path=tmp_path / "encoder.pt")
    ctl = build("margformer", 2, dict(cfg, encoder={"name": encoder, "crop": 8, "normalization": "robust"}))
    ctl.fit(o, seed=0)
    a, b = pre.net.state_dict(), ctl.net.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    assert sum(p.numel() for p in pre.net.parameters()) == sum(p.numel() for p in ctl.net.parameters())
    assert str(pre.net) == str(ctl.net)
    # ...but only one of them starts from the pretrained weights
    first = next(k for k in a if k.startswith("encoder."))
    assert not torch.equal(a[first], b[first])


def test_the_encoder_learning_rate_is_chosen_on_validation_from_the_same_grid_for_both(tmp_path, caplog):
    import logging
    import re

    saved_encoder(tmp_path / "encoder.pt", "vit-small")
    grid = [1e-5, 1e-3, 3e-2]
    cfg = {"feature_scaling": "quantile", "dim": 16, "depth": 1, "heads": 2, "queries": 1, "dropout": 0.1, "lr": 1e-3,
           "encoder_lr": grid, "weight_decay": 0.05, "batch_size": 32, "head_epochs": 1, "max_epochs": 2, "patience": 1,
           "min_steps": 1, "warmup_steps": 0}
    o = random_objects(90, seed=1)
    for name, extra in (("simclr-margformer", {}),
                        ("margformer", {"encoder": {"name": "vit-small", "crop": 8, "normalization": "robust"}})):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sdssclr.learn.classifiers"):
            report = build(name, 2, dict(cfg, **extra)).fit(o, seed=0, encoder_path=tmp_path / "encoder.pt")
        tried = {float(m.group(1)): float(m.group(2)) for m in re.finditer(
            r"encoder learning rate ([0-9.e+-]+), best validation loss ([0-9.]+)", caplog.text)}
        assert sorted(tried) == grid  # every value of the same grid, pretrained or not
        assert report["encoder_lr"] == min(tried, key=tried.get)  # the lowest validation loss wins
        assert report["end_to_end"]["best_val_loss"] == pytest.approx(tried[report["encoder_lr"]], abs=1e-4)
