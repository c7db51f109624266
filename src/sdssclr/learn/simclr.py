"""SimCLR's projection head and contrastive loss (NT-Xent), with negatives gathered across GPUs.

Chen et al. 2020: two augmented views of every stamp go through the encoder and the projection
head (:class:`ProjectionHead`, a two-layer MLP with BatchNorm); :func:`nt_xent` pulls the two
views of a stamp together and pushes every other view of the global batch away. Under DDP,
:func:`gather_with_grad` collects the projections of every process so each process sees the
global batch as negatives, with gradients flowing back to their owners.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.nn.functional import all_gather


class ProjectionHead(nn.Module):
    def __init__(self, dim: int, out_dim: int = 128, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


def gather_with_grad(z: torch.Tensor) -> torch.Tensor:
    """Concatenate ``z`` from every process (gradients flow back to each); identity when alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return torch.cat(all_gather(z), dim=0)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR) loss of two views; negatives are gathered across processes under DDP.

    For each of the 2N local views the positive is its other view; every other view of the global
    batch is a negative. Returns the mean over local views of -log softmax(positive).
    """
    n = z1.shape[0]
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    all1, all2 = gather_with_grad(z1), gather_with_grad(z2)
    total = all1.shape[0]
    queries = torch.cat([z1, z2])
    keys = torch.cat([all1, all2])
    logits = queries @ keys.T / temperature
    local = torch.arange(n, device=z1.device) + rank * n
    self_idx = torch.cat([local, local + total])
    pos_idx = torch.cat([local + total, local])
    logits[torch.arange(2 * n, device=z1.device), self_idx] = float("-inf")
    return F.cross_entropy(logits, pos_idx)
