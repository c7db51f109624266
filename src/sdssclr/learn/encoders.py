"""The image encoders SimCLR pretrains and the image + feature models build on.

Encoders (:func:`build_encoder`), each giving a pooled representation (``forward``) and a set of
image tokens (``tokens``, (N, T, dim)) that MargFormer's cross-attention reads:

- ResNet for 32-px five-band stamps: 3x3 stride-1 stem with five input channels and no max-pool
  (the small-image recipe), BasicBlocks, global average pooling; its tokens are the cells of the
  last feature map (4x4 on a 28-px crop). Presets ``resnet18`` (widths 64-512, blocks 2-2-2-2,
  11.2 M parameters, 512-d) and ``small`` (widths 16-128, one block per stage, 128-d) that the CPU
  demo can afford. Written here rather than taken from torchvision because torchvision's ResNet
  fixes the widths (no CPU-sized variant) and would pin the project to one torch release.
- ViT: 4x4-pixel patches of the five bands (7x7 patches on a 28-px crop, 8x8 on 32 px), a learnt
  positional embedding, pre-norm transformer blocks; its tokens are the patch tokens and its
  representation their mean. Presets ``vit`` (dim 192, 6 blocks, 3 heads) and ``vit-small``
  (dim 64, 3 blocks, 4 heads) for CPU demos.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


ENCODERS = {
    "resnet18": {"kind": "resnet", "widths": (64, 128, 256, 512), "blocks": (2, 2, 2, 2)},
    "small": {"kind": "resnet", "widths": (16, 32, 64, 128), "blocks": (1, 1, 1, 1)},
    "vit": {"kind": "vit", "dim": 192, "depth": 6, "heads": 3, "patch": 4},
    "vit-small": {"kind": "vit", "dim": 64, "depth": 3, "heads": 4, "patch": 4},
}


def build_encoder(name: str, size: int = 28, in_channels: int = 5) -> nn.Module:
    """The encoder preset ``name`` for ``size``-pixel inputs (``size`` matters to the ViT only)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r} (expected one of {sorted(ENCODERS)})")
    if ENCODERS[name]["kind"] == "vit":
        return ViTEncoder(name, size, in_channels)
    return ResNetEncoder(name, in_channels)


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
        if ENCODERS.get(name, {}).get("kind") != "resnet":
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

    def tokens(self, x):
        """(N, h*w, dim): one token per cell of the last feature map."""
        return self.layers(self.stem(x)).flatten(2).transpose(1, 2)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: self-attention and an MLP (ratio 4), each with a residual."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """A small vision transformer on ``patch`` x ``patch`` patches of the five-band stamp."""

    def __init__(self, name: str = "vit", size: int = 28, in_channels: int = 5):
        super().__init__()
        spec = ENCODERS[name]
        self.name, self.dim, self.size = name, spec["dim"], size
        grid = size // spec["patch"]
        self.patch = nn.Conv2d(in_channels, spec["dim"], spec["patch"], spec["patch"])
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, spec["dim"]))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(spec["dim"], spec["heads"]) for _ in range(spec["depth"])])
        self.norm = nn.LayerNorm(spec["dim"])

    def tokens(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        if t.shape[1] != self.pos.shape[1]:
            raise ValueError(f"{self.name} was built for {self.size}-px inputs, got {tuple(x.shape[-2:])}")
        return self.norm(self.blocks(t + self.pos))

    def forward(self, x):
        return self.tokens(x).mean(1)
