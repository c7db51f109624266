"""The Table 1 models behind one interface: fit, predict probabilities, weights-only state."""

import numpy as np
import pytest
import torch
import yaml

from sdssclr.learn.augment import Normalizer, random_shift
from sdssclr.learn.checkpoints import load_checkpoint, save_atomic
from sdssclr.learn.classifiers import IMPLEMENTATIONS, QuantileScaler, build, restore
from sdssclr.learn.encoders import ResNetEncoder
from sdssclr.learn.networks import MargNetCNN, PhotometryANN
from sdssclr.learn.supervised import subsample_labels
from sdssclr.registry import LABELS, MODELS, row_names
from sdssclr.stamps.objects import Objects


def objects(n_per=(30, 30, 30), size=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(n_per)])
    split = np.concatenate([np.array(["train"] * (n - 2 * (n // 6)) + ["val"] * (n // 6) + ["test"] * (n // 6))
                            for n in n_per])
    n = len(labels)
    features = rng.normal(size=(n, 24)).astype(np.float32)
    features[:, 0] += 2.0 * labels  # a learnable signal
    stamps = rng.normal(0, 0.05, (n, 5, size, size)).astype(np.float32)
    stamps[:, :, size // 2, size // 2] += (1.0 + labels)[:, None]
    return Objects(objid=np.arange(n), stamps=stamps, features=features, psf_fwhm_px=np.ones((n, 5), np.float32),
                   classes=np.array(["X"] * n), split=split, labels=labels)


def test_label_budgets_thin_training_and_validation_labels():
    o = objects((60, 60, 60))  # 40 train, 10 val, 10 test per class
    s = subsample_labels(o, 0.1, seed=0, min_val_per_class=2)
    assert np.bincount(s.labels[s.split == "train"]).tolist() == [4, 4, 4]
    assert np.bincount(s.labels[s.split == "val"]).tolist() == [2, 2, 2]  # 10% of 10 is 1: the floor of 2
    assert (s.split == "test").sum() == (o.split == "test").sum()  # the test split is never thinned
    half = subsample_labels(o, 0.5, seed=0, min_val_per_class=2)
    assert np.bincount(half.labels[half.split == "val"]).tolist() == [5, 5, 5]
    assert np.array_equal(s.objid, subsample_labels(o, 0.1, seed=0, min_val_per_class=2).objid)
    assert not np.array_equal(s.objid, subsample_labels(o, 0.1, seed=1, min_val_per_class=2).objid)
    tiny = subsample_labels(o, 0.001, seed=0, min_val_per_class=50)
    assert np.bincount(tiny.labels[tiny.split == "train"]).tolist() == [1, 1, 1]
    assert np.bincount(tiny.labels[tiny.split == "val"]).tolist() == [10, 10, 10]  # a floor above what exists
    assert subsample_labels(o, 1.0, seed=0) is o


def test_random_shift_moves_whole_images_with_zero_fill():
    x = torch.zeros(50, 5, 32, 32)
    x[:, :, 16, 16] = 1.0
    y = random_shift(x, 3, torch.Generator().manual_seed(0))
    pos = y[:, 0].flatten(1).argmax(1)
    r, c = pos // 32, pos % 32
    assert ((r - 16).abs() <= 3).all() and ((c - 16).abs() <= 3).all() and len(set(zip(r.tolist(), c.tolist()))) > 5
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)))


def released_cnn_parameters(n_classes: int, size: int = 32) -> int:
    """Parameter count of the released Keras graph (sidchaini/MargNet), layer by layer."""
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    total = conv(5, 5, 64)  # stem
    cin = 64
    for reduce, out in ((48, 64), (64, 92), (92, 128), (92, 128)):  # blocks 1-4: three reduce, 1x1, 3x3, 5x5
        total += 3 * conv(1, cin, reduce) + conv(1, reduce, out) + conv(3, reduce, out) + conv(5, reduce, out)
        cin = 3 * out + reduce
    # block 5: two reduce (92), 1x1 (128) on the input, 3x3 (128) on a reduce; the other reduce passes
    total += 2 * conv(1, cin, 92) + conv(1, cin, 128) + conv(3, 92, 128)
    flat = (128 + 128 + 92) * (size // 4) ** 2
    return total + (flat * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * n_classes + n_classes)


def test_margnet_networks_match_the_released_graph():
    for n_classes in (2, 3):
        cnn = MargNetCNN(n_classes)
        assert sum(p.numel() for p in cnn.parameters()) == released_cnn_parameters(n_classes)
        assert cnn(torch.zeros(2, 5, 32, 32)).shape == (2, n_classes)
    assert released_cnn_parameters(3) == 25_543_783  # the paper quotes ~25.5 M
    # the dense layers of the released CNN have no activation and no dropout
    assert [type(m).__name__ for m in MargNetCNN(3).head] == ["Flatten", "Linear", "Linear", "Linear"]
    layers = [m for m in PhotometryANN(2).net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in layers] == [1024, 256, 128, 64, 32, 2]


def test_quantile_scaler_matches_scikit_learn_on_continuous_features():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    x = np.c_[rng.lognormal(size=500), rng.normal(size=500), rng.exponential(size=500)]
    ref = QuantileTransformer(n_quantiles=200, output_distribution="normal").fit(x)
    mine = QuantileScaler.fit(x, 200)
    t = np.c_[rng.lognormal(size=200), rng.normal(size=200), rng.exponential(size=200)]
    inside = ((t > x.min(0)) & (t < x.max(0))).all(1)
    assert np.allclose(ref.transform(t)[inside], mine(t)[inside], atol=1e-5)
    again = QuantileScaler.from_state(mine.state())
    assert np.array_equal(again(t), mine(t))
    assert np.isfinite(mine(np.full((1, 3), 1e30))).all()  # beyond the training range: clipped, finite


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    """A (random) 'small' encoder checkpoint in the format pretraining writes."""
    path = tmp_path_factory.mktemp("enc") / "encoder.pt"
    torch.manual_seed(0)
    enc = ResNetEncoder("small")
    norm = Normalizer("robust", [1.0] * 5, [0.0] * 5, [0.05] * 5)
    save_atomic({"encoder": enc.state_dict(), "encoder_name": "small", "dim": enc.dim, "normalizer": norm.to_dict(),
                 "crop": 6, "seed": 0, "config": {}, "source": "synthetic"}, path)
    return path


def tiny_model_configs(repo, **pretrain):
    from sdssclr.config import deep_merge
    from sdssclr.registry import model_config

    full = deep_merge(yaml.safe_load((repo / "config.yaml").read_text()),
                      yaml.safe_load((repo / "tests" / "data" / "tiny.yaml").read_text()))
    full["pretrain"].update(pretrain)
    return {name: model_config(full, name) for name in MODELS}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_round_trips_through_its_weights_only_state(name, repo, encoder_file, tmp_path):
    cfg = tiny_model_configs(repo, encoder="small", normalization="robust", augment={"crop": 6})[name]
    o = objects()
    clf = build(name, 3, cfg)
    report = clf.fit(o, seed=0, encoder_path=encoder_file if MODELS[name].pretrained else None)
    assert isinstance(report, dict)
    p = clf.predict_proba(o)
    assert p.shape == (len(o), 3) and np.allclose(p.sum(1), 1, atol=1e-5) and (p >= 0).all()
    save_atomic(clf.state(), tmp_path / "model.pt")
    again = restore(load_checkpoint(tmp_path / "model.pt"), "cpu")  # weights_only=True
    assert type(again) is type(clf)
    assert np.allclose(again.predict_proba(o), p, atol=1e-6)
    comps = again.component_probas(o)
    assert set(comps) == set(MODELS[name].components)
    for q in comps.values():
        assert q.shape == p.shape


def test_gbdt_state_predicts_exactly_like_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    for n_per in ((40, 40, 40), (40, 40)):
        o = objects(n_per, seed=1)
        o.features[::7, 3] = np.nan  # missing values follow the learnt side
        cfg = {"learning_rate": 0.1, "max_iter": 30, "max_leaf_nodes": 8, "patience": 30}
        clf = build("gbdt", len(n_per), cfg)
        clf.fit(o, seed=0)
        tr, va = o.split == "train", o.split == "val"
        ref = HistGradientBoostingClassifier(learning_rate=0.1, max_iter=30, max_leaf_nodes=8, early_stopping=True,
                                             n_iter_no_change=30, random_state=0)
        ref.fit(o.features[tr], o.labels[tr], X_val=o.features[va], y_val=o.labels[va])
        assert np.allclose(clf.predict_proba(o), ref.predict_proba(o.features), atol=1e-9)


def test_one_registry_names_every_model_and_row():
    assert list(IMPLEMENTATIONS) == list(MODELS)
    assert row_names(["simclr", "margnet", "gbdt"]) == ["gbdt", "margnet", "margnet-ann", "margnet-cnn", "simclr"]
    assert set(LABELS) >= set(row_names(list(MODELS)))
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build("resnet", 2, {})


def test_margnet_ann_reaches_the_tree_on_a_synthetic_catalogue(repo, synthetic_catalog):
    """The photometric network against the photometry-only tree on a few thousand catalogue rows
    of the synthetic survey (no stamps needed): within a few points, pooled over two split seeds
    (one split's ~180 test objects move the difference by +-3 points)."""
    from sdssclr.catalog import features, labels, select_task
    from sdssclr.learn.engine import Schedule, fit, predict_logits
    from sdssclr.samples.cuts import apply_cuts, dataset_cuts
    from sdssclr.samples.splits import make_split

    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cat = synthetic_catalog
    pool = cat[apply_cuts(cat, dataset_cuts("compact", cfg["cuts"]))]
    per_class = int(pool["class"].value_counts().min() * 0.95)
    assert per_class > 400
    tree_correct, ann_correct = [], []
    for split_seed in (0, 1):
        s = select_task(make_split(pool, per_class, [6, 1, 1], split_seed, "exp1"), "SGQ")
        x, y, split = features(s), labels(s, "SGQ"), s["split"].to_numpy()
        o = Objects(objid=s["objID"].to_numpy(), stamps=np.zeros((len(s), 5, 4, 4), np.float32), features=x,
                    psf_fwhm_px=np.ones((len(s), 5), np.float32), classes=s["class"].to_numpy(), split=split,
                    labels=y)
        gbdt = build("gbdt", 3, cfg["classifiers"]["gbdt"])
        gbdt.fit(o, seed=0)
        te = split == "test"
        tree_correct.append(gbdt.predict_proba(o)[te].argmax(1) == y[te])

        torch.manual_seed(0)
        scaler = QuantileScaler.fit(x[split == "train"])
        z, yt = torch.from_numpy(scaler(x)), torch.as_tensor(np.array(y))
        ann = PhotometryANN(3)
        tr, va = split == "train", split == "val"
        fit(ann, (z[tr],), yt[tr], (z[va],), yt[va],
            schedule=Schedule(lr=1e-3, batch_size=128, max_epochs=400, patience=30, min_steps=10),
            device=torch.device("cpu"), seed=0)
        ann_correct.append(predict_logits(ann, (z[te],), 4096, torch.device("cpu")).argmax(1).numpy() == y[te])
    tree_acc, ann_acc = np.concatenate(tree_correct).mean(), np.concatenate(ann_correct).mean()
    assert tree_acc > 0.8
    assert ann_acc > tree_acc - 0.04, (ann_acc, tree_acc)


def test_training_resumes_after_sigterm_with_identical_weights(repo, tmp_path):
    """MargNet is preempted in the middle of its CNN: the rerun skips the finished ANN, resumes the
    CNN at the step where it stopped, and ends with the weights of an uninterrupted run."""
    import os
    import signal

    from sdssclr.learn.checkpoints import RunCheckpoint
    from sdssclr.learn.engine import Preempted

    cfg = tiny_model_configs(repo)["margnet"]
    for net in ("ann", "cnn", "fusion"):
        cfg[net].update(max_epochs=3, patience=3)
    o = objects()

    def trained(ckpt=None, **kw):
        torch.manual_seed(0)
        clf = build("margnet", 3, cfg)
        clf.fit(o, seed=0, checkpoint=ckpt, **kw)
        return clf.state()["weights"]

    straight = trained(RunCheckpoint(tmp_path / "a.pt", "k"))
    calls = []
    import sdssclr.learn.engine as training

    original = training.fit

    def fit_with_kill(*args, **kw):
        def hook(epoch, step):
            calls.append((kw["name"], epoch, step))
            if kw["name"] == "margnet CNN" and (epoch, step) == (1, 0):
                os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kw, on_step=hook)

    import sdssclr.learn.classifiers as classifiers

    before = classifiers.fit
    classifiers.fit = fit_with_kill
    try:
        with pytest.raises(Preempted):
            trained(RunCheckpoint(tmp_path / "b.pt", "k"))
    finally:
        classifiers.fit = before
    saved = load_checkpoint(tmp_path / "b.pt")
    assert list(saved["done"]) == ["margnet ANN"] and saved["current"]["stage"] == "margnet CNN"
    assert (saved["current"]["epoch"], saved["current"]["step"]) == (1, 1)
    resumed = trained(RunCheckpoint(tmp_path / "b.pt", "k"))
    for part in ("ann", "cnn", "fusion"):
        assert all(torch.equal(straight[part][k], resumed[part][k]) for k in straight[part])
    # another configuration or other objects: the checkpoint is not resumed
    assert RunCheckpoint(tmp_path / "b.pt", "other").state["done"] == {}


def test_an_unreadable_checkpoint_is_named_and_the_run_starts_clean(tmp_path, caplog):
    from sdssclr.learn.checkpoints import CheckpointError, RunCheckpoint

    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04truncated")
    with pytest.raises(CheckpointError, match=str(bad)):
        load_checkpoint(bad)
    ckpt = RunCheckpoint(bad, "k")
    assert ckpt.state["done"] == {} and str(bad) in caplog.text


def test_a_checkpoint_is_resumed_only_for_the_same_inputs_and_says_what_changed(tmp_path, caplog):
    from sdssclr.io import array_hash, file_hash
    from sdssclr.learn.checkpoints import RunCheckpoint, run_key

    stamps = np.random.default_rng(0).normal(size=(6, 5, 8, 8)).astype(np.float32)
    enc = tmp_path / "encoder.pt"
    enc.write_bytes(b"pretrained with temperature 0.2")

    def key(stamps=stamps, ids=(3, 1, 2)):
        return run_key(["simclr", {"lr": 1e-3}, "SG", 0], {"train": list(ids)},
                       {"stamps and features": array_hash(stamps), "encoder": file_hash(enc)})

    path = tmp_path / "checkpoint.pt"
    RunCheckpoint(path, key()).finish("simclr head", {"w": torch.zeros(1)}, {"best_epoch": 3})
    assert RunCheckpoint(path, key(ids=(1, 2, 3))).done("simclr head") is not None  # same objects, any order
    # the encoder was pretrained again (another temperature): the head trained on the old one is discarded
    enc.write_bytes(b"pretrained with temperature 0.5")
    caplog.clear()
    assert RunCheckpoint(path, key()).done("simclr head") is None
    assert "changed: encoder" in caplog.text and str(path) in caplog.text
    enc.write_bytes(b"pretrained with temperature 0.2")
    # one pixel of one stamp differs (a stamp size or policy change keeps the objIDs)
    moved = stamps.copy()
    moved[2, 1, 4, 4] += 1.0
    caplog.clear()
    assert RunCheckpoint(path, key(stamps=moved)).done("simclr head") is None
    assert "changed: stamps and features" in caplog.text
    assert RunCheckpoint(path, key()).done("simclr head") is not None  # the original inputs still resume
