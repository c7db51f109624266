"""Rendering the synthetic survey's frames: PSFs with power-law wings, bulge + disc galaxies,
quasar nuclei in host galaxies, neighbours, cosmic rays, bad columns and noise.

Every source is a Gaussian mixture, so convolution with the PSF is exact and analytic (the
covariances add) and a source costs a few hundred microseconds per band:

- Profiles (:func:`profile_mixture`): the exponential disc and the de Vaucouleurs bulge (truncated
  at 8 r_e, as the SDSS pipeline does) as non-negative Gaussian mixtures of unit half-light radius,
  fitted once by NNLS to the surface brightness (the approach of Hogg & Lang 2013). Ellipticity and
  position angle shear every component.
- PSF (:class:`PSF`): a Gaussian core, a second Gaussian of twice its width and a Moffat wing of
  fixed angular scale (beta 2.2, alpha 2") approximated by Gaussians. The wing's amplitude per band
  was fitted to the growth curves of isolated stars in the real field 2583/2/136 (fraction of the
  light within 7.4" that falls beyond 2" and beyond 3.2"; ``benchmarks/realism.py`` measures both
  again); the core is scaled so that the PSF's FWHM is the field's seeing in that band.

GalSim would render the same profiles by FFT at 4-12 ms per source and band (measured here with
GalSim 2.8 on 31x31 stamps), which puts the demo's ~180,000 source-band renders over the 15-minute
budget; ``tests/survey/test_render.py`` checks these mixtures against GalSim's own profiles.

Defects, as the photometric pipeline sees them: cosmic rays (short tracks) and bad columns are
interpolated over along rows, and the mask of interpolated pixels is returned so the photometry
can flag objects (``INTERP_CENTER``, ``COSMIC_RAY``, ``PSF_FLUX_INTERP``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, nnls

from ..bands import FWHM_TO_SIGMA, PIXEL_SCALE

#: Moffat wing of the PSF: fixed angular scale (arcsec) and slope, amplitude per band (fraction
#: of the PSF's flux), fitted to the real field's stars (see the module docstring).
WING_ALPHA_ARCSEC, WING_BETA = 2.0, 2.2
WING_FRACTION = {"u": 0.137, "g": 0.122, "r": 0.116, "i": 0.176, "z": 0.214}
#: The second Gaussian of the PSF core: twice the core's width, this fraction of the flux.
SECOND_FRACTION, SECOND_SCALE = 0.1, 2.0
#: Sky noise per pixel (nanomaggies) of the real field 2583/2/136, as
#: :func:`sdssclr.results.realism.sky_noise` measures it (1.4826 MAD of the pixels outside sources).
SKY_SIGMA_NMGY = {"u": 0.0551, "g": 0.0208, "r": 0.0324, "i": 0.0547, "z": 0.2188}
#: Detector gain (electrons per DN) and sky level (DN): the source Poisson noise and the rounding.
GAIN, SKY_DN = 4.7, 170.0
#: Counts (DN above sky) at which a pixel saturates.
SATURATION_DN = 30000.0


@functools.cache
def profile_mixture(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(weights, sigmas) of a Gaussian mixture of unit flux and unit half-light radius approximating
    the exponential (``exp``), de Vaucouleurs (``dev``, truncated at 8 r_e) or Moffat-wing
    (``wing``: beta :data:`WING_BETA`, sigmas in units of its alpha) profile."""
    if kind == "exp":
        r = np.linspace(1e-4, 6.0, 4000)
        prof, sig = np.exp(-1.67834699 * r), np.geomspace(0.03, 2.0, 8)
    elif kind == "dev":
        r = np.linspace(1e-4, 12.0, 6000)
        prof, sig = np.exp(-7.66924944 * (r**0.25 - 1)), np.geomspace(0.002, 4.0, 12)
        prof[r > 8] = 0.0
    elif kind == "wing":
        r = np.linspace(1e-4, 15.0, 6000)
        prof, sig = (1 + r**2) ** (-WING_BETA), np.geomspace(0.3, 8.0, 7)
    else:
        raise ValueError(f"unknown profile {kind!r}")
    basis = np.exp(-0.5 * (r[:, None] / sig) ** 2) / (2 * np.pi * sig**2)
    w = np.sqrt(r)
    amp, _ = nnls(basis * w[:, None], prof * w)
    keep = amp > 0
    amp, sig = amp[keep] / amp[keep].sum(), sig[keep]
    if kind != "wing":  # rescale so that the mixture's own half-light radius is exactly 1
        sig = sig / brentq(lambda R: np.sum(amp * (1 - np.exp(-0.5 * R**2 / sig**2))) - 0.5, 1e-3, 50.0)
    return amp, sig


@dataclass(frozen=True)
class PSF:
    """A circular PSF as a Gaussian mixture: ``weights`` sum to one, ``sigmas`` in pixels;
    ``fwhm_arcsec`` is its full width at half maximum (what the catalogue's ``psffwhm`` reports)."""

    weights: np.ndarray
    sigmas: np.ndarray
    fwhm_arcsec: float

    @classmethod
    def for_seeing(cls, fwhm_arcsec: float, band: str) -> "PSF":
        """The PSF of ``band`` whose FWHM is ``fwhm_arcsec``."""
        ww, ws = profile_mixture("wing")
        wing = WING_FRACTION[band]
        alpha = WING_ALPHA_ARCSEC / PIXEL_SCALE

        def build(core_fwhm_px):
            s = core_fwhm_px * FWHM_TO_SIGMA
            weights = np.r_[1 - SECOND_FRACTION - wing, SECOND_FRACTION, wing * ww]
            sigmas = np.r_[s, SECOND_SCALE * s, ws * alpha]
            return weights, sigmas

        def fwhm_px(weights, sigmas):
            peak = np.sum(weights / (2 * np.pi * sigmas**2))
            half = brentq(lambda R: np.sum(weights / (2 * np.pi * sigmas**2) * np.exp(-0.5 * R**2 / sigmas**2))
                          - peak / 2, 1e-3, 100.0)
            return 2 * half

        target = fwhm_arcsec / PIXEL_SCALE
        core = brentq(lambda c: fwhm_px(*build(c)) - target, 0.2 * target, 1.5 * target)
        weights, sigmas = build(core)
        return cls(weights, sigmas, float(fwhm_arcsec))

    def enclosed(self, radius_px) -> np.ndarray:
        """Fraction of the PSF's light within ``radius_px`` of its centre."""
        r = np.asarray(radius_px, float)[..., None]
        return np.sum(self.weights * (1 - np.exp(-0.5 * r**2 / self.sigmas**2)), -1)


def source_mixture(psf: PSF, r_e_px: float = 0.0, q: float = 1.0, pa: float = 0.0, bulge_fraction: float = 0.0):
    """(weights (K,), covariances (K, 3) as xx, xy, yy) of a source convolved with ``psf``: a point
    (``r_e_px`` 0) or a galaxy of half-light radius ``r_e_px`` (pixels, along the major axis), axis
    ratio ``q`` and position angle ``pa`` whose light is ``bulge_fraction`` de Vaucouleurs, the rest
    exponential (bulge and disc share the shape). Exact: every profile component convolved with
    every PSF component."""
    pvar = psf.sigmas**2
    pcov = np.stack([pvar, np.zeros_like(pvar), pvar], 1)
    if r_e_px <= 0:
        return psf.weights, pcov
    shape_w, shape_c = galaxy_mixture(r_e_px, q, pa, bulge_fraction)
    covs = (shape_c[:, None, :] + pcov[None, :, :]).reshape(-1, 3)
    return (shape_w[:, None] * psf.weights[None, :]).reshape(-1), covs


def galaxy_mixture(r_e_px: float, q: float, pa: float, bulge_fraction: float):
    """(weights, covariances (K, 3)) of the unconvolved bulge + disc profile."""
    c, s = math.cos(pa), math.sin(pa)
    ws, cs = [], []
    for kind, frac in (("dev", bulge_fraction), ("exp", 1.0 - bulge_fraction)):
        if frac <= 0:
            continue
        w, sig = profile_mixture(kind)
        major, minor = (sig * r_e_px) ** 2, (sig * r_e_px * q) ** 2
        cs.append(np.stack([major * c * c + minor * s * s, (major - minor) * c * s, major * s * s + minor * c * c], 1))
        ws.append(frac * w)
    return np.concatenate(ws), np.concatenate(cs)


#: PSF components wider than this (pixels) are the wing: a galaxy convolved with them is drawn as
#: circular Gaussians of the galaxy's circularised size (they hold ~10-20% of the light, spread
#: over arcseconds, where the galaxy's shape no longer shows).
WING_SIGMA_PX = 3.0


def render_source(image: np.ndarray, x: float, y: float, flux: float, psf: PSF, r_e_px: float = 0.0,
                  q: float = 1.0, pa: float = 0.0, bulge_fraction: float = 0.0) -> None:
    """Add one PSF-convolved source to ``image`` (see :func:`source_mixture`): the core part exactly,
    the wing part circularised, so that a galaxy costs about a millisecond per band."""
    core = psf.sigmas <= WING_SIGMA_PX
    if r_e_px <= 0:
        add_circular(image, x, y, flux, psf.weights, psf.sigmas)
        return
    core_psf = PSF(psf.weights[core], psf.sigmas[core], psf.fwhm_arcsec)
    w, c = source_mixture(core_psf, r_e_px, q, pa, bulge_fraction)
    add_mixture(image, x, y, flux, w, c)
    if (~core).any():
        gw, gc = galaxy_mixture(r_e_px, q, pa, bulge_fraction)
        size2 = float(np.sum(gw * (gc[:, 0] + gc[:, 2]) / 2))
        add_circular(image, x, y, flux, psf.weights[~core], np.sqrt(psf.sigmas[~core] ** 2 + size2))


def add_circular(image: np.ndarray, x: float, y: float, flux: float, weights, sigmas, max_radius: float = 40.0) -> None:
    """Add ``flux`` x sum_k weights[k] N(0, sigmas[k]^2 I) centred at (x, y): separable, so each
    component is an outer product of two 1-D Gaussians."""
    ny, nx = image.shape
    half = int(math.ceil(min(5.0 * float(np.max(sigmas)), max_radius))) + 1
    x0, x1 = max(int(math.floor(x)) - half, 0), min(int(math.floor(x)) + half + 1, nx)
    y0, y1 = max(int(math.floor(y)) - half, 0), min(int(math.floor(y)) + half + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return
    s = np.asarray(sigmas, float)[:, None]
    gx = np.exp(-0.5 * ((np.arange(x0, x1) - x)[None, :] / s) ** 2) / (math.sqrt(2 * math.pi) * s)
    gy = np.exp(-0.5 * ((np.arange(y0, y1) - y)[None, :] / s) ** 2) / (math.sqrt(2 * math.pi) * s)
    image[y0:y1, x0:x1] += flux * np.einsum("k,ky,kx->yx", np.asarray(weights, float), gy, gx)


def add_mixture(image: np.ndarray, x: float, y: float, flux: float, weights, covs, max_radius: float = 40.0) -> None:
    """Add ``flux`` x sum_k weights[k] N(0, cov_k) centred at pixel (x, y) to ``image`` in place.
    Components are grouped by width and each group is evaluated within 5 sigma of its widest
    member (at most ``max_radius`` px), so narrow components cost a small window."""
    width = np.sqrt(np.maximum(covs[:, 0], covs[:, 2]))
    group = np.searchsorted(np.array([1.5, 3.0, 6.0]), width)
    for g in np.unique(group):
        sel = group == g
        _add_group(image, x, y, flux, weights[sel], covs[sel], min(5.0 * float(width[sel].max()), max_radius))


def _add_group(image, x, y, flux, weights, covs, radius):
    ny, nx = image.shape
    half = int(math.ceil(radius)) + 1
    x0, x1 = max(int(math.floor(x)) - half, 0), min(int(math.floor(x)) + half + 1, nx)
    y0, y1 = max(int(math.floor(y)) - half, 0), min(int(math.floor(y)) + half + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1) - x)[None, None, :]
    dy = (np.arange(y0, y1) - y)[None, :, None]
    a, b, d = (covs[:, k][:, None, None] for k in range(3))
    det = a * d - b * b
    quad = (d * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
    image[y0:y1, x0:x1] += flux * np.einsum("k,kyx->yx", weights, np.exp(-0.5 * quad) / (2 * np.pi * np.sqrt(det)))


def defects(rng: np.random.Generator, shape, n_cosmic: float, bad_column_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(cosmic-ray mask, bad-column mask) of one frame: a Poisson number of short cosmic-ray tracks
    (1-6 px, random direction) and, with probability ``bad_column_rate``, one bad column."""
    ny, nx = shape
    cosmic = np.zeros(shape, bool)
    for _ in range(rng.poisson(n_cosmic)):
        length, angle = rng.integers(1, 7), rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        t = np.arange(length)
        xs = np.clip(np.round(x0 + t * np.cos(angle)).astype(int), 0, nx - 1)
        ys = np.clip(np.round(y0 + t * np.sin(angle)).astype(int), 0, ny - 1)
        cosmic[ys, xs] = True
    bad = np.zeros(shape, bool)
    if rng.random() < bad_column_rate:
        bad[:, rng.integers(2, nx - 2)] = True
    return cosmic, bad


def interpolate_rows(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the masked pixels replaced by linear interpolation along their row between
    the nearest good pixels (what the photometric pipeline does for bad columns and cosmic rays)."""
    out = image.copy()
    cols = np.arange(image.shape[1])
    for y in np.flatnonzero(mask.any(1)):
        good = ~mask[y]
        if good.sum() >= 2:
            out[y, ~good] = np.interp(cols[~good], cols[good], image[y, good])
    return out


def noisy_frame(rng: np.random.Generator, model: np.ndarray, band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame in nanomaggies, calibration vector (nanomaggies per DN per column), saturated mask)
    of a noiseless ``model``: sky noise of the real field, source Poisson noise, integer DN."""
    ny, nx = model.shape
    sigma = SKY_SIGMA_NMGY[band]
    noise_dn = math.sqrt(SKY_DN / GAIN)
    calib = sigma / noise_dn * (1 + 0.02 * np.sin(np.linspace(0, np.pi, nx) + rng.uniform(0, 6)))
    src_dn = model / calib[None, :]
    counts = src_dn + SKY_DN + rng.standard_normal(model.shape) * np.sqrt(SKY_DN / GAIN + np.clip(src_dn, 0, None) / GAIN)
    counts = np.round(counts)
    saturated = counts - SKY_DN > SATURATION_DN
    counts = np.minimum(counts, SKY_DN + SATURATION_DN)
    return ((counts - SKY_DN) * calib[None, :]).astype(np.float32), calib, saturated
