"""Training plumbing shared by pretraining and the supervised models: devices, mixed precision,
seeding, schedules, atomic checkpoints, SIGTERM (preemption) handling and DDP set-up."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading

import torch

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
    import numpy as np

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


def make_optimizer(params, name: str, lr: float, weight_decay: float, momentum: float = 0.9):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimiser {name!r}")


def save_atomic(obj, path) -> None:
    """torch.save to a temporary file beside ``path``, then rename."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint written by :func:`save_atomic` with ``weights_only=True``."""
    return torch.load(path, map_location=map_location, weights_only=True)


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
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()
