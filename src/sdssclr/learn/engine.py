"""The training engine shared by pretraining and the supervised models: devices, mixed precision,
seeding, optimisers and schedules, the supervised training loop with early stopping (:func:`fit`),
batched prediction, SIGTERM (preemption) handling and DDP set-up. Checkpoints are in
:mod:`sdssclr.learn.checkpoints`."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from .checkpoints import RunCheckpoint

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> the local CUDA device when present (per LOCAL_RANK under torchrun), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (fp32, deterministic)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def cosine_with_warmup(optimizer, total_steps: int, warmup_steps: int):
    """LambdaLR: linear warm-up to the base rate, then cosine decay to 0, per optimisation step."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9):
    """SGD (Nesterov), AdamW or Adam over ``model``'s parameters; weight decay applies to weight
    matrices and kernels only, never to biases or BatchNorm/LayerNorm parameters."""
    groups = split_decay([{"params": list(model.parameters())}], weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"unknown optimiser {name!r}")


class Preemption:
    """Context manager turning SIGTERM (SLURM preemption, ``scancel``) into a flag the training
    loop polls, so it can checkpoint and exit cleanly instead of dying mid-write."""

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):
        log.warning("received signal %d: will checkpoint and stop", signum)
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


class Preempted(SystemExit):
    """Raised after a preemption checkpoint; exit status 143 (128 + SIGTERM)."""

    def __init__(self):
        super().__init__(143)


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group under torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


@dataclass(frozen=True)
class Schedule:
    """How one network is trained: mini-batches of ``batch_size``, at most ``max_epochs`` epochs,
    stopped when the validation loss has not improved for ``patience`` epochs (best weights
    restored). ``lr`` is the learning rate of the first parameter group.

    An epoch is one pass over the training set but at least ``min_steps`` optimiser steps (the
    data are cycled, reshuffled each pass): on a small training set -- a CPU demo, a 1% label
    budget -- a pass at batch 2048 is a single step, and a patience of 100 such epochs would stop
    a network that has barely started. On the paper-scale sets an epoch is exactly one pass.

    Early stopping counts epochs without improvement only after ``warmup_steps`` optimiser steps,
    so that a network still on the initial plateau of its loss is not stopped there.
    """

    lr: float
    batch_size: int
    max_epochs: int
    patience: int
    min_steps: int = 1
    warmup_steps: int = 0

    @classmethod
    def from_config(cls, cfg: dict) -> "Schedule":
        return cls(lr=float(cfg["lr"]), batch_size=int(cfg["batch_size"]), max_epochs=int(cfg["max_epochs"]),
                   patience=int(cfg["patience"]), min_steps=int(cfg.get("min_steps", 1)),
                   warmup_steps=int(cfg.get("warmup_steps", 0)))

    def epoch_batches(self, n: int, gen: torch.Generator) -> list[torch.Tensor]:
        """The index batches of one epoch: whole shuffled passes until ``min_steps`` is reached."""
        out = []
        while not out or len(out) < self.min_steps:
            out += batches(n, self.batch_size, gen)
        return out


class NonFiniteLoss(FloatingPointError):
    """A training or validation loss became NaN or infinite."""


#: A network whose best validation loss is within this (nats) of ln K, the cross-entropy of a
#: uniform guess over K balanced classes, learned nothing (``at_chance`` in its report).
CHANCE_TOLERANCE = 0.01


def batches(n: int, batch_size: int, gen: torch.Generator | None = None):
    """Index tensors of consecutive mini-batches over ``n`` items (shuffled when ``gen`` is given)."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


@torch.no_grad()
def predict_logits(model: torch.nn.Module, inputs: tuple, batch_size: int, device: torch.device) -> torch.Tensor:
    """``model(*inputs)`` in eval mode, batch by batch (bf16 autocast on CUDA), as float32 logits."""
    model.eval()
    out = []
    for idx in batches(len(inputs[0]), batch_size):
        with autocast(device):
            out.append(model(*(t[idx.to(t.device)] for t in inputs)).float())
    return torch.cat(out) if out else torch.zeros(0, device=device)


def fit(model: torch.nn.Module, inputs: tuple, y: torch.Tensor, val_inputs: tuple, val_y: torch.Tensor, *,
        schedule: Schedule, device: torch.device, seed: int, param_groups: list | None = None,
        optimizer: str = "adam", weight_decay: float = 0.0, augment: Callable | None = None,
        name: str = "model", checkpoint: RunCheckpoint | None = None, on_step: Callable | None = None) -> dict:
    """Train ``model`` with cross-entropy and early stopping on the validation loss.

    ``inputs``/``val_inputs`` are tuples of tensors (already on ``device``) fed to ``model(*batch)``;
    ``augment(batch, gen)`` transforms a training batch on the device. The optimiser is Adam (or
    AdamW with ``weight_decay`` on weights only) over ``param_groups`` (default: all parameters at
    ``schedule.lr``). The best weights are restored. Returns ``{"epochs", "best_epoch",
    "best_val_loss", "at_chance", "history"}`` (``at_chance``: the best validation loss is within
    :data:`CHANCE_TOLERANCE` of ln K); a NaN or infinite loss raises :class:`NonFiniteLoss`.

    With a ``checkpoint``, the network is stage ``name`` of the run: a finished stage is loaded
    instead of trained, a stage in progress resumes, and SIGTERM saves the progress and exits
    (:class:`Preempted`). ``on_step(epoch, step)`` is a test hook called after every step.
    """
    if len(val_y) == 0:
        raise ValueError(f"{name}: early stopping needs validation objects, but the validation split is empty")
    if len(y) == 0:
        raise ValueError(f"{name}: no training objects")
    if checkpoint is not None and checkpoint.done(name) is not None:
        finished = checkpoint.done(name)
        model.load_state_dict(finished["weights"])
        torch.set_rng_state(finished["rng_state"])
        log.info("%s: already trained in an earlier attempt (best epoch %d)", name, finished["report"]["best_epoch"])
        return finished["report"]
    groups = param_groups or [{"params": list(model.parameters()), "lr": schedule.lr}]
    if optimizer == "adamw":
        groups = split_decay(groups, weight_decay)
        opt = torch.optim.AdamW(groups)
    else:
        opt = torch.optim.Adam(groups)
    y, val_y = y.to(device), val_y.to(device)

    def validation_loss():
        return float(F.cross_entropy(predict_logits(model, val_inputs, max(schedule.batch_size, 1024), device),
                                     val_y))

    # the starting weights are a candidate too (epoch 0): a second training phase never ends worse
    # than the first left the network
    best, best_state, best_epoch, bad, history = validation_loss(), copy.deepcopy(model.state_dict()), 0, 0, []
    gen = torch.Generator(device=device).manual_seed(seed)
    start_epoch, start_step, carried = 0, 0, (0.0, 0)
    resumed = checkpoint.progress(name) if checkpoint is not None else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        best, best_state, best_epoch, bad = resumed["best"], resumed["best_state"], resumed["best_epoch"], resumed["bad"]
        history, start_epoch, start_step = resumed["history"], resumed["epoch"], resumed["step"]
        carried = (resumed["total"], resumed["seen"])
        gen.set_state(resumed["aug_state"])
        torch.set_rng_state(resumed["rng_state"])
        if device.type == "cuda" and resumed.get("cuda_rng_state") is not None:
            torch.cuda.set_rng_state(resumed["cuda_rng_state"], device)
        log.info("%s: resuming at epoch %d step %d", name, start_epoch + 1, start_step)

    def progress(epoch, step, total, seen):
        return {"stage": name, "epoch": epoch, "step": step, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "best": best, "best_state": best_state, "best_epoch": best_epoch,
                "bad": bad, "history": history, "total": float(total), "seen": seen, "aug_state": gen.get_state(),
                "rng_state": torch.get_rng_state(),
                "cuda_rng_state": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}

    steps_per_epoch = len(schedule.epoch_batches(len(y), torch.Generator().manual_seed(0)))

    def steps_done(epoch):  # optimiser steps after epoch ``epoch`` (0-based) ends
        return (epoch + 1) * steps_per_epoch

    last_saved = time.monotonic()
    bar = tqdm(range(start_epoch, schedule.max_epochs), desc=name, mininterval=10)
    with Preemption() as preempt:
        for epoch in bar:
            model.train()
            order_gen = torch.Generator().manual_seed(seed * 7919 + epoch)
            first = start_step if epoch == start_epoch else 0
            total = torch.full((), carried[0] if first else 0.0, device=device)
            seen = carried[1] if first else 0
            for step, idx in enumerate(schedule.epoch_batches(len(y), order_gen)):
                if step < first:
                    continue
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
                total += loss.detach() * len(idx)
                seen += len(idx)
                if on_step is not None:
                    on_step(epoch, step)
                if preempt.requested and checkpoint is not None:
                    checkpoint.save_progress(progress(epoch, step + 1, total, seen))
                    log.warning("%s: checkpointed at epoch %d step %d; exiting for preemption", name, epoch + 1,
                                step + 1)
                    raise Preempted()
            train_loss = float(total) / seen
            val_loss = validation_loss()
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                raise NonFiniteLoss(f"{name}: loss became non-finite at epoch {epoch + 1} (training {train_loss}, "
                                    f"validation {val_loss}); check the inputs for NaN or infinite values")
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss})
            if val_loss < best - 1e-6:
                best, best_state, best_epoch, bad = val_loss, copy.deepcopy(model.state_dict()), epoch + 1, 0
            elif steps_done(epoch) >= schedule.warmup_steps:  # no stopping during the warm-up
                bad += 1
                if bad >= schedule.patience:
                    break
            if checkpoint is not None and time.monotonic() - last_saved > checkpoint.interval_s:
                checkpoint.save_progress(progress(epoch + 1, 0, 0.0, 0))
                last_saved = time.monotonic()
    model.load_state_dict(best_state)
    log.info("%s: %d epochs, best epoch %d (validation loss %.4f)", name, len(history), best_epoch, best)
    n_classes = int(predict_logits(model, tuple(t[:1] for t in val_inputs), 1, device).shape[1])
    chance = math.log(n_classes)
    at_chance = bool(best > chance - CHANCE_TOLERANCE)
    if at_chance:
        log.warning("%s: best validation loss %.4f (epoch %d of %d) is within %g of ln %d = %.4f, the loss of a "
                    "uniform guess: it learned nothing", name, best, best_epoch, len(history), CHANCE_TOLERANCE,
                    n_classes, chance)
    report = {"epochs": len(history), "best_epoch": best_epoch, "best_val_loss": best, "at_chance": at_chance,
              "history": history}
    if checkpoint is not None:
        checkpoint.finish(name, model.state_dict(), report)
    return report


def fit_or_retry(model: torch.nn.Module, *args, schedule: Schedule, name: str = "model", **kw) -> dict:
    """:func:`fit`, and when the network never left the loss of a uniform guess (``at_chance``),
    once more from its current weights with a schedule twice as long (epochs and warm-up), as
    stage ``"{name} retry"``: a network still on its initial plateau when the first schedule
    ended gets a second chance before the run is declared never learned. The retry is logged and
    its report says ``retried``."""
    report = fit(model, *args, schedule=schedule, name=name, **kw)
    if not report["at_chance"]:
        return report
    longer = dataclasses.replace(schedule, max_epochs=2 * schedule.max_epochs, warmup_steps=2 * schedule.warmup_steps)
    log.warning("%s: retrying once with a longer schedule (%d epochs, warm-up %d steps) from its current weights",
                name, longer.max_epochs, longer.warmup_steps)
    again = fit(model, *args, schedule=longer, name=f"{name} retry", **kw)
    return dict(again, retried=True)


def split_decay(groups: list[dict], weight_decay: float) -> list[dict]:
    """Each parameter group split in two: weight matrices and kernels get ``weight_decay``,
    biases and normalisation parameters (1-D tensors) none."""
    out = []
    for g in groups:
        params = list(g["params"])
        rest = {k: v for k, v in g.items() if k != "params"}
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        out += [dict(rest, params=decay, weight_decay=weight_decay), dict(rest, params=no_decay, weight_decay=0.0)]
    return [g for g in out if g["params"]]
