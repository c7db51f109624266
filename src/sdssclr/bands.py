"""Photometric constants shared by every step: band order, pixel scale, extinction, seeing, magnitudes."""

from __future__ import annotations

import math

import numpy as np

BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z")

#: SDSS imaging pixel scale, arcsec per pixel.
PIXEL_SCALE = 0.396

#: A_x / E(B-V) per band (Schlafly & Finkbeiner 2011 as used by Hayat et al. 2021), u..z.
EXTINCTION_COEFF: dict[str, float] = {"u": 4.239, "g": 3.303, "r": 2.285, "i": 1.698, "z": 1.263}

#: Zero point of the nanomaggy system: m = 22.5 - 2.5 log10(f / nanomaggy).
NMGY_ZEROPOINT = 22.5


def mag_to_nmgy(mag):
    """Flux in nanomaggies of a magnitude (array-friendly)."""
    return 10.0 ** ((NMGY_ZEROPOINT - np.asarray(mag, dtype=float)) / 2.5)


#: Gaussian sigma per unit of FWHM, 1 / (2 sqrt(2 ln 2)).
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

#: Asinh ("luptitude") softening parameters b of SDSS model magnitudes, u..z (Lupton et al. 1999).
ASINH_SOFTENING: dict[str, float] = {"u": 1.4e-10, "g": 0.9e-10, "r": 1.2e-10, "i": 1.8e-10, "z": 7.4e-10}

_POGSON = 2.5 / np.log(10.0)


def asinh_mag(flux, band: str):
    """SDSS asinh magnitude of a flux in nanomaggies (finite for zero and negative fluxes)."""
    b = ASINH_SOFTENING[band]
    f = np.asarray(flux, dtype=float) * 1e-9  # in units of the 3631 Jy zero point
    return -_POGSON * (np.arcsinh(f / (2 * b)) + np.log(b))


def asinh_mag_err(flux, flux_err, band: str):
    """1-sigma error of :func:`asinh_mag` for a flux error in nanomaggies."""
    b = ASINH_SOFTENING[band]
    f, df = np.asarray(flux, float) * 1e-9, np.asarray(flux_err, float) * 1e-9
    return _POGSON * df / np.sqrt(f**2 + (2 * b) ** 2)
