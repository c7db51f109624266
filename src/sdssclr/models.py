"""Networks: the small-image ResNet encoder and SimCLR head and loss, and the MargNet baseline.

Encoder: a ResNet for 32-px five-band stamps -- 3x3 stride-1 stem with five input channels and
no max-pool (the small-image recipe), BasicBlocks, global average pooling. Presets:
``resnet18`` (widths 64-512, blocks 2-2-2-2, 11.2 M parameters, representation 512) and
``small`` (widths 16-128, blocks 1-1-1-1, representation 128) that the CPU demo can afford.
Written here rather than taken from torchvision because torchvision's ResNet fixes the widths
(no CPU-sized variant) and would pin the project to one torch release.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ENCODERS = {
    "resnet18": {"widths": (64, 128, 256, 512), "blocks": (2, 2, 2, 2)},
    "small": {"widths": (16, 32, 64, 128), "blocks": (1, 1, 1, 1)},
}


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x))


class ResNetEncoder(nn.Module):
    def __init__(self, name: str = "resnet18", in_channels: int = 5):
        super().__init__()
        if name not in ENCODERS:
            raise ValueError(f"unknown encoder {name!r} (expected one of {sorted(ENCODERS)})")
        spec = ENCODERS[name]
        self.name = name
        w0 = spec["widths"][0]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0),
                                  nn.ReLU(inplace=True))
        layers, cin = [], w0
        for i, (w, n) in enumerate(zip(spec["widths"], spec["blocks"])):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.dim = cin

    def forward(self, x):
        x = self.layers(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


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
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(z), dim=0)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR) loss of two views; negatives are gathered across processes under DDP.

    For each of the 2N local views the positive is its other view; every other view of the global
    batch is a negative. Returns the mean over local views of -log softmax(positive).
    """
    import torch.distributed as dist

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


# --------------------------------------------------------------------------------------------
# MargNet (Chaini et al. 2023), reimplemented in PyTorch.

class PhotometryANN(nn.Module):
    """Dense network on the 24 photometric features: 1024-256-128-64-32, sigmoid, dropout 0.25."""

    def __init__(self, n_classes: int, n_features: int = 24, hidden=(1024, 256, 128, 64, 32), dropout: float = 0.25):
        super().__init__()
        layers, cin = [], n_features
        for h in hidden:
            layers += [nn.Linear(cin, h), nn.Sigmoid(), nn.Dropout(dropout)]
            cin = h
        layers.append(nn.Linear(cin, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Inception(nn.Module):
    """Parallel 1x1, 1x1->3x3 and 1x1->5x5 branches of ``f`` filters each, concatenated."""

    def __init__(self, cin: int, f: int):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(cin, f, 1), nn.ReLU(inplace=True))
        self.b3 = nn.Sequential(nn.Conv2d(cin, f, 1), nn.ReLU(inplace=True), nn.Conv2d(f, f, 3, padding=1),
                                nn.ReLU(inplace=True))
        self.b5 = nn.Sequential(nn.Conv2d(cin, f, 1), nn.ReLU(inplace=True), nn.Conv2d(f, f, 5, padding=2),
                                nn.ReLU(inplace=True))
        self.out = 3 * f

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x)], dim=1)


class MargNetCNN(nn.Module):
    """5x5 conv (64) then inception blocks of 48, 64, 92, 128 filters per branch with 2x2 average
    pools after the first and third, flatten, two dense layers (1024) and the class layer.
    ``width`` scales every filter count and ``dense`` the dense layers (27.5 M
    parameters at 1.0 / 1024 on 32x32 stamps; the paper quotes ~25.5 M)."""

    def __init__(self, n_classes: int, size: int = 32, width: float = 1.0, dense: int = 1024, dropout: float = 0.25):
        super().__init__()
        c = lambda n: max(4, int(round(n * width)))  # noqa: E731
        self.stem = nn.Sequential(nn.Conv2d(5, c(64), 5, padding=2), nn.ReLU(inplace=True))
        i1 = Inception(c(64), c(48))
        i2 = Inception(i1.out, c(64))
        i3 = Inception(i2.out, c(92))
        i4 = Inception(i3.out, c(128))
        self.blocks = nn.Sequential(i1, nn.AvgPool2d(2), i2, i3, nn.AvgPool2d(2), i4)
        flat = i4.out * (size // 4) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, dense), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(dense, dense), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(dense, n_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class FusionHead(nn.Module):
    """MargNet's late fusion: both networks' softmax outputs concatenated -> dense 10 (ReLU) -> classes."""

    def __init__(self, n_classes: int, hidden: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * n_classes, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_classes))

    def forward(self, p_ann, p_cnn):
        return self.net(torch.cat([p_ann, p_cnn], dim=1))


class SimCLRClassifier(nn.Module):
    """The pretrained encoder fine-tuned together with the photometric features: image embedding
    and the 24 standardised features concatenated into a small head, so it sees MargNet's inputs."""

    def __init__(self, encoder: ResNetEncoder, n_classes: int, n_features: int = 24, hidden: int = 256,
                 dropout: float = 0.25):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(encoder.dim + n_features, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x, feats):
        return self.head(torch.cat([self.encoder(x), feats], dim=1))
