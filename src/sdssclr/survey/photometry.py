"""The synthetic survey's photometric pipeline: the catalogue measured from the rendered frames.

What the SDSS pipeline reports, measured here the same way from pixels that carry the frame's
noise (so catalogue and stamps share one noise realisation, as in the real survey):

- PSF and model fluxes by fitting templates: per field and band, a bank of unit-flux templates
  (the band's PSF, and PSF-convolved circular de Vaucouleurs and exponential profiles on a grid of
  half-light radii, :data:`SIZE_GRID_ARCSEC`) is rendered once and shifted to each object's
  sub-pixel position in Fourier space, so each fit is a linear solve for the flux (weights: the
  sky variance; errors add the source's Poisson variance). The PSF fit gives ``psfMag_x`` in every
  band.
- ``deVRad_x``: the best-fitting de Vaucouleurs radius in each band (chi-square minimum on the
  grid, refined by a parabola in log radius). Below :data:`DEV_UNRESOLVED` the chi-square is flat
  (the source is unresolved) and SDSS's minimiser stops anywhere in that valley: the released real
  objects' values there spread over 1e-5" to 0.05" independently of magnitude, so an unresolved
  fit reports a radius drawn from that spread (:data:`DEV_STOP_LOG10`); whether a source is
  unresolved is measured.
- Model magnitudes: the better of the de Vaucouleurs and exponential fits in r, its profile fitted
  for the flux alone in every band (SDSS ``modelMag``); asinh magnitudes and errors.
- ``psffwhm_x``: the FWHM of the field's PSF model in that band.
- Flags (r band): ``EDGE`` (the fit window leaves the frame), ``SATURATED``, ``INTERP_CENTER``
  (an interpolated pixel within 1.5 px of the centre), ``COSMIC_RAY`` (a cosmic ray was
  interpolated within 3"), ``PSF_FLUX_INTERP`` (over 20% of the PSF-weighted flux interpolated),
  ``BLENDED`` (another detection within 3"), ``NOPROFILE`` (no finite fit) and ``BINNED1`` (PSF
  flux at 5 sigma or more in r).
Deblending is by territory: detections (sep, Source Extractor as a library, on the r frame) split
the fit window, and pixels nearer another detection than the target are left out of its fit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import sep
from scipy.special import ndtr, ndtri

from ..bands import BANDS, PIXEL_SCALE, asinh_mag, asinh_mag_err
from ..catalog import PHOTO_FLAGS
from .render import GAIN, PSF, render_source

#: Half-light radii (arcsec) of the de Vaucouleurs and exponential templates.
SIZE_GRID_ARCSEC = np.geomspace(0.002, 4.0, 26)
#: Side of the fit window (pixels); the templates are rendered on a larger, FFT-friendly grid.
WINDOW, TEMPLATE_GRID = 25, 32
#: A de Vaucouleurs fit below this radius (arcsec) is unresolved: its chi-square no longer
#: distinguishes the radius from zero.
DEV_UNRESOLVED = 0.05
#: log10 of the radius (arcsec) where SDSS's minimiser stops on an unresolved source ~ N(mean, sd)
#: truncated at DEV_UNRESOLVED: the released real faint objects' deVRad below 0.05" (every band,
#: both classes: median -2.8, 10th percentile -4.2, 90th -1.46, uncorrelated with magnitude).
DEV_STOP_LOG10 = (-2.85, 1.0)
#: The normal CDF at the truncation: a stopping point is drawn below it (inverse CDF).
_DEV_STOP_TOP = float(ndtr((math.log10(DEV_UNRESOLVED) - DEV_STOP_LOG10[0]) / DEV_STOP_LOG10[1]))
#: Extra flag bits set by this pipeline (SDSS PhotoFlags values).
BLENDED = 0x8


class TemplateBank:
    """Unit-flux templates of one field and band, centred on pixel ``TEMPLATE_GRID // 2``:
    index 0 the PSF, then de Vaucouleurs and exponential profiles of every grid radius."""

    def __init__(self, psf: PSF):
        n, c = TEMPLATE_GRID, TEMPLATE_GRID // 2
        templates = [self._draw(psf, 0.0, 0.0)]
        for bulge in (1.0, 0.0):
            for r_e in SIZE_GRID_ARCSEC:
                templates.append(self._draw(psf, r_e / PIXEL_SCALE, bulge))
        self.templates = np.stack(templates)  # (M, n, n)
        self.fft = np.fft.rfft2(self.templates)
        self.kx, self.ky = np.fft.rfftfreq(n)[None, :], np.fft.fftfreq(n)[:, None]
        self.half = WINDOW // 2
        self.sl = slice(c - self.half, c + self.half + 1)
        self.n_sizes = len(SIZE_GRID_ARCSEC)

    @staticmethod
    def _draw(psf, r_e_px, bulge):
        image = np.zeros((TEMPLATE_GRID, TEMPLATE_GRID))
        render_source(image, TEMPLATE_GRID // 2, TEMPLATE_GRID // 2, 1.0, psf, r_e_px, 1.0, 0.0, bulge)
        return image

    def shifted(self, dx: float, dy: float, which) -> np.ndarray:
        """(len(which), WINDOW, WINDOW) templates ``which`` centred ``(dx, dy)`` pixels from the
        window's centre (a phase ramp in Fourier space: the templates are band-limited by the PSF)."""
        phase = np.exp(-2j * np.pi * (self.kx * dx + self.ky * dy))
        return np.fft.irfft2(self.fft[which] * phase, s=self.templates.shape[1:])[:, self.sl, self.sl]


def detections(image: np.ndarray, sigma: float) -> np.ndarray:
    """(N, 2) x, y of the sources sep detects at 3 sigma in a frame."""
    sep.set_extract_pixstack(1_000_000)
    try:
        found = sep.extract(np.ascontiguousarray(image, dtype=np.float64), 3.0, err=sigma, minarea=4)
    except Exception:  # noqa: BLE001 - a pathological frame: no deblending rather than no catalogue
        return np.zeros((0, 2))
    return np.stack([found["x"], found["y"]], 1)


def _window(image, ix, iy, half):
    """The (2 half + 1)^2 window at integer centre (ix, iy), NaN beyond the frame; and whether it left it."""
    ny, nx = image.shape
    out = np.full((2 * half + 1, 2 * half + 1), np.nan)
    y0, y1, x0, x1 = iy - half, iy + half + 1, ix - half, ix + half + 1
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, ny), max(x0, 0), min(x1, nx)
    if cy0 < cy1 and cx0 < cx1:
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = image[cy0:cy1, cx0:cx1]
    return out, (y0 < 0 or x0 < 0 or y1 > ny or x1 > nx)


def _dev_radius(log_r, chi, k, rng: np.random.Generator) -> float:
    """Best de Vaucouleurs radius (arcsec) from the grid's chi-square ``chi`` with its minimum at
    index ``k``: a parabola in log radius; an unresolved fit (below :data:`DEV_UNRESOLVED`) stops
    where SDSS's minimiser would (:data:`DEV_STOP_LOG10`, drawn with ``rng``)."""
    radius = math.exp(_parabola_min(log_r, chi, k))
    if radius >= DEV_UNRESOLVED:
        return radius
    mean, sd = DEV_STOP_LOG10
    return float(10 ** (mean + sd * ndtri(rng.uniform(0.0, _DEV_STOP_TOP))))


def _parabola_min(x, y, k):
    """Refined position of the minimum at index ``k`` of samples ``y`` at ``x``."""
    if k <= 0 or k >= len(x) - 1:
        return x[k]
    x0, x1, x2 = x[k - 1:k + 2]
    y0, y1, y2 = y[k - 1:k + 2]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
    return float(np.clip(-b / (2 * a), x0, x2)) if a > 0 else x[k]


def measure_field(frames: dict, positions: dict, banks: dict, calib: dict, interpolated: dict, cosmic: dict,
                  saturated: dict, sky_sigma: dict, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Measure every object of one field. ``positions[band]`` is (x, y) per object in that band;
    every other argument is a dict by band of the frame, its template bank, calibration vector,
    masks of interpolated / cosmic-ray / saturated pixels, and sky sigma (nanomaggies). ``rng``
    draws where the minimiser stops on unresolved sources (seeded 0 when not given)."""
    rng = np.random.default_rng(0) if rng is None else rng
    half = WINDOW // 2
    n = len(positions["r"][0])
    found = detections(frames["r"], sky_sigma["r"])
    log_r = np.log(SIZE_GRID_ARCSEC)
    out = {f"{q}_{b}": np.full(n, np.nan) for b in BANDS
           for q in ("model_flux", "model_err", "psf_flux", "psf_err", "deVRad")}
    out["flags"] = np.zeros(n, np.int64)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    # per field, not per object: the r-band masks as floats (windows pad with NaN) and each band's
    # mean calibration
    interp_r, cosmic_r, saturated_r = (m["r"].astype(float) for m in (interpolated, cosmic, saturated))
    col_calib = {b: float(np.mean(calib[b])) for b in BANDS}
    for i in range(n):
        flags = 0
        model_index = None
        # the r band first: it sets the territory, the model profile and the flags
        for band in ("r", *(b for b in BANDS if b != "r")):
            x, y = positions[band][0][i], positions[band][1][i]
            ix, iy = int(round(x)), int(round(y))
            data, left = _window(frames[band], ix, iy, half)
            bank = banks[band]
            # r: the PSF and both profile grids; other bands: the PSF, the de Vaucouleurs grid and r's model
            which = (np.arange(len(bank.templates)) if band == "r"
                     else np.r_[0:1 + bank.n_sizes, model_index, model_index + 1])
            t = bank.shifted(x - ix, y - iy, which)
            good = np.isfinite(data)
            if band == "r":
                dist2 = (xx - (x - ix)) ** 2 + (yy - (y - iy)) ** 2
                others = found[np.hypot(found[:, 0] - x, found[:, 1] - y) > 1.5] if len(found) else found
                near = others[(np.abs(others[:, 0] - ix) <= half + 3) & (np.abs(others[:, 1] - iy) <= half + 3)]
                territory = np.ones_like(good)
                for ox, oy in near:
                    territory &= (xx + ix - ox) ** 2 + (yy + iy - oy) ** 2 > dist2
                if len(near) and np.min(np.hypot(near[:, 0] - x, near[:, 1] - y)) * PIXEL_SCALE < 3.0:
                    flags |= BLENDED
                interp, _ = _window(interp_r, ix, iy, half)
                cr, _ = _window(cosmic_r, ix, iy, half)
                sat, _ = _window(saturated_r, ix, iy, half)
                if left:
                    flags |= PHOTO_FLAGS["EDGE"]
                if np.nansum(sat * (dist2 <= (3.0 / PIXEL_SCALE) ** 2)) > 0:
                    flags |= PHOTO_FLAGS["SATURATED"]
                if np.nansum(interp * (dist2 <= 1.5**2)) > 0:
                    flags |= PHOTO_FLAGS["INTERP_CENTER"]
                if np.nansum(cr * (dist2 <= (3.0 / PIXEL_SCALE) ** 2)) > 0:
                    flags |= PHOTO_FLAGS["COSMIC_RAY"]
                psf_w = t[0] ** 2
                if np.nansum(psf_w * np.nan_to_num(interp)) > 0.2 * psf_w.sum():
                    flags |= PHOTO_FLAGS["PSF_FLUX_INTERP"]
            use = good & territory
            d = np.where(use, data, 0.0)
            tu = t * use
            tt = np.einsum("myx,myx->m", tu, tu)
            td = np.einsum("myx,yx->m", tu, d)
            with np.errstate(divide="ignore", invalid="ignore"):
                chi2 = np.sum(d * d) - td * td / tt  # of each template at its best flux
            var_sky, gain_calib = sky_sigma[band] ** 2, col_calib[band]

            def fit(template):
                """(flux, error) of one template: sky-weighted least squares, error with the source's
                Poisson variance."""
                tt1 = float(np.sum(template * template))
                f = float(np.sum(template * d)) / tt1
                poisson = np.clip(f * template, 0, None) * gain_calib / GAIN
                return f, float(np.sqrt(np.sum(template**2 * (var_sky + poisson)) / tt1**2))

            dev_chi = chi2[1:1 + bank.n_sizes]
            if not np.isfinite(dev_chi).any():
                flags |= PHOTO_FLAGS["NOPROFILE"]
                if band == "r":
                    break  # no model to fit in the other bands
                continue
            k = int(np.nanargmin(dev_chi))
            out[f"deVRad_{band}"][i] = _dev_radius(log_r, dev_chi, k, rng)
            out[f"psf_flux_{band}"][i], out[f"psf_err_{band}"][i] = fit(tu[0])
            if band == "r":
                # the model profile: the better of the two fits, between two grid radii (interpolated
                # in log radius), fixed for every band
                exp_chi = chi2[1 + bank.n_sizes:]
                ke = int(np.nanargmin(exp_chi))
                best_chi, kk, first = ((dev_chi, k, 1) if dev_chi[k] <= exp_chi[ke] else (exp_chi, ke, 1 + bank.n_sizes))
                lr = _parabola_min(log_r, best_chi, kk)
                k0 = int(np.clip(np.searchsorted(log_r, lr) - 1, 0, bank.n_sizes - 2))
                frac = float(np.clip((lr - log_r[k0]) / (log_r[k0 + 1] - log_r[k0]), 0.0, 1.0))
                model_index = first + k0
                if out["psf_flux_r"][i] / out["psf_err_r"][i] >= 5.0:
                    flags |= PHOTO_FLAGS["BINNED1"]
                a, b = model_index, model_index + 1
            else:
                a, b = len(which) - 2, len(which) - 1
            model = (1 - frac) * tu[a] + frac * tu[b]
            out[f"model_flux_{band}"][i], out[f"model_err_{band}"][i] = fit(model)
        out["flags"][i] = flags
    return pd.DataFrame(out)


def catalogue_columns(measured: pd.DataFrame, psfs: dict, extinction: dict) -> dict:
    """The catalogue's photometric columns from :func:`measure_field`'s fluxes: model magnitudes and
    errors, PSF magnitudes ``psfMag_x``, ``psfMagErr_r``, ``deVRad_x``, ``psffwhm_x``,
    ``extinction_x``, ``dered_x``, ``flags_r``."""
    cols = {}
    for b in BANDS:
        f, e = measured[f"model_flux_{b}"].to_numpy(), measured[f"model_err_{b}"].to_numpy()
        cols[b] = asinh_mag(f, b)
        cols[f"err_{b}"] = asinh_mag_err(f, e, b)
        cols[f"psfMag_{b}"] = asinh_mag(measured[f"psf_flux_{b}"].to_numpy(), b)
    cols["psfMagErr_r"] = asinh_mag_err(measured["psf_flux_r"].to_numpy(), measured["psf_err_r"].to_numpy(), "r")
    for b in BANDS:
        cols[f"dered_{b}"] = cols[b] - extinction[b]
        cols[f"deVRad_{b}"] = measured[f"deVRad_{b}"].to_numpy()
        cols[f"psffwhm_{b}"] = np.full(len(measured), psfs[b].fwhm_arcsec)
        cols[f"extinction_{b}"] = np.broadcast_to(extinction[b], (len(measured),)).astype(float)
    cols["flags_r"] = measured["flags"].to_numpy(np.int64)
    return cols

