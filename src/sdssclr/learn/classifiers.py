"""Every model of Table 1 behind one small interface, one class each.

A classifier is built for a number of classes and its own section of the ``classifiers`` config,
on a device, and then

- ``fit(objs, seed, encoder_path=None)`` trains it on ``objs``' train split, using the validation
  split for early stopping and model selection (never the test split), and returns a report
  (best epochs, chosen hyper-parameters) for the log and ``metrics.json``;
- ``predict_proba(objs)`` gives (N, n_classes) class probabilities, in the order of
  :data:`sdssclr.catalog.TASK_CLASSES`;
- ``component_probas(objs)`` gives the probabilities of named parts that are reported as rows of
  their own (MargNet's ANN and CNN), from the same training run;
- ``state()`` is a plain dict of tensors, numbers and strings (``torch.load(weights_only=True)``
  reads it back) and :func:`restore` rebuilds the classifier from it, so experiment 3 evaluates
  exactly the models trained in experiment 1.

The models (in the table order of :data:`sdssclr.registry.MODELS`):

- ``gbdt``: scikit-learn's HistGradientBoostingClassifier on the 24 features, early-stopped on the
  validation split: the photometry-only floor every deep model must clear.
- ``margnet``: MargNet as released (Chaini et al. 2023): the photometric ANN, the inception CNN and
  the late-fusion head trained on the validation split (see :class:`MargNet` for the departures).
  Its components ``margnet-ann`` and ``margnet-cnn`` are reported as rows of their own.
- ``simclr``: the SimCLR-pretrained encoder fine-tuned with the features (two-tower head).
- ``simclr-linear``: logistic regression on the frozen pretrained embedding and the features.
- ``simclr-margformer``: the seed project's model, the pretrained encoder's image tokens queried by
  the features through cross-attention, fine-tuned.
- ``simclr-margformer-labelled``: the same on an encoder pretrained on labelled objects only.
- ``margformer``: the same network from random initialisation (the control of
  ``simclr-margformer``).

The names, labels and properties of the models live in :mod:`sdssclr.registry`, which rules,
schema and tables read; each class here attaches to one of those names.
"""

from __future__ import annotations

import copy
import logging
from typing import ClassVar

import numpy as np
import torch
from scipy.special import ndtri
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from ..registry import MODELS, ModelSpec, spec
from ..samples.splits import rng_for
from ..stamps.objects import Objects
from .augment import Normalizer, center_crop, jitter_crop, random_shift, rot90_flip, rotate
from .encoders import build_encoder
from .engine import Schedule, predict_logits
from .engine import fit_or_retry as fit  # every network gets one longer retry at chance
from .networks import FusionHead, MargFormer, MargNetCNN, PhotometryANN, SimCLRClassifier
from .pretrain import embed, load_encoder

log = logging.getLogger(__name__)


class Scaler:
    """Per-column standardisation with training statistics."""

    def __init__(self, mean, std):
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    @classmethod
    def fit(cls, x):
        std = x.std(0)
        return cls(x.mean(0), np.where(std > 0, std, 1.0))

    def __call__(self, x):
        return ((x - self.mean) / self.std).astype(np.float32)

    def state(self):
        return {"kind": "standard", "mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std)}

    @classmethod
    def from_state(cls, s):
        return cls(s["mean"].numpy(), s["std"].numpy())


class QuantileScaler:
    """Each feature mapped to a standard normal through its training-split quantiles (what
    scikit-learn's ``QuantileTransformer(output_distribution="normal")`` computes, kept here as
    plain arrays so the state loads weights-only). The 24 features include heavy-tailed sizes
    (deVRad) and near-constant seeing columns; a rank-Gauss map lets a network read them the way
    a tree does, by order, instead of letting a few outliers set the scale."""

    BOUND = 1e-7

    def __init__(self, quantiles):
        self.quantiles = np.asarray(quantiles, np.float64)  # (n_quantiles, n_features)
        self.references = np.linspace(0.0, 1.0, len(self.quantiles))

    @classmethod
    def fit(cls, x, n_quantiles: int = 1000):
        n = max(2, min(n_quantiles, len(x)))
        return cls(np.nanquantile(np.asarray(x, np.float64), np.linspace(0.0, 1.0, n), axis=0))

    def __call__(self, x):
        x = np.asarray(x, np.float64)
        out = np.empty_like(x)
        r = self.references
        for j in range(x.shape[1]):
            q = self.quantiles[:, j]
            # the mean of the forward and the reversed interpolation splits ties evenly
            out[:, j] = 0.5 * (np.interp(x[:, j], q, r) - np.interp(-x[:, j], -q[::-1], -r[::-1]))
        return ndtri(np.clip(out, self.BOUND, 1 - self.BOUND)).astype(np.float32)

    def state(self):
        return {"kind": "quantile", "quantiles": torch.from_numpy(self.quantiles)}

    @classmethod
    def from_state(cls, s):
        return cls(s["quantiles"].numpy())


FEATURE_SCALERS = {"standard": Scaler, "quantile": QuantileScaler}


def feature_scaler(kind: str, x):
    """The feature map ``kind`` ('standard' or 'quantile') fitted on training features ``x``."""
    return FEATURE_SCALERS[kind].fit(x)


def scaler_from_state(s: dict):
    return FEATURE_SCALERS[s.get("kind", "standard")].from_state(s)


def summary(report: dict) -> dict:
    """What a training run keeps of one network's :func:`~sdssclr.learn.engine.fit` report."""
    return {k: report[k] for k in ("epochs", "best_epoch", "best_val_loss", "at_chance")} | {
        "retried": bool(report.get("retried", False))}


def tensor(a, device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), device=device)


def softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.float(), 1).cpu().numpy()


class Classifier:
    """The interface of every Table 1 model (see the module docstring)."""

    spec: ClassVar[ModelSpec]

    @property
    def name(self) -> str:
        return self.spec.name

    def __init__(self, n_classes: int, cfg: dict, device: torch.device | str = "cpu"):
        self.n_classes, self.cfg, self.device = int(n_classes), dict(cfg), torch.device(device)

    def fit(self, objs: Objects, seed: int, encoder_path=None, checkpoint=None) -> dict:
        """Train on ``objs``' train split (validation for early stopping); ``checkpoint`` (a
        :class:`~sdssclr.learn.checkpoints.RunCheckpoint`) makes the network training resumable."""
        raise NotImplementedError

    def predict_proba(self, objs: Objects) -> np.ndarray:
        raise NotImplementedError

    def component_probas(self, objs: Objects) -> dict[str, np.ndarray]:
        return {}

    def _weights(self) -> dict:
        raise NotImplementedError

    def _load(self, weights: dict) -> None:
        raise NotImplementedError

    def state(self) -> dict:
        return {"name": self.name, "n_classes": self.n_classes, "cfg": self.cfg, "weights": self._weights()}

    @staticmethod
    def _split(objs: Objects):
        return objs.split == "train", objs.split == "val"


# ---------------------------------------------------------------------------------------- GBDT


class GBDT(Classifier):
    """Histogram gradient-boosted trees on the 24 raw features (trees need no scaling), early
    stopping on the validation split's log-loss. The state holds the trees' nodes as arrays; the
    prediction walks them here, so no pickled estimator is ever loaded."""

    spec = MODELS["gbdt"]

    def fit(self, objs, seed, encoder_path=None, checkpoint=None):
        tr, va = self._split(objs)
        c = self.cfg
        clf = HistGradientBoostingClassifier(learning_rate=c["learning_rate"], max_iter=c["max_iter"],
                                             max_leaf_nodes=c["max_leaf_nodes"], early_stopping=True,
                                             n_iter_no_change=c["patience"], random_state=seed)
        clf.fit(objs.features[tr], objs.labels[tr], X_val=objs.features[va], y_val=objs.labels[va])
        self.trees = export_trees(clf)
        log.info("gbdt: %d boosting iterations (early stopping on the validation split)", clf.n_iter_)
        return {"iterations": int(clf.n_iter_)}

    def predict_proba(self, objs):
        raw = tree_raw_predictions(self.trees, objs.features)
        if raw.shape[1] == 1:  # binary: one tree per iteration for the positive class
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.stack([1 - p1, p1], 1)
        e = np.exp(raw - raw.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def _weights(self):
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.trees.items()}

    def _load(self, weights):
        self.trees = {k: v.numpy() for k, v in weights.items()}


def export_trees(clf) -> dict[str, np.ndarray]:
    """The nodes of a fitted HistGradientBoostingClassifier as flat arrays (numerical splits only).

    Trees are stored iteration-major, ``k`` trees per iteration (one per class; one in the binary
    case); ``offsets[t]`` is the first node of tree ``t``; ``left``/``right`` are tree-local.
    """
    trees = [p for per_iter in clf._predictors for p in per_iter]
    k = len(clf._predictors[0])
    nodes = [t.nodes for t in trees]
    if any(n["is_categorical"].any() for n in nodes):
        raise ValueError("categorical splits are not supported")
    cat = lambda f, dt: np.concatenate([n[f] for n in nodes]).astype(dt)  # noqa: E731
    return {"feature": cat("feature_idx", np.int64), "threshold": cat("num_threshold", np.float64),
            "left": cat("left", np.int64), "right": cat("right", np.int64), "is_leaf": cat("is_leaf", bool),
            "missing_left": cat("missing_go_to_left", bool), "value": cat("value", np.float64),
            "offsets": np.cumsum([0] + [len(n) for n in nodes]).astype(np.int64),
            "baseline": np.asarray(clf._baseline_prediction, np.float64).reshape(-1)[:k].copy(),
            "k": np.array([k], np.int64)}


def tree_raw_predictions(trees: dict, x: np.ndarray) -> np.ndarray:
    """(N, k) raw scores: baseline plus every tree's leaf value (NaN follows ``missing_left``)."""
    x = np.asarray(x, np.float64)
    k = int(trees["k"][0])
    n_trees = len(trees["offsets"]) - 1
    raw = np.tile(trees["baseline"], (len(x), 1))
    rows = np.arange(len(x))
    for t in range(n_trees):
        off = trees["offsets"][t]
        node = np.zeros(len(x), np.int64)
        while True:
            g = off + node
            leaf = trees["is_leaf"][g]
            if leaf.all():
                break
            v = x[rows, trees["feature"][g]]
            left = np.where(np.isnan(v), trees["missing_left"][g], v <= trees["threshold"][g])
            node = np.where(leaf, node, np.where(left, trees["left"][g], trees["right"][g]))
        raw[:, t % k] += trees["value"][off + node]
    return raw


# ------------------------------------------------------------------------------------- MargNet


class MargNet(Classifier):
    """MargNet (Chaini et al. 2023) as released in sidchaini/MargNet, trained in three stages.

    1. The photometric ANN (1024-256-128-64-32, sigmoid, dropout 0.25) on the 24 features, Adam,
       early stopping on the validation loss (released: batch 2048, patience 100, up to 4,000
       epochs).
    2. The inception CNN (:class:`~sdssclr.learn.networks.MargNetCNN`) on the stamps with any-angle
       rotations, shifts of up to 10% and flips, Adam, early stopping (released: batch 512,
       patience 30, up to 300 epochs).
    3. Both frozen; their softmax outputs go through the fusion head (dense 10, ReLU), trained on
       the validation split.

    Departures, kept on purpose and printed in the table caption: the features are mapped to a
    normal distribution by their training quantiles (``feature_scaling``; the release fed them
    raw, the paper says standardised, and 'standard' is one switch away); the stamps
    are arcsinh-scaled per band with training statistics (the release fed raw fluxes); the fusion
    head keeps ``fusion.holdout`` of the validation split aside for its own early stopping (the
    release ran 100 epochs and kept the lowest *training* loss).
    """

    spec = MODELS["margnet"]

    def _build(self, size: int):
        c = self.cfg
        self.ann = PhotometryANN(self.n_classes, hidden=tuple(c["ann"]["hidden"]), dropout=c["ann"]["dropout"])
        self.cnn = MargNetCNN(self.n_classes, size=size, width=c["cnn"]["width"], dense=c["cnn"]["dense"])
        self.head = FusionHead(self.n_classes, c["fusion"]["hidden"])
        for m in (self.ann, self.cnn, self.head):
            m.to(self.device)
        self.size = size

    def _inputs(self, objs):
        return tensor(self.scaler(objs.features), self.device), self.normalizer(tensor(objs.stamps, self.device))

    def fit(self, objs, seed, encoder_path=None, checkpoint=None):
        c = self.cfg
        tr, va = self._split(objs)
        self.scaler = feature_scaler(c["feature_scaling"], objs.features[tr])
        self.normalizer = Normalizer.fit(tensor(objs.stamps[tr], self.device), c["normalization"])
        self._build(objs.stamps.shape[-1])
        feats, images = self._inputs(objs)
        y = torch.as_tensor(objs.labels)
        trd, vad = tensor(tr, self.device), tensor(va, self.device)

        torch.manual_seed(seed)
        report = {"ann": fit(self.ann, (feats[trd],), y[tr], (feats[vad],), y[va],
                             schedule=Schedule.from_config(c["ann"]), device=self.device, seed=seed,
                             name="margnet ANN", checkpoint=checkpoint)}
        shift = int(round(c["cnn"]["shift"] * self.size))
        angle = float(c["cnn"]["rotation_deg"])

        def augment(batch, gen):
            x = rotate(batch[0], gen, angle) if angle > 0 else batch[0]
            return (rot90_flip(random_shift(x, shift, gen), gen),)

        report["cnn"] = fit(self.cnn, (images[trd],), y[tr], (images[vad],), y[va],
                            schedule=Schedule.from_config(c["cnn"]), device=self.device, seed=seed + 1,
                            augment=augment, name="margnet CNN", checkpoint=checkpoint)

        # Fusion head on the validation split, both networks frozen; a held-out part stops it.
        p_ann, p_cnn = self._member_probas(feats[vad], images[vad])
        yv = y[va]
        hold = np.zeros(len(yv), bool)
        n_hold = max(1, round(c["fusion"]["holdout"] * len(yv)))
        if len(yv) - n_hold < 1:
            raise ValueError(f"the validation split holds {len(yv)} objects; the fusion head needs at least 2")
        hold[rng_for(seed, "fusion").permutation(len(yv))[:n_hold]] = True
        hd, ft = tensor(hold, self.device), tensor(~hold, self.device)
        hold_t = torch.as_tensor(hold)
        report["fusion"] = fit(self.head, (p_ann[ft], p_cnn[ft]), yv[~hold_t], (p_ann[hd], p_cnn[hd]), yv[hold_t],
                               schedule=Schedule.from_config(c["fusion"]), device=self.device, seed=seed + 2,
                               name="margnet fusion", checkpoint=checkpoint)
        return {k: summary(v) for k, v in report.items()}

    def _member_probas(self, feats, images):
        p_ann = torch.softmax(predict_logits(self.ann, (feats,), 4096, self.device), 1)
        p_cnn = torch.softmax(predict_logits(self.cnn, (images,), 1024, self.device), 1)
        return p_ann, p_cnn

    def predict_proba(self, objs):
        p_ann, p_cnn = self._member_probas(*self._inputs(objs))
        return softmax(predict_logits(self.head, (p_ann, p_cnn), 4096, self.device))

    def component_probas(self, objs):
        p_ann, p_cnn = self._member_probas(*self._inputs(objs))
        return {"margnet-ann": p_ann.cpu().numpy(), "margnet-cnn": p_cnn.cpu().numpy()}

    def _weights(self):
        return {"scaler": self.scaler.state(), "normalizer": self.normalizer.to_dict(), "size": self.size,
                "ann": self.ann.state_dict(), "cnn": self.cnn.state_dict(), "fusion": self.head.state_dict()}

    def _load(self, w):
        self.scaler, self.normalizer = scaler_from_state(w["scaler"]), Normalizer(**w["normalizer"])
        self._build(int(w["size"]))
        self.ann.load_state_dict(w["ann"])
        self.cnn.load_state_dict(w["cnn"])
        self.head.load_state_dict(w["fusion"])


# ------------------------------------------------------------------------------ SimCLR models


def _encoder_from(weights: dict, device):
    enc = build_encoder(weights["encoder_name"], int(weights["crop"]))
    return enc.to(device), Normalizer(**weights["normalizer"]), int(weights["crop"])


class ImageAndFeatures(Classifier):
    """Shared training of the end-to-end image + feature networks (``simclr``, ``simclr-margformer``,
    ``margformer``), in two phases with the same recipe for all three:

    1. the head (photometric tower, fusion or cross-attention, classifier) alone on the frozen
       encoder, for up to ``head_epochs`` epochs (0 skips it): the photometry gets the many cheap
       steps it needs while the image features stay as they are (linear-probe-then-fine-tune);
    2. everything end to end for up to ``max_epochs``, the head at ``lr`` and the encoder at each
       learning rate of the ``encoder_lr`` grid in turn, every one from the same head-trained
       network with the same budget; the one with the lowest validation loss is kept (reported as
       ``encoder_lr``). Pretrained and random-init encoders get the same grid: no recipe differs
       by fiat between a model and its control.

    AdamW with weight decay on weights only, early stopping on the validation loss in each phase.
    Training views are rot90/flips of the stamp and a jittered crop (the crop of pretraining);
    evaluation uses the centred crop."""

    def _network(self, encoder) -> torch.nn.Module:
        raise NotImplementedError

    def _encoder(self, objs, tr, encoder_path):
        """(encoder, normaliser, crop, pretrained?) for training."""
        encoder, normalizer, crop = load_encoder(encoder_path, self.device)
        return encoder, normalizer, crop, True

    def _build(self, encoder):
        self.net = self._network(encoder).to(self.device)

    def _inputs(self, objs):
        return (center_crop(self.normalizer(tensor(objs.stamps, self.device)), self.crop),
                tensor(self.scaler(objs.features), self.device))

    def fit(self, objs, seed, encoder_path=None, checkpoint=None):
        c = self.cfg
        tr, va = self._split(objs)
        torch.manual_seed(seed)
        encoder, self.normalizer, self.crop, pretrained = self._encoder(objs, tr, encoder_path)
        self.encoder_name = encoder.name
        self.scaler = feature_scaler(c["feature_scaling"], objs.features[tr])
        self._build(encoder)
        images = self.normalizer(tensor(objs.stamps, self.device))
        feats = tensor(self.scaler(objs.features), self.device)
        y = torch.as_tensor(objs.labels)
        trd, vad = tensor(tr, self.device), tensor(va, self.device)
        crop = self.crop

        def augment(batch, gen):
            return jitter_crop(rot90_flip(batch[0], gen), crop, gen), batch[1]

        head = [p for n, p in self.net.named_parameters() if not n.startswith("encoder.")]
        data = dict(inputs=(images[trd], feats[trd]), y=y[tr], val_inputs=(center_crop(images[vad], crop), feats[vad]),
                    val_y=y[va])
        common = dict(device=self.device, optimizer="adamw", weight_decay=c["weight_decay"], augment=augment,
                      checkpoint=checkpoint)
        report = {}
        if c["head_epochs"] > 0:
            self.net.freeze_encoder(True)
            schedule = Schedule.from_config(dict(c, max_epochs=c["head_epochs"]))
            r = fit(self.net, **data, schedule=schedule, seed=seed, param_groups=[{"params": head, "lr": c["lr"]}],
                    name=f"{self.name} head", **common)
            self.net.freeze_encoder(False)
            report["head"] = summary(r)
        start = copy.deepcopy(self.net.state_dict())
        best = None
        for lr in c["encoder_lr"]:  # the same grid and budget for a pretrained encoder and a random one
            self.net.load_state_dict(start)
            groups = [{"params": list(self.net.encoder.parameters()), "lr": lr}, {"params": head, "lr": c["lr"]}]
            r = fit(self.net, **data, schedule=Schedule.from_config(c), seed=seed + 1, param_groups=groups,
                    name=f"{self.name} encoder_lr={lr:g}", **common)
            log.info("%s: encoder learning rate %g, best validation loss %.4f", self.name, lr, r["best_val_loss"])
            if best is None or r["best_val_loss"] < best[1]["best_val_loss"]:
                best = (lr, r, copy.deepcopy(self.net.state_dict()))
        lr, r, state = best
        self.net.load_state_dict(state)
        log.info("%s: encoder learning rate %g chosen on the validation split (%s encoder)", self.name, lr,
                 "pretrained" if pretrained else "random-init")
        report["end_to_end"] = summary(r)
        report["encoder_lr"] = float(lr)
        return report

    def predict_proba(self, objs):
        return softmax(predict_logits(self.net, self._inputs(objs), 1024, self.device))

    def _weights(self):
        return {"encoder_name": self.encoder_name, "normalizer": self.normalizer.to_dict(), "crop": self.crop,
                "scaler": self.scaler.state(), "net": self.net.state_dict()}

    def _load(self, w):
        encoder, self.normalizer, self.crop = _encoder_from(w, self.device)
        self.encoder_name = w["encoder_name"]
        self.scaler = scaler_from_state(w["scaler"])
        self._build(encoder)
        self.net.load_state_dict(w["net"])


def random_encoder(cfg: dict, objs: Objects, tr, device):
    """(encoder, normaliser, crop) of a control: the pretraining's encoder (``cfg["encoder"]``,
    which the workflow takes from the pretraining config) from random initialisation, its input
    scaling fitted on the training split the way pretraining fits it."""
    e = cfg["encoder"]
    crop = int(e["crop"])
    normalizer = Normalizer.fit(center_crop(tensor(objs.stamps[tr], device), crop), e["normalization"])
    return build_encoder(e["name"], crop).to(device), normalizer, crop


class SimCLRFineTune(ImageAndFeatures):
    """The SimCLR-pretrained encoder fine-tuned with the features in two towers of equal width
    (:class:`~sdssclr.learn.networks.SimCLRClassifier`)."""

    spec = MODELS["simclr"]

    def _network(self, encoder):
        return SimCLRClassifier(encoder, self.n_classes, width=self.cfg["width"], dropout=self.cfg["dropout"])


class SimCLRMargFormer(ImageAndFeatures):
    """'SimCLR with MargFormer', the seed project's model: the SimCLR-pretrained encoder's image
    tokens queried by the photometric features (:class:`~sdssclr.learn.networks.MargFormer`), fine-tuned."""

    spec = MODELS["simclr-margformer"]

    def _network(self, encoder):
        c = self.cfg
        return MargFormer(encoder, self.n_classes, self.crop, dim=c["dim"], depth=c["depth"], heads=c["heads"],
                          queries=c["queries"], dropout=c["dropout"])


class SimCLRMargFormerLabelled(SimCLRMargFormer):
    """``simclr-margformer`` on an encoder pretrained on the labelled training objects only (the
    workflow gives it that encoder): beside ``simclr-margformer`` it shows what the unlabelled
    objects add."""

    spec = MODELS["simclr-margformer-labelled"]


class TwoTowerControl(SimCLRFineTune):
    """The control of ``simclr``: the same two towers from a random-init encoder
    (:func:`random_encoder`), trained on the same labels with the same recipe."""

    spec = MODELS["twotower"]

    def _encoder(self, objs, tr, encoder_path):
        return (*random_encoder(self.cfg, objs, tr, self.device), False)


class MargFormerControl(SimCLRMargFormer):
    """The control of ``simclr-margformer``: the same network from a random-init encoder
    (:func:`random_encoder`), trained on the same labels with the same recipe."""

    spec = MODELS["margformer"]

    def _encoder(self, objs, tr, encoder_path):
        return (*random_encoder(self.cfg, objs, tr, self.device), False)


class SimCLRLinear(Classifier):
    """Logistic regression (scikit-learn) on the frozen pretrained embedding and the features,
    both standardised with training statistics; the inverse regularisation ``C`` is chosen on
    the validation split. The state keeps the frozen encoder, so the probe classifies any stamp."""

    spec = MODELS["simclr-linear"]

    def _embed(self, objs):
        return embed(self.encoder, self.normalizer, self.crop, objs.stamps, self.device)

    def _design(self, objs):
        x = np.concatenate([self._embed(objs), self.feat_scaler(objs.features)], axis=1)
        return self.scaler(x)

    def _encoder(self, objs, tr, encoder_path):
        return load_encoder(encoder_path, self.device)

    def fit(self, objs, seed, encoder_path=None, checkpoint=None):
        tr, va = self._split(objs)
        torch.manual_seed(seed)
        self.encoder, self.normalizer, self.crop = self._encoder(objs, tr, encoder_path)
        self.encoder_name = self.encoder.name
        self.feat_scaler = feature_scaler(self.cfg["feature_scaling"], objs.features[tr])
        x = np.concatenate([self._embed(objs), self.feat_scaler(objs.features)], axis=1)
        self.scaler = Scaler.fit(x[tr])
        x = self.scaler(x)
        best = None
        for c in self.cfg["C"]:
            clf = LogisticRegression(C=c, max_iter=self.cfg["max_iter"], random_state=seed).fit(x[tr], objs.labels[tr])
            acc = float((clf.predict(x[va]) == objs.labels[va]).mean())
            log.info("linear probe C=%g: validation accuracy %.4f", c, acc)
            if best is None or acc > best[0]:
                best = (acc, c, clf)
        _, self.C, clf = best
        self.coef, self.intercept = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
        return {"C": self.C}

    def predict_proba(self, objs):
        scores = self._design(objs) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # binary: scikit-learn keeps one row, for the positive class
            p1 = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1 - p1, p1], 1)
        return softmax(torch.from_numpy(scores))

    def _weights(self):
        return {"encoder_name": self.encoder_name, "normalizer": self.normalizer.to_dict(), "crop": self.crop,
                "encoder": self.encoder.state_dict(), "feat_scaler": self.feat_scaler.state(),
                "scaler": self.scaler.state(), "C": float(self.C), "coef": torch.from_numpy(self.coef),
                "intercept": torch.from_numpy(self.intercept)}

    def _load(self, w):
        self.encoder, self.normalizer, self.crop = _encoder_from(w, self.device)
        self.encoder.load_state_dict(w["encoder"])
        self.encoder.eval()
        self.encoder_name = w["encoder_name"]
        self.feat_scaler, self.scaler = scaler_from_state(w["feat_scaler"]), Scaler.from_state(w["scaler"])
        self.C, self.coef, self.intercept = w["C"], w["coef"].numpy(), w["intercept"].numpy()


class LinearControl(SimCLRLinear):
    """The control of ``simclr-linear``, the classic baseline of a linear probe: the same probe on
    the embedding of a random-init encoder (:func:`random_encoder`), which shows what pretraining
    put into the features."""

    spec = MODELS["linear-random"]

    def _encoder(self, objs, tr, encoder_path):
        return random_encoder(self.cfg, objs, tr, self.device)


# ------------------------------------------------------------------------------------ registry

#: The implementation of every model of :data:`sdssclr.registry.MODELS`.
IMPLEMENTATIONS: dict[str, type[Classifier]] = {
    cls.spec.name: cls for cls in (GBDT, MargNet, SimCLRFineTune, TwoTowerControl, SimCLRLinear, LinearControl,
                                   SimCLRMargFormer, SimCLRMargFormerLabelled, MargFormerControl)}
assert list(IMPLEMENTATIONS) == list(MODELS), "every registered model needs exactly one implementation"


def build(name: str, n_classes: int, cfg: dict, device="cpu") -> Classifier:
    return IMPLEMENTATIONS[spec(name).name](n_classes, cfg, device)


def restore(state: dict, device="cpu") -> Classifier:
    """A classifier rebuilt from :meth:`Classifier.state`."""
    clf = build(state["name"], state["n_classes"], state["cfg"], device)
    clf._load(state["weights"])
    return clf
