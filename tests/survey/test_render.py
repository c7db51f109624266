"""The synthetic survey's renderer: Gaussian-mixture profiles against GalSim's, PSFs with the
requested seeing and a power-law wing, seeing that differs between the bands of a field."""

import numpy as np
import pytest

from sdssclr.bands import BANDS, PIXEL_SCALE
from sdssclr.survey.render import PSF, add_mixture, profile_mixture, source_mixture
from sdssclr.survey.synthetic import field_table

galsim = pytest.importorskip("galsim")


@pytest.mark.parametrize("kind, bulge", [("exp", 0.0), ("dev", 1.0)])
def test_profiles_match_galsim_convolved_with_a_gaussian_psf(kind, bulge):
    """A 1.2" exponential / de Vaucouleurs galaxy (q 0.6) through a 1.2" Gaussian PSF, drawn by GalSim
    and by the mixtures: the same image to 1.5% of its peak, the same flux to 1% (3% for the de
    Vaucouleurs profile, whose wings leave the 16" image)."""
    n, r_e, fwhm, q, beta = 41, 1.2, 1.2, 0.6, 0.5
    gal = (galsim.Exponential(half_light_radius=r_e) if kind == "exp"
           else galsim.DeVaucouleurs(half_light_radius=r_e, trunc=8 * r_e))
    gal = gal.shear(q=q, beta=beta * galsim.radians)
    ref = galsim.Convolve(gal, galsim.Gaussian(fwhm=fwhm)).drawImage(nx=n, ny=n, scale=PIXEL_SCALE,
                                                                      method="no_pixel").array
    psf = PSF(np.array([1.0]), np.array([fwhm / 2.3548 / PIXEL_SCALE]), fwhm)
    ours = np.zeros((n, n))
    # GalSim's half-light radius is the circularised one (its shear keeps the area), ours is along the
    # major axis; both position angles are measured from +x (the column index) towards +y
    w, c = source_mixture(psf, r_e / np.sqrt(q) / PIXEL_SCALE, q, beta, bulge)
    add_mixture(ours, n // 2, n // 2, 1.0, w, c)
    assert abs(ours.sum() - ref.sum()) < (0.01 if kind == "exp" else 0.03)
    assert np.max(np.abs(ours - ref)) < 0.015 * ref.max()


def test_mixtures_have_unit_flux_and_half_light_radius():
    for kind in ("exp", "dev"):
        w, s = profile_mixture(kind)
        assert w.sum() == pytest.approx(1.0)
        assert np.sum(w * (1 - np.exp(-0.5 / s**2))) == pytest.approx(0.5, abs=1e-6)


def test_the_psf_has_the_requested_fwhm_and_a_power_law_wing():
    for b in BANDS:
        p = PSF.for_seeing(1.15, b)
        assert p.fwhm_arcsec == 1.15 and p.weights.sum() == pytest.approx(1.0)
        n = 81
        img = np.zeros((n, n))
        add_mixture(img, n // 2, n // 2, 1.0, *source_mixture(p))
        profile = img[n // 2, n // 2:]
        half = np.interp(profile[0] / 2, profile[::-1], np.arange(len(profile))[::-1])
        assert 2 * half * PIXEL_SCALE == pytest.approx(1.15, rel=0.03)
        enclosed = p.enclosed(np.array([2.0, 7.4]) / PIXEL_SCALE)
        assert 0.03 < 1 - enclosed[0] / enclosed[1] < 0.12  # a Gaussian core alone would leave < 0.1%


def test_the_five_seeings_of_a_field_differ():
    fields = field_table(300, np.random.default_rng(0))
    seeing = fields[[f"seeing_{b}" for b in BANDS]].to_numpy()
    ratio = np.log(seeing / fields[["seeing_r"]].to_numpy())
    assert np.all(np.std(ratio[:, [0, 1, 3, 4]], axis=0) > 0.05)  # the real survey: 0.07-0.11
    assert np.median(seeing[:, 0]) > np.median(seeing[:, 2]) > np.median(seeing[:, 3])  # u > r > i
