"""SimCLR pretraining on five-band stamps, once per training dataset and seed.

The training split of the dataset's experiment is held as one tensor on the training device
(GPU-resident on CUDA); each step draws a batch by index, makes two views with the batched
augmentations of :mod:`sdssclr.learn.augment`, normalises them with statistics fitted on the training
split, and minimises NT-Xent. CUDA runs use bf16 autocast and channels_last; under torchrun
(WORLD_SIZE > 1) each process takes its slice of the global batch, BatchNorm is synchronised and
negatives are gathered across processes.

Determinism and resume: the batch order of epoch e comes from a generator seeded by (seed, e),
the augmentations from a generator seeded by (seed, e, rank) whose state is checkpointed, so a
run interrupted at any step and resumed reproduces the uninterrupted run exactly on CPU.
Checkpoints (:class:`~sdssclr.learn.checkpoints.RunCheckpoint`, atomic) are written every
``checkpoint_every`` epochs and on SIGTERM; a rerun resumes from the last one when its key
matches (scientific configuration, seed, pretraining objects and their stamps' pixels).

Outputs: the encoder checkpoint (weights, architecture, normaliser, crop), the training curve
(loss, learning rate, images/s, the sky-pixel correlation of the two views and the k-NN monitor
per epoch) and the embeddings of every usable object.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..catalog import labels_of
from ..config import OPERATIONAL
from ..io import array_hash, atomic_path, data_source, log_to
from ..stamps.objects import Objects, iter_usable_shards, load_by_objid, load_objects
from .augment import AugmentConfig, Augmenter, Normalizer, border_noise, center_crop
from .checkpoints import RunCheckpoint, load_checkpoint, run_key, save_atomic
from .encoders import build_encoder
from .engine import Preempted, Preemption, autocast, cosine_with_warmup, distributed, make_optimizer, resolve_device, \
    seed_everything
from .runfiles import write_embeddings
from .simclr import ProjectionHead, nt_xent

log = logging.getLogger(__name__)


#: Pretraining keys that change how a run is executed, not what it computes: they never decide
#: whether a checkpoint is resumed (nor, in the workflow, whether the job reruns).
OPERATIONAL_KEYS = OPERATIONAL["pretrain"]
#: The one stage of a pretraining run's checkpoint.
STAGE = "simclr"


def load_encoder(path, device="cpu") -> tuple[torch.nn.Module, Normalizer, int]:
    """The pretrained encoder (eval mode), its normaliser and its input crop."""
    ckpt = load_checkpoint(path, map_location=device)
    enc = build_encoder(ckpt["encoder_name"], int(ckpt["crop"]))
    enc.load_state_dict(ckpt["encoder"])
    return enc.to(device).eval(), Normalizer(**ckpt["normalizer"]), int(ckpt["crop"])


@torch.no_grad()
def embed(encoder, normalizer: Normalizer, crop: int, stamps: np.ndarray, device, batch_size: int = 2048):
    """(N, dim) float32 embeddings of stamps (centre crop, normalised, eval mode)."""
    encoder.eval()
    out = []
    for lo in range(0, len(stamps), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(stamps[lo:lo + batch_size])).to(device)
        x = normalizer(center_crop(x, crop))
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            out.append(encoder(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, encoder.dim), np.float32)


class KnnMonitor:
    """How well the representation separates the classes, tracked during pretraining (it steers
    nothing): the weighted k-NN accuracy (cosine similarity, k=20, weights exp(s / 0.07)) of the
    validation objects' embeddings against at most ``bank_size`` training objects, on the three
    classes. Labels are read for this score only; the SimCLR loss never sees them."""

    def __init__(self, train: Objects, val: Objects, seed: int, bank_size: int = 4096, k: int = 20):
        pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:bank_size])
        self.bank, self.bank_y = train.stamps[pick], labels_of(train.classes[pick])
        self.val, self.val_y = val.stamps, labels_of(val.classes)
        self.k = k

    def __call__(self, encoder, normalizer, crop, device) -> float:
        if len(self.val) == 0:
            return float("nan")
        was_training = encoder.training
        bank = torch.from_numpy(embed(encoder, normalizer, crop, self.bank, device))
        query = torch.from_numpy(embed(encoder, normalizer, crop, self.val, device))
        encoder.train(was_training)
        return knn_accuracy(bank, torch.from_numpy(self.bank_y), query, torch.from_numpy(self.val_y), self.k)


def knn_accuracy(bank, bank_y, query, query_y, k: int = 20, temperature: float = 0.07) -> float:
    """Weighted k-NN classification accuracy of ``query`` against ``bank`` (cosine similarity)."""
    bank, query = torch.nn.functional.normalize(bank.float(), dim=1), torch.nn.functional.normalize(query.float(), dim=1)
    sim, idx = (query @ bank.T).topk(min(k, len(bank)), dim=1)
    votes = torch.zeros(len(query), int(bank_y.max()) + 1)
    votes.scatter_add_(1, bank_y[idx], torch.exp(sim / temperature))
    return float((votes.argmax(1) == query_y).float().mean())


def pretrain(split_path, index_paths, out_encoder, out_curve, out_embeddings, *, cfg: dict, seed: int,
             objects_path=None, threads: int = 1, checkpoint_path=None, on_step=None) -> dict:
    """Train SimCLR and write the three outputs.

    The objects are those of ``objects_path`` (the encoder's pretraining set,
    :mod:`sdssclr.samples.pretraining_set`), or the split's training objects when it is None. The split's
    labelled train and validation objects feed the k-NN monitor. ``on_step(epoch, step)`` is a test
    hook called after every optimisation step.
    """
    rank, world = distributed()
    device = resolve_device(cfg["device"])
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    checkpoint_path = Path(checkpoint_path or Path(out_encoder).with_name("checkpoint.pt"))

    labelled = load_objects(split_path, index_paths, splits=["train"])
    if objects_path is not None:
        # built from the same stamp index, usable stamps only (sdssclr.samples.pretraining_set counts the
        # objects it drops); an object without a usable stamp here is an error of load_by_objid
        ids = pd.read_parquet(objects_path, columns=["objID"])["objID"].to_numpy(np.int64)
        train = load_by_objid(index_paths, ids, source=labelled.source)
    else:
        train = labelled
    log.info("pretraining set: %d objects, %d of them labelled training objects", len(train),
             int(np.isin(train.objid, labelled.objid).sum()))
    science = {k: v for k, v in cfg.items() if k not in OPERATIONAL_KEYS}
    # resumed only for the same configuration, objects and pixels (a stamp size or policy change
    # keeps the objIDs but not the stamps)
    checkpoint = RunCheckpoint(checkpoint_path, run_key(["simclr", science, seed], {"pretrain": train.objid},
                                                        {"stamps": array_hash(train.stamps)}))
    monitor = KnnMonitor(labelled, load_objects(split_path, index_paths, splits=["val"]), seed)
    n = len(train)
    stamps = torch.from_numpy(train.stamps).to(device)
    own_sigma = border_noise(stamps)
    own_fwhm = torch.from_numpy(train.psf_fwhm_px).to(device)
    normalizer = Normalizer.fit(center_crop(stamps, cfg["augment"]["crop"]), cfg["normalization"])
    augment = Augmenter(AugmentConfig(**cfg["augment"]), own_sigma, own_fwhm)

    encoder = build_encoder(cfg["encoder"], cfg["augment"]["crop"])
    head = ProjectionHead(encoder.dim, cfg["projection_dim"])
    model = torch.nn.Sequential(encoder, head).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if world > 1:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    batch = min(cfg["batch_size"], n)
    if batch < 2 * world:
        raise ValueError(f"{n} training objects are too few for a contrastive batch")
    steps_per_epoch = n // batch
    local = batch // world
    optimizer = make_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"], cfg["momentum"])
    scheduler = cosine_with_warmup(optimizer, cfg["epochs"] * steps_per_epoch, cfg["warmup_epochs"] * steps_per_epoch)

    start_epoch, start_step, history, aug_state, running = 0, 0, [], None, (0.0, 0, 0.0, 0.0, 0)
    resumed = checkpoint.progress(STAGE)
    if resumed is not None:
        (model.module if world > 1 else model).load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        start_epoch, start_step, history = resumed["epoch"], resumed["step"], resumed["history"]
        aug_state, running = resumed["aug_state"], tuple(resumed["running"])
        log.info("resuming from %s at epoch %d step %d", checkpoint_path, start_epoch, start_step)

    def save_progress(epoch, step, gen, running):
        if rank == 0:
            checkpoint.save_progress({"stage": STAGE, "model": (model.module if world > 1 else model).state_dict(),
                                      "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                      "epoch": epoch, "step": step, "history": history,
                                      "aug_state": gen.get_state() if gen is not None else None,
                                      "running": list(running)})

    log.info("SimCLR: %d training stamps (source %s), encoder %s (dim %d), batch %d x %d process(es), "
             "%d steps/epoch, %d epochs, device %s", n, train.source, cfg["encoder"], encoder.dim, local, world,
             steps_per_epoch, cfg["epochs"], device)
    with Preemption() as preempt:
        for epoch in range(start_epoch, cfg["epochs"]):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
            gen = torch.Generator(device=device).manual_seed(seed * 100_003 + epoch * 1_009 + rank)
            first = 0
            if epoch == start_epoch and start_step:
                first = start_step
                gen.set_state(aug_state)
            else:
                running = (0.0, 0, 0.0, 0.0, 0)
            model.train()
            loss_sum, seen, busy, corr_sum, steps = running
            bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg['epochs']}", mininterval=10,
                       disable=rank != 0)
            for step in bar:
                t0 = time.perf_counter()
                idx = order[step * batch + rank * local: step * batch + (rank + 1) * local].to(device)
                x, sig, fw = stamps[idx], own_sigma[idx], own_fwhm[idx]
                a, b, corr = augment.pair(x, sig, fw, gen)
                v = normalizer(torch.cat([a, b]))
                if device.type == "cuda":
                    v = v.contiguous(memory_format=torch.channels_last)
                with autocast(device):
                    z = model(v)
                loss = nt_xent(z[:local], z[local:], cfg["temperature"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                busy += time.perf_counter() - t0
                loss_sum += loss.item() * local
                seen += local
                corr_sum, steps = corr_sum + corr, steps + 1
                if on_step is not None:
                    on_step(epoch, step)
                if preempt.requested:
                    save_progress(epoch, step + 1, gen, (loss_sum, seen, busy, corr_sum, steps))
                    log.warning("checkpointed at epoch %d step %d; exiting for preemption", epoch, step + 1)
                    raise Preempted()
            row = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "lr": scheduler.get_last_lr()[0],
                   "images_per_s": 2 * seen * world / max(busy, 1e-9),
                   "view_sky_corr": corr_sum / max(steps, 1),
                   "knn_val_acc": monitor(encoder, normalizer, cfg["augment"]["crop"], device) if rank == 0 else np.nan}
            history.append(row)
            log.info("epoch %d: loss %.4f lr %.4g %.0f images/s, sky correlation of the two views %.3f, k-NN "
                     "validation accuracy %.3f", row["epoch"], row["loss"], row["lr"], row["images_per_s"],
                     row["view_sky_corr"], row["knn_val_acc"])
            if (epoch + 1) % cfg["checkpoint_every"] == 0 and epoch + 1 < cfg["epochs"]:
                save_progress(epoch + 1, 0, None, (0.0, 0, 0.0, 0.0, 0))

    if rank == 0:
        source = data_source(split_path)
        save_atomic({"encoder": encoder.state_dict(), "encoder_name": cfg["encoder"], "dim": encoder.dim,
                     "normalizer": normalizer.to_dict(), "crop": cfg["augment"]["crop"], "seed": seed,
                     "config": cfg, "source": source}, out_encoder)
        with atomic_path(out_curve) as tmp:
            pd.DataFrame(history).to_csv(tmp, sep="\t", index=False)
        ids, embs = [], []
        for shard_ids, shard_stamps in iter_usable_shards(index_paths):
            ids.append(shard_ids)
            embs.append(embed(encoder, normalizer, cfg["augment"]["crop"], shard_stamps, device, cfg["embed_batch_size"]))
        objid, emb = np.concatenate(ids), np.concatenate(embs)
        write_embeddings(objid, emb, out_embeddings, {"source": source, "seed": seed, "encoder": cfg["encoder"]})
        log.info("wrote %d embeddings of dimension %d", len(objid), emb.shape[1])
        checkpoint.remove()
    return {"history": history}


def main(argv=None):
    """``python -m sdssclr.learn.pretrain SPEC.json`` (what torchrun runs for multi-GPU jobs)."""
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    log_file = spec.pop("log", None)
    rank = int(os.environ.get("RANK", 0))
    with log_to(log_file if rank == 0 else None):
        pretrain(**spec)



def run(spec: dict, gpus: int = 1) -> None:
    """Run :func:`pretrain` here, or under torchrun on ``gpus`` local GPUs when more than one is
    granted and visible (single-node DDP). ``spec`` holds pretrain's keyword arguments."""
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1 and visible > 1:
        nproc = min(gpus, visible)
        spec_path = Path(spec["out_encoder"]).with_name("ddp_spec.json")
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in spec.items()}))
        log.info("launching torchrun with %d processes", nproc)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "sdssclr.learn.pretrain", str(spec_path)]
        subprocess.run(cmd, check=True, env=dict(os.environ), stdout=sys.stdout, stderr=sys.stderr)
        return
    if gpus > 1:
        log.warning("%d GPUs requested but %d visible: training in one process", gpus, visible)
    pretrain(**spec)


if __name__ == "__main__":
    main()
