"""The synthetic survey's photometric pipeline on hand-checked cases: bright isolated stars come
back at their true flux within their errors, de Vaucouleurs galaxies at their true radius."""

import numpy as np
import pytest

from sdssclr.bands import BANDS, PIXEL_SCALE
from sdssclr.catalog import PHOTO_FLAGS
from sdssclr.survey.photometry import TemplateBank, measure_field
from sdssclr.survey.render import PSF, SKY_SIGMA_NMGY, noisy_frame, render_source

SHAPE = (260, 260)


def field(sources, seeing=1.2, seed=0):
    """Render ``sources`` (x, y, flux, r_e arcsec, bulge) in all five bands and measure them at
    their true positions."""
    rng = np.random.default_rng(seed)
    frames, calib, sat, banks, psfs = {}, {}, {}, {}, {}
    for b in BANDS:
        psfs[b] = PSF.for_seeing(seeing, b)
        model = np.zeros(SHAPE)
        for x, y, flux, r_e, bulge in sources:
            render_source(model, x, y, flux, psfs[b], r_e / PIXEL_SCALE, 1.0, 0.0, bulge)
        frames[b], calib[b], sat[b] = noisy_frame(rng, model, b)
        banks[b] = TemplateBank(psfs[b])
    xy = np.array([(s[0], s[1]) for s in sources])
    none = {b: np.zeros(SHAPE, bool) for b in BANDS}
    return measure_field(frames, {b: (xy[:, 0], xy[:, 1]) for b in BANDS}, banks, calib, none, none, sat,
                         SKY_SIGMA_NMGY)


def grid(n, rng):
    g = np.linspace(30, SHAPE[0] - 30, int(np.ceil(np.sqrt(n))))
    xx, yy = np.meshgrid(g, g)
    return xx.ravel()[:n] + rng.uniform(-0.5, 0.5, n), yy.ravel()[:n] + rng.uniform(-0.5, 0.5, n)


def test_isolated_bright_stars_come_back_at_their_true_flux_within_their_errors():
    rng = np.random.default_rng(1)
    x, y = grid(36, rng)
    flux = 10 ** rng.uniform(1.0, 2.0, 36)  # r 17.5-20: bright but far from saturation
    m = field([(a, b, f, 0.0, 0.0) for a, b, f in zip(x, y, flux)])
    for b in BANDS:  # PSF fluxes in every band (the catalogue's psfMag_x)
        pull = (m[f"psf_flux_{b}"] - flux) / m[f"psf_err_{b}"]
        assert abs(np.median(pull)) < 0.5 and 0.6 < np.std(pull) < 1.6, b
    for b in BANDS:  # the model fit of a point source is the PSF fit: same flux
        assert np.median(np.abs(m[f"model_flux_{b}"] - flux) / m[f"model_err_{b}"]) < 1.5
    assert (m["flags"] & PHOTO_FLAGS["BINNED1"]).all()
    assert (m["deVRad_r"] < 0.25).all()  # stars are (nearly) point-like to the de Vaucouleurs fit


@pytest.mark.parametrize("r_e", [0.6, 1.0, 2.0])
def test_de_vaucouleurs_radius_is_recovered_without_bias_at_high_snr(r_e):
    rng = np.random.default_rng(2)
    x, y = grid(16, rng)
    m = field([(a, b, 300.0, r_e, 1.0) for a, b in zip(x, y)], seed=3)
    ratio = m["deVRad_r"] / r_e
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    assert np.median(np.abs(m["model_flux_r"] / 300.0 - 1)) < 0.03
