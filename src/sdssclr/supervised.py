"""The classifiers of Table 1, trained and evaluated per experiment x task x seed.

- ``margnet``: the photometric ANN on the 24 standardised features and the inception CNN on the
  stamps, each trained with Adam and early stopping on the validation loss (best weights
  restored); then both frozen and MargNet's fusion head trained on the validation split (as in
  the paper; 20% of it held out for the head's early stopping). The CNN sees rot90/flips and
  random shifts of up to 10% of the stamp (the paper's augmentation), batched on the device.
- ``simclr``: the pretrained encoder fine-tuned with the features (image embedding + 24 features
  into a small head), encoder at a lower learning rate, same early stopping; rot90/flips and
  jitter-crop during training, centre crop for evaluation.
- ``simclr-linear``: logistic regression on the frozen embedding concatenated with the features
  (both standardised), its regularisation chosen on the validation split.

Every model is saved as a plain dict of tensors and numbers (``torch.load(weights_only=True)``)
so that experiment 3 evaluates exactly the models trained in experiment 1.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F

from .augment import Normalizer, center_crop, jitter_crop, rot90_flip
from .data import Objects, load_objects
from .evaluate import classification_metrics
from .io import write_json_atomic
from .models import FusionHead, MargNetCNN, PhotometryANN, ResNetEncoder, SimCLRClassifier
from .splits import TASK_CLASSES, rng_for
from .training import autocast, load_checkpoint, resolve_device, save_atomic, seed_everything

log = logging.getLogger(__name__)
MODELS = ("margnet", "simclr", "simclr-linear")


class Scaler:
    """Per-column standardisation with training statistics."""

    def __init__(self, mean, std):
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    @classmethod
    def fit(cls, x):
        return cls(x.mean(0), np.where(x.std(0) > 0, x.std(0), 1.0))

    def __call__(self, x):
        return ((x - self.mean) / self.std).astype(np.float32)

    def state(self):
        return {"mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std)}

    @classmethod
    def from_state(cls, s):
        return cls(s["mean"].numpy(), s["std"].numpy())


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Integer shifts of up to ``max_shift`` px per sample, zero-filled (Keras-style shifts)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen, device=x.device)
    ar_h, ar_w = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = (dy[:, None] + ar_h)[:, :, None]
    cols = (dx[:, None] + ar_w)[:, None, :]
    idx = torch.arange(n, device=x.device)[:, None, None]
    return pad.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)


def _batches(n, batch, gen=None):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return [order[i:i + batch] for i in range(0, n, batch)]


def fit(model, inputs, y, val_inputs, val_y, *, param_groups, batch_size, max_epochs, patience, device,
        seed, augment=None, name="model"):
    """Adam with early stopping on the validation loss; the best weights are restored.

    ``inputs``/``val_inputs`` are tuples of tensors on ``device`` fed to ``model(*inputs)``;
    ``augment(batch_inputs, gen)`` transforms a training batch.
    """
    from tqdm import tqdm

    opt = torch.optim.Adam(param_groups)
    y, val_y = y.to(device), val_y.to(device)
    best, best_state, bad, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    gen = torch.Generator(device=device).manual_seed(seed)
    bar = tqdm(range(max_epochs), desc=name, mininterval=10)
    for epoch in bar:
        model.train()
        order_gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        total = 0.0
        for idx in _batches(len(y), batch_size, order_gen):
            idx = idx.to(device)
            batch = tuple(t[idx] for t in inputs)
            if augment is not None:
                batch = augment(batch, gen)
            with autocast(device):
                logits = model(*batch)
            loss = F.cross_entropy(logits.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val_loss = evaluate_loss(model, val_inputs, val_y, batch_size, device)
        history.append({"epoch": epoch + 1, "train_loss": total / len(y), "val_loss": val_loss})
        if val_loss < best - 1e-6:
            best, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    log.info("%s: %d epochs, best validation loss %.4f", name, len(history), best)
    return history


@torch.no_grad()
def predict_logits(model, inputs, batch_size, device):
    model.eval()
    out = []
    n = len(inputs[0])
    for idx in _batches(n, batch_size):
        idx = idx.to(device)
        with autocast(device):
            out.append(model(*(t[idx] for t in inputs)).float())
    return torch.cat(out) if out else torch.zeros(0)


def evaluate_loss(model, inputs, y, batch_size, device):
    if len(y) == 0:
        raise ValueError("early stopping needs validation objects, but the validation split is empty")
    return float(F.cross_entropy(predict_logits(model, inputs, batch_size, device), y.to(device)).item())


def _t(a, device):
    return torch.as_tensor(np.ascontiguousarray(a), device=device)


def subsample_train(objs: Objects, fraction: float, seed: int) -> Objects:
    """A stratified fraction of the training split (at least one object per class); val and test kept."""
    if fraction >= 1.0:
        return objs
    rng = rng_for(seed, "label_efficiency", f"{fraction:.6g}")
    keep = objs.split != "train"
    for c in np.unique(objs.labels[objs.split == "train"]):
        idx = np.flatnonzero((objs.split == "train") & (objs.labels == c))
        keep[rng.choice(idx, max(1, int(round(fraction * len(idx)))), replace=False)] = True
    return objs.subset(keep)


# ---------------------------------------------------------------------------------------- MargNet

def train_margnet(objs: Objects, n_classes: int, cfg: dict, seed: int, device) -> dict:
    tr, va = objs.split == "train", objs.split == "val"
    scaler = Scaler.fit(objs.features[tr])
    feats = _t(scaler(objs.features), device)
    stamps = _t(objs.stamps, device)
    norm = Normalizer.fit(stamps[_t(tr, device)], cfg["normalization"])
    images = norm(stamps)
    y = torch.tensor(objs.labels)
    trd, vad = _t(tr, device), _t(va, device)

    torch.manual_seed(seed)
    ann = PhotometryANN(n_classes, hidden=tuple(cfg["ann"]["hidden"]), dropout=cfg["ann"]["dropout"]).to(device)
    fit(ann, (feats[trd],), y[tr], (feats[vad],), y[va], param_groups=[{"params": ann.parameters(), "lr": cfg["ann"]["lr"]}],
        batch_size=cfg["ann"]["batch_size"], max_epochs=cfg["max_epochs"], patience=cfg["patience"], device=device,
        seed=seed, name="margnet ANN")

    size = objs.stamps.shape[-1]
    cnn = MargNetCNN(n_classes, size=size, width=cfg["cnn"]["width"], dense=cfg["cnn"]["dense"]).to(device)
    shift = int(round(cfg["cnn"]["shift"] * size))
    aug = lambda b, g: (random_shift(rot90_flip(b[0], g), shift, g),)  # noqa: E731
    fit(cnn, (images[trd],), y[tr], (images[vad],), y[va], param_groups=[{"params": cnn.parameters(), "lr": cfg["cnn"]["lr"]}],
        batch_size=cfg["cnn"]["batch_size"], max_epochs=cfg["max_epochs"], patience=cfg["patience"], device=device,
        seed=seed + 1, augment=aug, name="margnet CNN")

    # Fusion head on the validation split (both networks frozen); 20% of it for early stopping.
    p_ann = torch.softmax(predict_logits(ann, (feats[vad],), 4096, device), 1)
    p_cnn = torch.softmax(predict_logits(cnn, (images[vad],), 1024, device), 1)
    yv = y[va]
    if len(yv) < 2:
        raise ValueError(f"the validation split holds {len(yv)} objects; the fusion head needs at least 2")
    hold = np.zeros(len(yv), bool)
    hold[rng_for(seed, "fusion").permutation(len(yv))[: max(1, round(0.2 * len(yv)))]] = True
    hold = torch.as_tensor(hold)
    head = FusionHead(n_classes, cfg["fusion"]["hidden"]).to(device)
    hd, ft = hold.to(device), (~hold).to(device)
    fit(head, (p_ann[ft], p_cnn[ft]), yv[~hold], (p_ann[hd], p_cnn[hd]), yv[hold],
        param_groups=[{"params": head.parameters(), "lr": cfg["fusion"]["lr"]}], batch_size=cfg["fusion"]["batch_size"],
        max_epochs=cfg["max_epochs"], patience=cfg["patience"], device=device, seed=seed + 2, name="margnet fusion")
    return {"kind": "margnet", "n_classes": n_classes, "scaler": scaler.state(), "normalizer": norm.to_dict(),
            "ann": ann.state_dict(), "ann_hidden": list(cfg["ann"]["hidden"]), "cnn": cnn.state_dict(),
            "cnn_width": cfg["cnn"]["width"], "cnn_dense": cfg["cnn"]["dense"], "size": size,
            "fusion": head.state_dict(), "fusion_hidden": cfg["fusion"]["hidden"]}


def predict_margnet(model: dict, objs: Objects, device) -> np.ndarray:
    n = model["n_classes"]
    ann = PhotometryANN(n, hidden=tuple(model["ann_hidden"])).to(device)
    ann.load_state_dict(model["ann"])
    cnn = MargNetCNN(n, size=model["size"], width=model["cnn_width"], dense=model["cnn_dense"]).to(device)
    cnn.load_state_dict(model["cnn"])
    head = FusionHead(n, model["fusion_hidden"]).to(device)
    head.load_state_dict(model["fusion"])
    feats = _t(Scaler.from_state(model["scaler"])(objs.features), device)
    images = Normalizer(**model["normalizer"])(_t(objs.stamps, device))
    p_ann = torch.softmax(predict_logits(ann, (feats,), 4096, device), 1)
    p_cnn = torch.softmax(predict_logits(cnn, (images,), 1024, device), 1)
    return predict_logits(head, (p_ann, p_cnn), 4096, device).argmax(1).cpu().numpy()


# ------------------------------------------------------------------------------- SimCLR fine-tune

def train_simclr(objs: Objects, n_classes: int, cfg: dict, seed: int, device, encoder_path) -> dict:
    tr, va = objs.split == "train", objs.split == "val"
    from .pretrain import load_encoder

    enc, norm, crop = load_encoder(encoder_path, device)  # fit() switches it to training mode
    scaler = Scaler.fit(objs.features[tr])
    feats = _t(scaler(objs.features), device)
    images = norm(_t(objs.stamps, device))
    y = torch.tensor(objs.labels)
    trd, vad = _t(tr, device), _t(va, device)
    torch.manual_seed(seed)
    model = SimCLRClassifier(enc, n_classes, hidden=cfg["head_hidden"]).to(device)
    aug = lambda b, g: (jitter_crop(rot90_flip(b[0], g), crop, g), b[1])  # noqa: E731
    groups = [{"params": model.encoder.parameters(), "lr": cfg["encoder_lr"]},
              {"params": model.head.parameters(), "lr": cfg["lr"]}]
    fit(model, (images[trd], feats[trd]), y[tr], (center_crop(images[vad], crop), feats[vad]), y[va], param_groups=groups,
        batch_size=cfg["batch_size"], max_epochs=cfg["max_epochs"], patience=cfg["patience"], device=device, seed=seed,
        augment=aug, name="simclr fine-tune")
    return {"kind": "simclr", "n_classes": n_classes, "scaler": scaler.state(), "normalizer": norm.to_dict(),
            "crop": crop, "encoder_name": enc.name, "model": model.state_dict(), "head_hidden": cfg["head_hidden"]}


def predict_simclr(model: dict, objs: Objects, device) -> np.ndarray:
    net = SimCLRClassifier(ResNetEncoder(model["encoder_name"]), model["n_classes"], hidden=model["head_hidden"]).to(device)
    net.load_state_dict(model["model"])
    feats = _t(Scaler.from_state(model["scaler"])(objs.features), device)
    images = center_crop(Normalizer(**model["normalizer"])(_t(objs.stamps, device)), model["crop"])
    return predict_logits(net, (images, feats), 1024, device).argmax(1).cpu().numpy()


# ------------------------------------------------------------------------------ SimCLR linear probe

def _embedding_features(objs: Objects, embeddings_path, feat_scaler: Scaler):
    from .pretrain import read_embeddings

    ids, emb = read_embeddings(embeddings_path)
    pos = {int(i): k for k, i in enumerate(ids)}
    try:
        rows = np.array([pos[int(i)] for i in objs.objid])
    except KeyError as exc:
        raise KeyError(f"{embeddings_path} has no embedding for objID {exc}") from None
    return np.concatenate([emb[rows], feat_scaler(objs.features)], axis=1)


def train_linear(objs: Objects, n_classes: int, cfg: dict, seed: int, embeddings_path) -> dict:
    from sklearn.linear_model import LogisticRegression

    tr, va = objs.split == "train", objs.split == "val"
    feat_scaler = Scaler.fit(objs.features[tr])
    x = _embedding_features(objs, embeddings_path, feat_scaler)
    scaler = Scaler.fit(x[tr])
    x = scaler(x)
    best = None
    for c in cfg["C"]:
        clf = LogisticRegression(C=c, max_iter=cfg["max_iter"], random_state=seed).fit(x[tr], objs.labels[tr])
        acc = float((clf.predict(x[va]) == objs.labels[va]).mean())
        log.info("linear probe C=%g: validation accuracy %.4f", c, acc)
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    _, c, clf = best
    return {"kind": "simclr-linear", "n_classes": n_classes, "C": c, "feat_scaler": feat_scaler.state(),
            "scaler": scaler.state(), "coef": torch.from_numpy(clf.coef_.astype(np.float32)),
            "intercept": torch.from_numpy(clf.intercept_.astype(np.float32))}


def predict_linear(model: dict, objs: Objects, embeddings_path) -> np.ndarray:
    x = _embedding_features(objs, embeddings_path, Scaler.from_state(model["feat_scaler"]))
    x = Scaler.from_state(model["scaler"])(x)
    scores = x @ model["coef"].numpy().T + model["intercept"].numpy()
    if scores.shape[1] == 1:  # binary: scikit-learn keeps one row for the positive class
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(1)


# ------------------------------------------------------------------------------------ run driver

def predict(model: dict, objs: Objects, device, embeddings_path=None) -> np.ndarray:
    if model["kind"] == "margnet":
        return predict_margnet(model, objs, device)
    if model["kind"] == "simclr":
        return predict_simclr(model, objs, device)
    if model["kind"] == "simclr-linear":
        return predict_linear(model, objs, embeddings_path)
    raise ValueError(f"unknown model kind {model['kind']!r}")


def run_training(split_path, index_path, model_name: str, task: str, seed: int, cfg: dict, out_model, out_metrics, *,
                 encoder_path=None, embeddings_path=None, fraction: float = 1.0, experiment: str = "",
                 threads: int = 1) -> dict:
    """Train ``model_name`` on an experiment's train/val splits for ``task``; evaluate on its test split."""
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r} (expected one of {MODELS})")
    device = resolve_device(cfg["device"])
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    objs = load_objects(split_path, index_path, task=task)
    objs = subsample_train(objs, fraction, seed)
    n_classes = len(TASK_CLASSES[task])
    if model_name == "margnet":
        model = train_margnet(objs, n_classes, cfg["margnet"], seed, device)
    elif model_name == "simclr":
        model = train_simclr(objs, n_classes, cfg["finetune"], seed, device, encoder_path)
    else:
        model = train_linear(objs, n_classes, cfg["linear"], seed, embeddings_path)
    model.update(task=task, seed=seed, source=objs.source, experiment=experiment, fraction=fraction)
    save_atomic(model, out_model)
    counts = {s: int((objs.split == s).sum()) for s in ("train", "val")}
    return evaluate_run(model, split_path, index_path, out_metrics, device=device, embeddings_path=embeddings_path,
                        model_name=model_name, experiment=experiment, test=objs.subset(objs.split == "test"),
                        extra={"n_train": counts["train"], "n_val": counts["val"], "label_fraction": fraction})


def evaluate_run(model, split_path, index_path, out_metrics, *, device=None, embeddings_path=None, model_name=None,
                 experiment="", trained_in=None, extra=None, test: Objects | None = None) -> dict:
    """Evaluate a trained model (a dict or a saved ``model.pt``) on a split's test objects.

    ``test`` passes those objects when the caller already holds them (training loads every split),
    so the stamps are not read twice.
    """
    if not isinstance(model, dict):
        model = load_checkpoint(model)
    device = device or resolve_device("auto")
    task = model["task"]
    if test is None:
        test = load_objects(split_path, index_path, task=task, splits=["test"])
    pred = predict(model, test, device, embeddings_path)
    metrics = classification_metrics(test.labels, pred, TASK_CLASSES[task])
    metrics.update(model=model_name or model["kind"], experiment=experiment, task=task, seed=int(model["seed"]),
                   source=test.source, trained_in=trained_in or model.get("experiment", experiment),
                   n_test_per_class={c: int((test.classes == c).sum()) for c in TASK_CLASSES[task]}, **(extra or {}))
    write_json_atomic(out_metrics, metrics)
    log.info("%s %s %s seed %d: accuracy %.4f, macro precision %.4f, macro recall %.4f (%d test objects)",
             experiment, task, metrics["model"], metrics["seed"], metrics["accuracy"], metrics["precision"],
             metrics["recall"], metrics["n_test"])
    return metrics


