"""Networks: the image encoders, SimCLR's head and loss, MargNet, and the fusion models.

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


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    """A 'same'-padded convolution followed by ReLU (every convolution of the MargNet graph)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True))


class Inception(nn.Module):
    """One inception block of the released MargNet graph.

    Three 1x1 'reduce' convolutions of ``reduce`` filters read the input. The first feeds a 1x1
    and a 3x3 branch, the second a 5x5 branch, and the third passes through (the graph's
    1x1 average pool is the identity); the branches have ``out`` filters each. The last block
    (``last=True``) has no 5x5 branch, and its 1x1 branch reads the input directly.
    """

    def __init__(self, cin: int, reduce: int, out: int, last: bool = False):
        super().__init__()
        self.last = last
        self.r1, self.r2 = _conv(cin, reduce, 1), _conv(cin, reduce, 1)
        self.b3 = _conv(reduce, out, 3)
        if last:
            self.b1 = _conv(cin, out, 1)
            self.out = 2 * out + reduce
        else:
            self.r3 = _conv(cin, reduce, 1)
            self.b1 = _conv(reduce, out, 1)
            self.b5 = _conv(reduce, out, 5)
            self.out = 3 * out + reduce

    def forward(self, x):
        r1, r2 = self.r1(x), self.r2(x)
        if self.last:
            return torch.cat([self.b1(x), self.b3(r1), r2], dim=1)
        return torch.cat([self.b1(r1), self.b3(r1), self.b5(r2), self.r3(x)], dim=1)


#: (reduce, out) filters of the five inception blocks of the released MargNet CNN.
MARGNET_BLOCKS = ((48, 64), (64, 92), (92, 128), (92, 128), (92, 128))


class MargNetCNN(nn.Module):
    """The MargNet CNN as released (sidchaini/MargNet): 5x5 convolution (64) and ReLU, five
    inception blocks (:data:`MARGNET_BLOCKS`) with 2x2 average pools after the second and the
    fourth, flatten, two dense layers of ``dense`` units *without* activation or dropout, and the
    class layer. 25.6 M parameters at ``width`` 1.0 and ``dense`` 1024 on 32x32 stamps for three
    classes; ``width`` scales every filter count (CPU demos)."""

    def __init__(self, n_classes: int, size: int = 32, width: float = 1.0, dense: int = 1024, in_channels: int = 5):
        super().__init__()
        c = lambda n: max(4, int(round(n * width)))  # noqa: E731
        self.stem = _conv(in_channels, c(64), 5)
        blocks, cin = [], c(64)
        for k, (reduce, out) in enumerate(MARGNET_BLOCKS):
            block = Inception(cin, c(reduce), c(out), last=k == len(MARGNET_BLOCKS) - 1)
            blocks.append(block)
            cin = block.out
            if k in (1, 3):
                blocks.append(nn.AvgPool2d(2))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * (size // 4) ** 2, dense), nn.Linear(dense, dense),
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


def feature_mlp(n_features: int, width: int, dropout: float = 0.0) -> nn.Sequential:
    """The photometric tower of the deep models: standardised features -> two GELU layers."""
    return nn.Sequential(nn.Linear(n_features, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, width),
                         nn.GELU())


class EncoderAndHead(nn.Module):
    """An image encoder with a head on top. While ``frozen_encoder`` is set, the encoder takes no
    gradient and stays in evaluation mode (BatchNorm statistics untouched) even when the model is
    put in training mode: the first phase of fine-tuning trains the head alone."""

    frozen_encoder = False

    def freeze_encoder(self, frozen: bool = True) -> "EncoderAndHead":
        self.frozen_encoder = frozen
        self.encoder.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_encoder:
            self.encoder.eval()
        return self


class SimCLRClassifier(EncoderAndHead):
    """The pretrained encoder fine-tuned together with the 24 photometric features, as two towers
    of equal width fused by a small head.

    The image embedding is layer-normalised and projected to ``width``; the features go through
    their own two-layer tower of the same width. Concatenating the raw 512-d embedding with 24
    numbers (the first design) let the embedding swamp the photometry: the head learnt mostly
    from the image and the model fell below a photometry-only tree.
    """

    def __init__(self, encoder: nn.Module, n_classes: int, n_features: int = 24, width: int = 256,
                 dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.image = nn.Sequential(nn.LayerNorm(encoder.dim), nn.Linear(encoder.dim, width), nn.GELU())
        self.features = feature_mlp(n_features, width, dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, width), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(width, n_classes))

    def forward(self, x, feats):
        return self.head(torch.cat([self.image(self.encoder(x)), self.features(feats)], dim=1))


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention: the queries attend to the image tokens, then an MLP; residuals."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))

    def forward(self, q, kv):
        kv = self.norm_kv(kv)
        q = q + self.attn(self.norm_q(q), kv, kv, need_weights=False)[0]
        return q + self.mlp(self.norm_mlp(q))


class MargFormerHead(nn.Module):
    """MargFormer's head: the photometric features query the image tokens.

    - Query: the standardised features go through a two-layer GELU tower and become ``queries``
      query tokens of width ``dim`` (a query token *derived from the photometry alone*, as in the
      AstroFormer README, generalised to several).
    - Keys and values: the encoder's image tokens projected to ``dim`` plus a learnt positional
      embedding per token position, so attention knows where on the stamp a token lies.
    - ``depth`` pre-norm cross-attention blocks (multi-head attention, MLP, residuals); the query
      tokens never attend to each other, so the photometry keeps its own path through the
      residuals and the image can only add to it.
    - The mean of the final query tokens, layer-normalised, goes to an MLP classifier.
    Attention over the tokens is a weighted sum, so the output does not depend on the order of
    the tokens once each carries its own positional embedding.
    """

    def __init__(self, token_dim: int, n_tokens: int, n_classes: int, n_features: int = 24, dim: int = 128,
                 depth: int = 2, heads: int = 4, queries: int = 4, dropout: float = 0.1):
        super().__init__()
        self.queries, self.dim = queries, dim
        self.query = nn.Sequential(feature_mlp(n_features, dim, dropout), nn.Linear(dim, queries * dim))
        self.kv = nn.Linear(token_dim, dim)
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([CrossAttentionBlock(dim, heads, dropout) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Dropout(dropout), nn.Linear(dim, dim), nn.GELU(),
                                 nn.Linear(dim, n_classes))

    def forward(self, feats, tokens):
        q = self.query(feats).reshape(len(feats), self.queries, self.dim)
        kv = self.kv(tokens) + self.pos
        for block in self.blocks:
            q = block(q, kv)
        return self.out(q.mean(1))


class MargFormer(EncoderAndHead):
    """An image encoder and the MargFormer head, trained end to end (``encoder`` pretrained by
    SimCLR for ``simclr-margformer``, randomly initialised for the ``margformer`` control)."""

    def __init__(self, encoder: nn.Module, n_classes: int, size: int, n_features: int = 24, dim: int = 128,
                 depth: int = 2, heads: int = 4, queries: int = 4, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        with torch.no_grad():
            was = encoder.training
            n_tokens = encoder.eval().tokens(torch.zeros(1, 5, size, size)).shape[1]
            encoder.train(was)
        self.head = MargFormerHead(encoder.dim, n_tokens, n_classes, n_features, dim, depth, heads, queries, dropout)

    def forward(self, x, feats):
        return self.head(feats, self.encoder.tokens(x))
