"""The supervised networks: MargNet's (Chaini et al. 2023) and the image + feature models.

- MargNet, reimplemented in PyTorch from the released graph: the photometric ANN
  (:class:`PhotometryANN`), the inception CNN (:class:`MargNetCNN`) and the late-fusion head
  (:class:`FusionHead`).
- The two-tower fine-tuned SimCLR model (:class:`SimCLRClassifier`): the encoder's embedding and
  a photometric tower of equal width, fused by a small head.
- MargFormer (:class:`MargFormer`): the photometric features query the encoder's image tokens
  through cross-attention (:class:`MargFormerHead`).
Both image + feature models wrap an encoder of :mod:`sdssclr.learn.encoders` whose weights can
be frozen for the first phase of fine-tuning (:class:`EncoderAndHead`).
"""

from __future__ import annotations

import torch
import torch.nn as nn


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
