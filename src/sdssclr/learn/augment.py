"""Batched, on-device augmentations of five-band stamps for contrastive learning.

Every operation works on a whole batch tensor ``(N, 5, H, W)`` of sky-subtracted fluxes in
nanomaggies on the training device, drawing its randomness from a ``torch.Generator`` on that
device; nothing loops over samples in Python.

- :func:`rot90_flip`: one of the 8 lossless symmetries of the pixel grid per sample.
- :func:`jitter_crop`: a ``crop`` x ``crop`` window displaced by up to ``(H - crop) // 2`` px from
  the centre (evaluation uses the centred window, :func:`center_crop`).
- :func:`rotate`: any-angle rotation about the stamp centre (bilinear, edge pixels extended as
  Keras' ``fill_mode='nearest'`` does), the augmentation of the MargNet CNN.
- :func:`random_shift`: integer shifts of up to a given number of pixels, zero-filled.
- :func:`add_noise`: per-band fresh Gaussian noise on every view: the quadrature difference between
  a target noise level and the stamp's own noise, and never less than ``min_fresh`` times the
  stamp's own noise, so no view keeps only the noise realisation it shares with its twin.
- :func:`add_blur`: per-band Gaussian PSF blur that only *adds*: a Gaussian of the quadrature
  difference between a target seeing and the stamp's own (nothing when the stamp's own seeing is
  already worse). One grouped convolution whose kernel covers 3 sigma of the widest blur.
- :func:`redden`: optional Galactic reddening, flux x 10^(-0.4 k_b E(B-V)), E(B-V) ~ U[0, max].

The targets of blur and noise come from *one* training object per sample (:func:`draw_targets`),
all five bands together, so a view looks like the same object observed in another field: drawing
each band from a different object would blur one band to 2" while another stays at 1" and shift
the colours at the centre of a point source by more than a magnitude. Blurring smooths the noise,
so the stamp's own noise is measured again after the blur, before noise is added.
No colour jitter and no grayscale: colours separate stars from quasars.

The two views of a stamp share its own noise; only the fresh noise differs. Their sky pixels
correlate at about ``1 / (1 + min_fresh^2)`` or less (0.5 at the default 1.0, 0.2 at 2.0), and
:meth:`Augmenter.pair` measures it (:func:`sky_correlation`) so that pretraining logs it: a high
value says the contrastive loss can match the shared noise instead of the source.

:class:`Normalizer` maps fluxes to network inputs (per-band ``arcsinh`` or ``robust`` scaling)
with statistics from the training split only; it is stored with the checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..bands import BANDS, EXTINCTION_COEFF, FWHM_TO_SIGMA


def border_noise(x: torch.Tensor, width: int = 4) -> torch.Tensor:
    """(N, C) robust noise estimate: 1.4826 x MAD of each band's outer ``width``-pixel frame."""
    ring = border_ring(x, width)
    med = ring.median(dim=-1, keepdim=True).values
    return 1.4826 * (ring - med).abs().median(dim=-1).values


def rot90_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    k = torch.randint(0, 4, (n,), generator=gen, device=x.device)
    flip = torch.rand(n, generator=gen, device=x.device) < 0.5
    out = torch.where(flip[:, None, None, None], x.flip(-1), x)
    for r in (1, 2, 3):
        sel = k == r
        if sel.any():
            out[sel] = torch.rot90(out[sel], r, dims=(-2, -1))
    return out


def _window(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int | None = None):
    """The (height x width) window of each sample starting at (top, left), gathered in one step."""
    n = x.shape[0]
    rows = (top[:, None] + torch.arange(height, device=x.device))[:, :, None]
    cols = (left[:, None] + torch.arange(width or height, device=x.device))[:, None, :]
    idx = torch.arange(n, device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)


def center_crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    t, l_ = (h - crop) // 2, (w - crop) // 2
    return x[..., t:t + crop, l_:l_ + crop]


def jitter_crop(x: torch.Tensor, crop: int, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    if crop > min(h, w):
        raise ValueError(f"crop {crop} larger than the stamp {h}x{w}")
    top = torch.randint(0, h - crop + 1, (n,), generator=gen, device=x.device)
    left = torch.randint(0, w - crop + 1, (n,), generator=gen, device=x.device)
    return _window(x, top, left, crop)


def draw_targets(n: int, pools: tuple[torch.Tensor, ...], gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """For each of ``n`` samples, the rows of one training object drawn at random from every
    (M, C) pool in ``pools`` (the same object for all pools and all bands)."""
    idx = torch.randint(0, pools[0].shape[0], (n,), generator=gen, device=pools[0].device)
    return tuple(p[idx] for p in pools)


def add_noise(x: torch.Tensor, own_sigma: torch.Tensor, target_sigma: torch.Tensor,
              gen: torch.Generator, min_fresh: float = 0.0) -> torch.Tensor:
    """Add Gaussian noise so that each band's noise reaches ``target_sigma`` (N, C) where it is
    below it, and at least ``min_fresh`` x ``own_sigma`` (N, C, the stamp's own noise) everywhere."""
    extra = torch.sqrt(torch.clamp(torch.maximum(target_sigma**2 - own_sigma**2, (min_fresh * own_sigma) ** 2),
                                   min=0.0))
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x + noise * extra[:, :, None, None].to(x.dtype)


def border_ring(x: torch.Tensor, width: int = 4) -> torch.Tensor:
    """(N, C, P) the pixels of each band's outer ``width``-pixel frame (the sky around the object)."""
    h, w = x.shape[-2:]
    mask = torch.ones(h, w, dtype=torch.bool, device=x.device)
    mask[width:h - width, width:w - width] = False
    return x[:, :, mask]


def sky_correlation(a: torch.Tensor, b: torch.Tensor, width: int = 4) -> float:
    """Mean over stamps and bands of the Pearson correlation between the sky pixels (outer
    ``width``-pixel frame) of two aligned views ``a`` and ``b`` (N, C, H, W) of the same stamps."""
    ra, rb = border_ring(a.float(), width), border_ring(b.float(), width)
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    denom = torch.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1)).clamp(min=1e-30)
    return float(((ra * rb).sum(-1) / denom).mean())


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(K, 1, 2r+1, 2r+1) normalised Gaussian kernels; sigma 0 gives the identity kernel."""
    ar = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    s = sigma.float().clamp(min=1e-3)[:, None]
    g = torch.exp(-0.5 * (ar[None, :] / s) ** 2)
    g = g / g.sum(1, keepdim=True)
    return (g[:, :, None] * g[:, None, :])[:, None]


def blur_radius(sigma: torch.Tensor, size: int) -> int:
    """Kernel half-width covering 3 sigma of the widest blur (at least 1, at most the stamp)."""
    widest = float(sigma.max()) if sigma.numel() else 0.0
    return int(min(max(1, math.ceil(3.0 * widest)), size))


def add_blur(x: torch.Tensor, own_fwhm_px: torch.Tensor, target_fwhm_px: torch.Tensor) -> torch.Tensor:
    """Convolve each band with the Gaussian that degrades its seeing ``own_fwhm_px`` (N, C) to
    ``target_fwhm_px`` (N, C) where the target is worse (identity elsewhere). The stamp's edge
    pixels are extended outwards (replication), so the sky noise near the border is smoothed
    like the rest instead of being diluted by zeros."""
    n, c, h, w = x.shape
    extra = torch.sqrt(torch.clamp(target_fwhm_px**2 - own_fwhm_px**2, min=0.0)) * FWHM_TO_SIGMA
    radius = blur_radius(extra, max(h, w))
    kernels = gaussian_kernels(extra.reshape(-1), radius).to(x.dtype)
    padded = F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    return F.conv2d(padded, kernels, groups=n * c).reshape(n, c, h, w)


def rotate(x: torch.Tensor, gen: torch.Generator, max_deg: float = 180.0) -> torch.Tensor:
    """Rotate each stamp by an angle uniform in [-max_deg, max_deg] about pixel (H//2, W//2),
    where the stamp cutter puts the object (bilinear; pixels from beyond the edge repeat the
    edge, as Keras' ``fill_mode='nearest'``)."""
    n, _, h, w = x.shape
    theta = (torch.rand(n, generator=gen, device=x.device) * 2 - 1) * math.radians(max_deg)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # the centre pixel in grid_sample's normalised coordinates (align_corners=False)
    cx, cy = (2 * (w // 2) + 1) / w - 1, (2 * (h // 2) + 1) / h - 1
    tx, ty = cx - (cos * cx - sin * cy), cy - (sin * cx + cos * cy)
    affine = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(affine.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Integer shifts of up to ``max_shift`` px per sample and axis, zero-filled (Keras-style shifts)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen, device=x.device)
    return _window(F.pad(x, (max_shift,) * 4), dy, dx, h, w)


REDDENING = torch.tensor([EXTINCTION_COEFF[b] for b in BANDS])


def redden(x: torch.Tensor, max_ebv: float, gen: torch.Generator) -> torch.Tensor:
    ebv = torch.rand(x.shape[0], generator=gen, device=x.device) * max_ebv
    factor = 10 ** (-0.4 * REDDENING.to(x.device)[None, :] * ebv[:, None])
    return x * factor[:, :, None, None].to(x.dtype)


@dataclass
class AugmentConfig:
    crop: int = 28
    rot_flip: bool = True
    noise: bool = True
    blur: bool = True
    reddening_max_ebv: float = 0.0
    min_fresh_noise: float = 1.0


class Augmenter:
    """Applies the configured chain to a batch: redden -> blur -> noise -> rot/flip -> crop; each
    call draws its own targets and noise (:meth:`pair` makes the two views of a batch).

    ``noise_pool`` and ``fwhm_pool_px`` (M, C) are the training objects' per-band noise and seeing,
    row-aligned: the blur and noise targets of a sample are one row of both."""

    def __init__(self, config: AugmentConfig, noise_pool: torch.Tensor, fwhm_pool_px: torch.Tensor):
        if noise_pool.shape != fwhm_pool_px.shape:
            raise ValueError(f"noise and seeing pools must be row-aligned, got {tuple(noise_pool.shape)} "
                             f"and {tuple(fwhm_pool_px.shape)}")
        self.config = config
        self.noise_pool = noise_pool
        self.fwhm_pool = fwhm_pool_px

    def photometric(self, x, own_sigma, own_fwhm_px, gen):
        """Reddening, blur and noise: the same stamp as observed in another field, still aligned."""
        c = self.config
        if c.reddening_max_ebv > 0:
            x = redden(x, c.reddening_max_ebv, gen)
        target_sigma, target_fwhm = draw_targets(x.shape[0], (self.noise_pool, self.fwhm_pool), gen)
        if c.blur:
            x = add_blur(x, own_fwhm_px, target_fwhm)
            own_sigma = border_noise(x)  # the blur smoothed the stamp's own noise
        if c.noise:
            x = add_noise(x, own_sigma, target_sigma, gen, c.min_fresh_noise)
        return x

    def geometric(self, x, gen):
        if self.config.rot_flip:
            x = rot90_flip(x, gen)
        return jitter_crop(x, self.config.crop, gen)

    def __call__(self, x, own_sigma, own_fwhm_px, gen):
        return self.geometric(self.photometric(x, own_sigma, own_fwhm_px, gen), gen)

    def pair(self, x, own_sigma, own_fwhm_px, gen):
        """The two views of a batch, and the correlation of their sky pixels before the geometric
        steps move them apart (:func:`sky_correlation`)."""
        a = self.photometric(x, own_sigma, own_fwhm_px, gen)
        b = self.photometric(x, own_sigma, own_fwhm_px, gen)
        return self.geometric(a, gen), self.geometric(b, gen), sky_correlation(a, b)


@dataclass
class Normalizer:
    """Per-band scaling fitted on the training split: ``arcsinh``: asinh(x / s_b) then
    standardised; ``robust``: (x - median_b) / (1.4826 MAD_b)."""

    method: str
    scale: list[float]
    shift: list[float]
    spread: list[float]

    @classmethod
    def fit(cls, stamps: torch.Tensor, method: str = "arcsinh") -> "Normalizer":
        x = stamps.float().transpose(0, 1).reshape(stamps.shape[1], -1)
        if method == "arcsinh":
            scale = border_noise(stamps.float()).median(dim=0).values.clamp(min=1e-6)
            y = torch.asinh(x / scale[:, None])
            shift, spread = y.mean(1), y.std(1).clamp(min=1e-6)
        elif method == "robust":
            scale = torch.ones(x.shape[0])
            shift = x.median(1).values
            spread = (1.4826 * (x - shift[:, None]).abs().median(1).values).clamp(min=1e-9)
        else:
            raise ValueError(f"unknown normalisation {method!r} (expected 'arcsinh' or 'robust')")
        return cls(method, scale.tolist(), shift.tolist(), spread.tolist())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t = lambda v: torch.tensor(v, device=x.device, dtype=x.dtype)[None, :, None, None]  # noqa: E731
        if self.method == "arcsinh":
            x = torch.asinh(x / t(self.scale))
        return (x - t(self.shift)) / t(self.spread)

    def to_dict(self) -> dict:
        return asdict(self)
