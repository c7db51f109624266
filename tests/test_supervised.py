import numpy as np
import torch

from sdssclr.data import Objects
from sdssclr.models import MargNetCNN, PhotometryANN
from sdssclr.supervised import predict_linear, random_shift, subsample_train


def objects(n_per=(30, 30, 30)):
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(n_per)])
    split = np.array((["train"] * 20 + ["val"] * 5 + ["test"] * 5) * 3)
    n = len(labels)
    return Objects(objid=np.arange(n), stamps=np.zeros((n, 5, 8, 8), np.float32), features=np.zeros((n, 24), np.float32),
                   psf_fwhm_px=np.ones((n, 5), np.float32), classes=np.array(["X"] * n), split=split, labels=labels)


def test_label_subsampling_is_stratified_and_seeded():
    o = objects()
    s = subsample_train(o, 0.1, seed=0)
    tr = s.split == "train"
    assert np.bincount(s.labels[tr]).tolist() == [2, 2, 2]
    assert (s.split != "train").sum() == (o.split != "train").sum()
    assert np.array_equal(s.objid, subsample_train(o, 0.1, seed=0).objid)
    assert not np.array_equal(s.objid, subsample_train(o, 0.1, seed=1).objid)
    assert np.bincount(subsample_train(o, 0.001, seed=0).labels[subsample_train(o, 0.001, seed=0).split == "train"]).tolist() == [1, 1, 1]
    assert subsample_train(o, 1.0, seed=0) is o


def test_random_shift_moves_whole_images_with_zero_fill():
    x = torch.zeros(50, 5, 32, 32)
    x[:, :, 16, 16] = 1.0
    y = random_shift(x, 3, torch.Generator().manual_seed(0))
    pos = y[:, 0].flatten(1).argmax(1)
    r, c = pos // 32, pos % 32
    assert ((r - 16).abs() <= 3).all() and ((c - 16).abs() <= 3).all() and len(set(zip(r.tolist(), c.tolist()))) > 5
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)))


def test_margnet_networks_have_the_paper_shape():
    n = sum(p.numel() for p in MargNetCNN(3).parameters())
    assert 25e6 < n < 28e6  # paper: ~25.5 M
    layers = [m for m in PhotometryANN(2).net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in layers] == [1024, 256, 128, 64, 32, 2]


def test_binary_linear_probe_prediction(tmp_path):
    from sdssclr.pretrain import write_embeddings
    from sdssclr.supervised import Scaler

    o = objects((3, 3, 0))
    o = o.subset(np.arange(6))
    emb = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]], np.float32)
    write_embeddings(o.objid, emb, tmp_path / "e.parquet", {"source": "synthetic"})
    ident = Scaler(np.zeros(25), np.ones(25))
    model = {"feat_scaler": Scaler(np.zeros(24), np.ones(24)).state(), "scaler": ident.state(),
             "coef": torch.tensor([[1.0] + [0.0] * 24]), "intercept": torch.tensor([0.0])}
    assert predict_linear(model, o, tmp_path / "e.parquet").tolist() == [0, 0, 0, 1, 1, 1]
