"""An offline synthetic SDSS survey that writes exactly the files the SDSS steps write, and whose
catalogue is measured from its own frames.

Nothing here is real data: every catalogue it writes is tagged ``source=synthetic`` in its Parquet
metadata, frame headers carry ``SURVEY = 'SYNTHETIC'``, and run numbers start at 9000 (no real
SDSS imaging run is numbered that high).

Fields. Each field gets an r-band TAN WCS at 0.396"/px with the SDSS orientation (RA along rows,
Dec along columns) and a small random rotation; the other four bands share the CD matrix but
their reference pixel is offset from r's by 3-11.5 px (as measured on the real field 2583/2/136).
Seeing is drawn per field *and* per band: ln psffwhm_r ~ N(0.143, 0.157) (median 1.15"), and
ln(psffwhm_x / psffwhm_r) ~ N(mu_x, sigma_x) with u (0.176, 0.100), g (0.107, 0.103),
i (-0.068, 0.070), z (-0.035, 0.108), the medians and scatters of the released real faint objects
(``../shared/margnet-release``). Reddening E(B-V) is log-normal, ln E ~ N(-3.48, 0.69), from the
same objects' extinction_r. Sky noise per band is the real field's (:mod:`sdssclr.survey.render`).

Objects. Classes STAR/GALAXY/QSO are drawn with probabilities ``class_fractions``; r magnitudes
follow power-law number counts, p(r) ~ 10^(alpha r) (alpha 0.12 stars, 0.35 galaxies, 0.30
quasars).
- Stars follow a stellar locus: halo turn-off stars and an intermediate population parametrised
  by g-r, and M dwarfs parametrised by r-i (g-r saturating near 1.4), whose share grows with r
  (:data:`DWARF_SHARE`); 0.05 mag scatter.
- Quasars have redshifts from a mixture peaking at z ~ 1.6 with a second component at z ~ 2.8;
  blue power-law colours with emission-line wiggles, the Lyman-alpha forest reddening u-g above
  z ~ 2.6 and g-r above z ~ 3.3 (the stellar-locus crossing at z ~ 2.5-3). Below z = 0.6 a nucleus
  sits in an exponential host galaxy holding up to half the light.
- Galaxies have redshifts growing with r; a red sequence (share :data:`RED_FRACTION`, falling
  with r; bulge-dominated) and a blue cloud (disc-dominated), each with colours reddening with z.
  Each is a de Vaucouleurs bulge plus an exponential disc sharing a half-light radius log-normal
  about GALAXY_SIZE x 10^(-0.1 (r - 18)) arcsec (GALAXY_SIZE_DEX; RED_SIZE times that on the red
  sequence), axis ratio 0.4-1, random position angle.
- Neighbours not in the catalogue: stars (``background_density`` per 10^5 px) and galaxies
  (``neighbour_galaxies`` per arcmin^2), r 19.5-23, so blends happen.

Frames (:mod:`sdssclr.survey.render`): every source PSF-convolved through its band's WCS, the PSF
with the real field's power-law wing, cosmic rays and bad columns interpolated over, sky and
source noise in integer data numbers with a per-column calibration vector (HDU1), as real frames.

Catalogue (:mod:`sdssclr.survey.photometry`): PSF and model magnitudes, their errors, ``deVRad``,
``psffwhm`` and the r-band flags measured from those frames, with their noise, by fitting
PSF-convolved profiles with the pipeline's PSF model (which differs from the PSF the frames were
rendered with by :data:`PSF_MISMATCH_LN`, as SDSS's does); positions carry a centroid error.

Calibration used image statistics of the real field and the feature distributions of the released
real faint objects only (``benchmarks/realism.py`` prints both comparisons), never a classifier's
score. Spectroscopic columns (class, redshift,
warnings) and the catalogue-level flags ``clean``, ``mode`` and ``insideMask`` are drawn (a few per
cent fail each spectroscopic cut).

Density. The demo packs 40 spectroscopic and 20 photometric objects into a 320 x 320 px field
(4.5 arcmin^2, ~13 per arcmin^2) for speed; the real survey has ~1.7 spectroscopic objects per
1489 x 2048 px field (the release's 239,999 compact objects lie in 138,475 fields) among ~40
photometric ones per arcmin^2 to r ~ 23, so the synthetic survey over-represents spectroscopic
objects per field by two to three orders of magnitude and under-represents unlabelled ones.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS
from tqdm import tqdm

from ..bands import BANDS, EXTINCTION_COEFF, FWHM_TO_SIGMA, PIXEL_SCALE, mag_to_nmgy
from ..catalog import COLUMNS, FIELD_KEYS, OBJECT_CLASSES, PHOTO_COLUMN_NAMES
from ..io import write_parquet_atomic
from .frames import FRAME_OFFSET, field_paths, write_frame
from .photometry import TemplateBank, catalogue_columns, measure_field
from .render import PSF, SKY_SIGMA_NMGY, SKY_DN, defects, interpolate_rows, noisy_frame, render_source

log = logging.getLogger(__name__)

FIRST_RUN = 9000
#: ln psffwhm_r ~ N(mean, sd), clipped; ln(psffwhm_x / psffwhm_r) ~ N(mean, sd) per band: the
#: medians and robust scatters of the released real faint objects.
SEEING_R_LN = (0.143, 0.14)
SEEING_RANGE = (0.7, 1.75)
#: The photometric pipeline's PSF model is not the true PSF: the frames are rendered with a PSF
#: whose FWHM is the model's times exp(N(mean, sd)) per field and band, so point sources fit
#: slightly extended (the real faint stars' deVRad, 0.08" median in r and 0.11" in u, needs it).
PSF_MISMATCH_LN = {"u": (0.08, 0.06), "g": (0.04, 0.05), "r": (0.03, 0.04), "i": (0.03, 0.04), "z": (0.05, 0.05)}
#: Galaxies: median half-light radius GALAXY_SIZE" at r = 18 (shrinking by 10^-0.1 per magnitude)
#: with GALAXY_SIZE_DEX scatter; the red sequence's share RED_FRACTION[0] at r = 20.5, falling by
#: RED_FRACTION[1] per magnitude (clipped to 0.2-0.9): the released faint galaxies' g-r medians
#: are 1.56, 1.08 and 0.61 at r 20-21, 21-22 and 22-23 (the compact cut keeps fewer red galaxies
#: than are drawn). The narrow size scatter: the released faint galaxies are rarely unresolved
#: (deVRad_r below 0.08" for 5%), which a 0.45 dex scatter's small tail contradicts.
GALAXY_SIZE, GALAXY_SIZE_DEX, RED_FRACTION = 1.7, 0.25, (0.8, 0.2)
#: Red-sequence galaxies of a given r lie further away (luminous red galaxies): their radii are
#: RED_SIZE times the blue cloud's.
RED_SIZE = 0.75
#: Stars: the M dwarfs' share at r = 20.5, its growth per magnitude and its bounds, and the
#: intermediate population's share (halo turn-off stars the rest): among the released faint stars
#: g-r > 1.2 for 20%, 50% and 69% at r 20-21, 21-22 and 22-23.
DWARF_SHARE, DWARF_SHARE_SLOPE, DWARF_SHARE_RANGE, INTERMEDIATE_SHARE = 0.20, 0.26, (0.05, 0.8), 0.15
SEEING_RATIO_LN = {"u": (0.176, 0.100), "g": (0.107, 0.103), "r": (0.0, 0.0), "i": (-0.068, 0.070),
                   "z": (-0.035, 0.108)}
#: ln E(B-V) ~ N(mean, sd), clipped to EBV_RANGE: from the released objects' extinction_r.
EBV_LN, EBV_RANGE = (-3.48, 0.69), (0.003, 1.0)
#: Cosmic-ray tracks per 10^5 pixels of a frame, and the chance that a frame has a bad column.
COSMIC_PER_1E5_PX, BAD_COLUMN_RATE = 1.5, 0.1


def _power_law_mags(rng, n, lo, hi, alpha):
    """Magnitudes in [lo, hi) with p(m) ~ 10^(alpha m), by inverse CDF."""
    a, b = 10 ** (alpha * lo), 10 ** (alpha * hi)
    return np.log10(a + rng.random(n) * (b - a)) / alpha


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _star_colours(rng, r):
    """Stellar locus: halo turn-off stars, an intermediate population, and M dwarfs, whose g-r
    saturates near 1.4 while r-i runs to 2 (parametrised by r-i)."""
    n = len(r)
    dwarf_share = np.clip(DWARF_SHARE + DWARF_SHARE_SLOPE * (r - 20.5), *DWARF_SHARE_RANGE)
    u = rng.random(n)
    pop = np.where(u < dwarf_share, 2, np.where(u < dwarf_share + INTERMEDIATE_SHARE, 1, 0))
    gr = np.where(pop == 0, rng.normal(0.22, 0.15, n), rng.normal(0.8, 0.2, n))
    gr = np.clip(gr, -0.3, 1.3)
    ri = 0.3 * gr - 0.02
    iz = 0.45 * ri + 0.02
    dwarf = pop == 2
    ri_m = np.clip(rng.gamma(2.0, 0.35, n) + 0.6, 0.6, 2.6)
    ri = np.where(dwarf, ri_m, ri)
    gr = np.where(dwarf, np.clip(1.25 + 0.2 * (ri_m - 0.6), 1.2, 1.65), gr)
    iz = np.where(dwarf, 0.25 + 0.5 * ri_m, iz)
    ug = np.where(gr < 1.0, 0.75 + 1.35 * gr, 2.1 + 0.4 * (gr - 1.0))
    s = lambda: rng.normal(0, 0.05, n)  # noqa: E731
    return ug + s(), gr + s(), ri + s(), iz + s()


def _qso_colours(rng, z):
    n = len(z)
    ug = 0.15 + 0.1 * np.sin(3 * z) + 1.6 * _sigmoid((z - 2.6) / 0.15) + 1.5 * _sigmoid((z - 3.4) / 0.2)
    gr = 0.15 + 0.1 * np.sin(2.5 * z + 1) + 0.9 * _sigmoid((z - 3.3) / 0.2)
    ri = 0.12 + 0.12 * np.sin(2 * z + 2)
    iz = 0.08 + 0.1 * np.sin(2 * z)
    s = lambda: rng.normal(0, 0.08, n)  # noqa: E731
    return ug + s(), gr + s(), ri + s(), iz + s()


def _galaxy_colours(rng, z, red):
    """Colours of the red sequence (``red``) and the blue cloud, reddening with redshift."""
    n = len(z)
    ug = np.where(red, 1.8 + 1.5 * z, 0.8 + 0.6 * z) + rng.normal(0, 0.25, n)
    gr = np.where(red, 0.75 + 2.1 * z, 0.3 + 0.3 * z) + rng.normal(0, 0.13, n)
    ri = np.where(red, 0.3 + 1.6 * z, 0.2 + 0.25 * z) + rng.normal(0, 0.09, n)
    iz = np.where(red, 0.3 + 0.3 * z, 0.2 + 0.3 * z) + rng.normal(0, 0.07, n)
    return ug, gr, ri, iz


def field_header(f: pd.Series, band: str, shape) -> fits.Header:
    ny, nx = shape
    theta = np.deg2rad(f["rot_deg"])
    s = PIXEL_SCALE / 3600.0
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRVAL1"], h["CRVAL2"] = float(f["ra_c"]), float(f["dec_c"])
    # Pixel coordinates of the field centre in this band (FITS 1-based).
    h["CRPIX1"] = (nx + 1) / 2.0 + float(f[f"dx_{band}"])
    h["CRPIX2"] = (ny + 1) / 2.0 + float(f[f"dy_{band}"])
    # SDSS orientation: RA increases along rows (y), Dec along columns (x).
    h["CD1_1"], h["CD1_2"] = -s * np.sin(theta), s * np.cos(theta)
    h["CD2_1"], h["CD2_2"] = s * np.cos(theta), s * np.sin(theta)
    h["RADESYS"], h["EQUINOX"] = "ICRS", 2000.0
    h["FILTER"], h["RUN"], h["CAMCOL"] = band, int(f["run"]), int(f["camcol"])
    h["FRAME"], h["RERUN"] = int(f["field"]) + FRAME_OFFSET[band], str(int(f["rerun"]))
    h["BUNIT"] = "nanomaggy"
    h["SURVEY"] = ("SYNTHETIC", "sdssclr synthetic survey: not real SDSS data")
    return h


def field_wcs(f: pd.Series, band: str, shape):
    return WCS(field_header(f, band, shape))


def field_table(n_fields: int, rng: np.random.Generator) -> pd.DataFrame:
    """Per-field geometry, seeing per band and reddening."""
    k = np.arange(n_fields)
    fields = pd.DataFrame({
        "rerun": 301,
        "run": FIRST_RUN + k // 1200,
        "camcol": 1 + (k % 1200) // 200,
        "field": 11 + k % 200,
        "ra_c": 10.0 + 0.25 * (k % 1200),
        "dec_c": -1.0 + 0.25 * (k // 1200),
        "rot_deg": rng.normal(0.0, 0.05, n_fields),
        "ebv": np.clip(np.exp(rng.normal(*EBV_LN, n_fields)), *EBV_RANGE),
    })
    seeing_r = np.clip(np.exp(rng.normal(*SEEING_R_LN, n_fields)), *SEEING_RANGE)
    for b in BANDS:
        mu, sd = SEEING_RATIO_LN[b]
        fields[f"seeing_{b}"] = seeing_r * np.exp(rng.normal(mu, sd, n_fields)) if sd else seeing_r
    for b in BANDS:  # the PSF the frames are rendered with (the pipeline's model is seeing_x)
        fields[f"true_seeing_{b}"] = fields[f"seeing_{b}"] * np.exp(rng.normal(*PSF_MISMATCH_LN[b], n_fields))
    for b in BANDS:
        if b == "r":
            fields["dx_r"], fields["dy_r"] = 0.0, 0.0
            continue
        sign = rng.choice([-1.0, 1.0], n_fields)
        fields[f"dy_{b}"] = sign * rng.uniform(3.0, 11.5, n_fields)
        fields[f"dx_{b}"] = rng.uniform(-1.5, 1.5, n_fields)
    return fields


def draw_sources(rng: np.random.Generator, cls: np.ndarray, r_range=None) -> dict:
    """Intrinsic magnitudes (u..z, before extinction), redshift and shape of sources of classes ``cls``."""
    n = len(cls)
    is_star, is_gal, is_qso = cls == "STAR", cls == "GALAXY", cls == "QSO"
    r0 = np.empty(n)
    lo = {"STAR": 14.5, "GALAXY": 16.0, "QSO": 16.5} if r_range is None else dict.fromkeys(OBJECT_CLASSES, r_range[0])
    hi = 22.5 if r_range is None else r_range[1]
    r0[is_star] = _power_law_mags(rng, is_star.sum(), lo["STAR"], hi, 0.12)
    r0[is_gal] = _power_law_mags(rng, is_gal.sum(), lo["GALAXY"], hi, 0.35)
    r0[is_qso] = _power_law_mags(rng, is_qso.sum(), lo["QSO"], hi, 0.30)
    z = np.empty(n)
    z[is_star] = rng.normal(1e-4, 3e-4, is_star.sum())  # some negative: fail s.z > 0
    zq = np.where(rng.random(is_qso.sum()) < 0.75, rng.normal(1.6, 0.6, is_qso.sum()), rng.normal(2.8, 0.4, is_qso.sum()))
    z[is_qso] = np.clip(zq, 0.3, 4.5)
    z[is_gal] = np.clip(0.05 + 0.08 * (r0[is_gal] - 16) + rng.normal(0, 0.12, is_gal.sum()), 0.02, 0.9)
    red = rng.random(n) < np.clip(RED_FRACTION[0] - RED_FRACTION[1] * (r0 - 20.5), 0.2, 0.9)
    colours = np.zeros((n, 4))
    colours[is_star] = np.stack(_star_colours(rng, r0[is_star]), 1)
    colours[is_qso] = np.stack(_qso_colours(rng, z[is_qso]), 1)
    colours[is_gal] = np.stack(_galaxy_colours(rng, z[is_gal], red[is_gal]), 1)
    mags = {"r": r0, "g": r0 + colours[:, 1]}
    mags["u"] = mags["g"] + colours[:, 0]
    mags["i"] = r0 - colours[:, 2]
    mags["z"] = mags["i"] - colours[:, 3]
    median = GALAXY_SIZE * 10 ** (-0.1 * (r0 - 18)) * np.where(red, RED_SIZE, 1.0)
    r_e = np.where(is_gal, np.exp(rng.normal(np.log(median), GALAXY_SIZE_DEX * np.log(10), n)), 0.0)
    # quasar hosts: below z = 0.6, an exponential host holding up to half of the light
    host = np.where(is_qso & (z < 0.6), rng.uniform(0.1, 0.5, n) * (1 - z / 0.6), 0.0)
    r_e = np.where(host > 0, rng.uniform(0.5, 1.5, n), r_e)
    return {"mags": mags, "redshift": z, "r_e": np.clip(r_e, 0.0, 6.0), "q": np.where(is_gal | (host > 0),
            rng.uniform(0.4, 1.0, n), 1.0), "pa": rng.uniform(0, np.pi, n),
            "bulge": np.where(is_gal, np.where(red, rng.beta(3.0, 1.5, n), rng.beta(1.0, 3.0, n)), 0.0), "host": host}


def draw_objects(n_objects: int, fields: pd.DataFrame, frame_shape, rng: np.random.Generator, class_fractions,
                 edge_fraction: float, stamp_margin: int, objid_base: int, r_range=None) -> pd.DataFrame:
    """The truth of ``n_objects`` catalogue objects spread over ``fields``: class, position (r-band
    pixels and sky), fluxes per band after extinction, shape, redshift. ``r_range`` (lo, hi) draws
    every class's intrinsic r from its number counts within that range instead of the survey's."""
    ny, nx = frame_shape
    fidx = np.sort(rng.permutation(np.arange(n_objects) % len(fields)))
    fld = fields.iloc[fidx].reset_index(drop=True)
    cls = rng.choice(np.array(OBJECT_CLASSES), n_objects, p=np.asarray(class_fractions) / sum(class_fractions))
    src = draw_sources(rng, cls, r_range)
    x = rng.uniform(stamp_margin, nx - 1 - stamp_margin, n_objects)
    y = rng.uniform(stamp_margin, ny - 1 - stamp_margin, n_objects)
    near = rng.random(n_objects) < edge_fraction
    x[near] = rng.uniform(0, 8, near.sum())
    truth = pd.DataFrame({"objID": objid_base + np.arange(n_objects, dtype=np.int64), "class": cls,
                          "field_index": fidx, **{k: fld[k].to_numpy() for k in FIELD_KEYS},
                          "x_r": x, "y_r": y, "redshift": src["redshift"], "r_e": src["r_e"], "q": src["q"],
                          "pa": src["pa"], "bulge": src["bulge"], "host": src["host"], "ebv": fld["ebv"].to_numpy()})
    for b in BANDS:
        truth[f"flux_{b}"] = mag_to_nmgy(src["mags"][b] + EXTINCTION_COEFF[b] * truth["ebv"].to_numpy())
    ra, dec = np.empty(n_objects), np.empty(n_objects)
    for k, rows in truth.groupby("field_index").indices.items():
        w = field_wcs(fields.iloc[k], "r", frame_shape)
        ra[rows], dec[rows] = w.all_pix2world(x[rows], y[rows], 0)
    truth["ra_true"], truth["dec_true"] = ra, dec
    return truth


def spectroscopic_columns(truth: pd.DataFrame, rng: np.random.Generator) -> dict:
    """The SpecObj columns of catalogue objects (a few per cent fail each spectroscopic cut)."""
    n = len(truth)
    objid = truth["objID"].to_numpy()
    return {"specObjID": 2_000_000_000_000_000_000 + np.arange(n, dtype=np.int64), "class": truth["class"].to_numpy(),
            "redshift": truth["redshift"].to_numpy(),
            "zErr": np.where(rng.random(n) < 0.01, 0.2, np.abs(rng.normal(0, 0.0005, n)) + 1e-5),
            "zWarning": np.where(rng.random(n) < 0.02, 4, 0), "sciencePrimary": np.where(rng.random(n) < 0.02, 0, 1),
            "targetType": np.where(rng.random(n) < 0.01, "SKY", "SCIENCE"), "bestObjID": objid,
            "fluxObjID": np.where(rng.random(n) < 0.01, objid + 1, objid)}


def neighbours(field: pd.Series, frame_shape, rng: np.random.Generator, star_density: float,
               galaxy_density: float) -> pd.DataFrame:
    """Sources not in any catalogue: faint stars and galaxies from number counts, uniform over the frame."""
    ny, nx = frame_shape
    area_arcmin2 = nx * ny * (PIXEL_SCALE / 60) ** 2
    n_star, n_gal = rng.poisson(star_density * nx * ny / 1e5), rng.poisson(galaxy_density * area_arcmin2)
    cls = np.array(["STAR"] * n_star + ["GALAXY"] * n_gal)
    src = draw_sources(rng, cls, r_range=(19.5, 23.0))
    x, y = rng.uniform(0, nx, len(cls)), rng.uniform(0, ny, len(cls))
    ra, dec = field_wcs(field, "r", frame_shape).all_pix2world(x, y, 0)
    out = pd.DataFrame({"ra_true": ra, "dec_true": dec, "r_e": src["r_e"], "q": src["q"], "pa": src["pa"],
                        "bulge": src["bulge"], "host": 0.0})
    for b in BANDS:
        out[f"flux_{b}"] = mag_to_nmgy(src["mags"][b] + EXTINCTION_COEFF[b] * field["ebv"])
    return out


def simulate_field(args):
    """Render one field's five frames (written when ``frames_dir`` is set) and measure its catalogue
    objects on them. Returns (index of the objects in the caller's table, measured columns)."""
    field, objects, neighbour_table, frames_dir, frame_shape, seed = args
    rng = np.random.default_rng(seed)
    ny, nx = frame_shape
    sources = pd.concat([objects, neighbour_table], ignore_index=True)
    psfs = {b: PSF.for_seeing(float(field[f"seeing_{b}"]), b) for b in BANDS}  # the pipeline's model
    true_psfs = {b: PSF.for_seeing(float(field[f"true_seeing_{b}"]), b) for b in BANDS}
    frames, calib, interpolated, cosmic, saturated, positions = {}, {}, {}, {}, {}, {}
    n_obj = len(objects)
    # measured positions: the truth plus a centroid error of about FWHM / (2 S/N) in r
    snr = objects["flux_r"].to_numpy() / (SKY_SIGMA_NMGY["r"] * math.sqrt(4 * math.pi)
                                          * psfs["r"].fwhm_arcsec / PIXEL_SCALE * FWHM_TO_SIGMA)
    pos_err = np.minimum(0.5 * psfs["r"].fwhm_arcsec / PIXEL_SCALE / np.maximum(snr, 1e-3), 1.0)
    wr = field_wcs(field, "r", frame_shape)
    xr, yr = wr.all_world2pix(objects["ra_true"].to_numpy(), objects["dec_true"].to_numpy(), 0)
    xr, yr = xr + rng.normal(0, 1, n_obj) * pos_err, yr + rng.normal(0, 1, n_obj) * pos_err
    ra, dec = wr.all_pix2world(xr, yr, 0)
    paths = field_paths(frames_dir, field["rerun"], field["run"], field["camcol"], field["field"]) if frames_dir else None
    for b in BANDS:
        wcs = field_wcs(field, b, frame_shape)
        xs, ys = wcs.all_world2pix(sources["ra_true"].to_numpy(), sources["dec_true"].to_numpy(), 0)
        flux = sources[f"flux_{b}"].to_numpy()
        r_e, q, pa, bulge, host = (sources[c].to_numpy() for c in ("r_e", "q", "pa", "bulge", "host"))
        model = np.zeros(frame_shape)
        for k in range(len(sources)):
            if host[k] > 0:  # a quasar: nucleus plus exponential host
                render_source(model, xs[k], ys[k], flux[k] * (1 - host[k]), true_psfs[b])
                render_source(model, xs[k], ys[k], flux[k] * host[k], true_psfs[b], r_e[k] / PIXEL_SCALE, q[k], pa[k],
                              0.0)
            else:
                render_source(model, xs[k], ys[k], flux[k], true_psfs[b], r_e[k] / PIXEL_SCALE, q[k], pa[k], bulge[k])
        cr, bad = defects(rng, frame_shape, COSMIC_PER_1E5_PX * nx * ny / 1e5, BAD_COLUMN_RATE)
        frame, calib[b], saturated[b] = noisy_frame(rng, model, b)
        frame = frame + np.where(cr, SKY_SIGMA_NMGY[b] * rng.uniform(20, 200, frame_shape), 0.0).astype(np.float32)
        interpolated[b], cosmic[b] = cr | bad, cr
        frames[b] = interpolate_rows(frame, interpolated[b]).astype(np.float32)
        positions[b] = wcs.all_world2pix(ra, dec, 0)
        if paths is not None:
            header = field_header(field, b, frame_shape)
            header["NMGY"] = (float(calib[b].mean()), "mean nanomaggies per count")
            write_frame(paths[b], frames[b], header, calib[b], np.full((8, 8), SKY_DN, dtype=np.float32))
    banks = {b: TemplateBank(psfs[b]) for b in BANDS}
    measured = measure_field(frames, positions, banks, calib, interpolated, cosmic, saturated, SKY_SIGMA_NMGY,
                             rng)
    extinction = {b: EXTINCTION_COEFF[b] * float(field["ebv"]) for b in BANDS}
    cols = catalogue_columns(measured, psfs, extinction)
    cols["ra"], cols["dec"] = ra, dec
    return objects.index.to_numpy(), pd.DataFrame(cols)


def simulate(fields: pd.DataFrame, objects: pd.DataFrame, frame_shape, seed: int, *, frames_dir=None,
             background_density: float = 2.0, neighbour_galaxies: float = 8.0, threads: int = 1) -> pd.DataFrame:
    """Render every field (frames written below ``frames_dir`` when given) and return the measured
    photometric columns of ``objects``, row-aligned with it."""
    groups = objects.groupby("field_index").indices
    jobs = []
    for k in range(len(fields)):
        rng = np.random.default_rng([seed, 11, k])
        nb = neighbours(fields.iloc[k], frame_shape, rng, background_density, neighbour_galaxies)
        objs = objects.iloc[groups.get(k, [])]
        jobs.append((fields.iloc[k], objs, nb, None if frames_dir is None else str(frames_dir), tuple(frame_shape),
                     [seed, 7, k]))
    parts = []
    with ProcessPoolExecutor(max_workers=max(1, threads)) as pool:
        for index, cols in tqdm(pool.map(simulate_field, jobs, chunksize=2), total=len(jobs), desc="fields",
                                mininterval=5):
            parts.append(cols.set_index(index))
    measured = pd.concat(parts).sort_index() if parts else pd.DataFrame()
    return measured.reindex(objects.index)


def catalogue(truth: pd.DataFrame, measured: pd.DataFrame, rng: np.random.Generator, spectroscopic: bool) -> pd.DataFrame:
    """The catalogue table: measured photometry, drawn spectroscopy and catalogue-level flags."""
    n = len(truth)
    cat = {"objID": truth["objID"].to_numpy()}
    if spectroscopic:
        cat.update(spectroscopic_columns(truth, rng))
    for key in FIELD_KEYS:
        cat[key] = truth[key].to_numpy()
    for c in measured.columns:
        cat[c] = measured[c].to_numpy()
    cat["clean"] = np.where(rng.random(n) < 0.02, 0, 1)
    cat["mode"] = np.where(rng.random(n) < 0.02, 2, 1)
    cat["insideMask"] = np.where(rng.random(n) < 0.01, 1, 0)
    names = [c.alias for c in COLUMNS] if spectroscopic else list(PHOTO_COLUMN_NAMES)
    out = pd.DataFrame(cat)[names]
    for c in COLUMNS:
        if c.alias in out and c.dtype != "str":
            out[c.alias] = out[c.alias].astype(c.dtype)
    return out


def generate_catalog(n_objects: int, objects_per_field: int, frame_shape, seed: int,
                     class_fractions=(0.3, 0.3, 0.4), edge_fraction: float = 0.02, stamp_margin: int = 32,
                     background_density: float = 2.0, neighbour_galaxies: float = 8.0,
                     threads: int = 1, r_range=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A catalogue measured from frames rendered in memory (none written). Returns (catalogue, truth,
    fields). ``r_range``: as :func:`draw_objects` (for diagnostics of a magnitude range)."""
    rng = np.random.default_rng(seed)
    fields = field_table(max(1, int(np.ceil(n_objects / objects_per_field))), rng)
    truth = draw_objects(n_objects, fields, tuple(frame_shape), rng, class_fractions, edge_fraction, stamp_margin,
                         9_100_000_000_000_000, r_range=r_range)
    measured = simulate(fields, truth, frame_shape, seed, background_density=background_density,
                        neighbour_galaxies=neighbour_galaxies, threads=threads)
    return catalogue(truth, measured, rng, spectroscopic=True), truth, fields


def generate_survey(catalog_path, frames_dir, *, n_objects: int, objects_per_field: int,
                    frame_shape, seed: int, class_fractions=(0.3, 0.3, 0.4),
                    edge_fraction: float = 0.02, background_density: float = 2.0, neighbour_galaxies: float = 8.0,
                    photometric_per_field: int = 0, truth_path=None, photometric_path=None,
                    threads: int = 1) -> pd.DataFrame:
    """Write the synthetic catalogue (Parquet, tagged ``source=synthetic``) and all frames.

    ``photometric_per_field`` more objects per field, drawn from the same population without the
    spectroscopic selection, are rendered into the frames too, measured the same way and written
    to ``photometric_path`` with the photometric columns only (no spectroscopy, no class): what a
    PhotoObj query of the same fields returns."""
    frame_shape = tuple(frame_shape)
    rng = np.random.default_rng(seed)
    fields = field_table(max(1, int(np.ceil(n_objects / objects_per_field))), rng)
    truth = draw_objects(n_objects, fields, frame_shape, rng, class_fractions, edge_fraction, 32,
                         9_100_000_000_000_000)
    photo = draw_objects(photometric_per_field * len(fields), fields, frame_shape, np.random.default_rng(seed + 1),
                         class_fractions, edge_fraction, 32, 9_200_000_000_000_000)
    log.info("synthetic survey: %d objects and %d photometric objects without spectra in %d fields, frames %s, "
             "classes %s", len(truth), len(photo), len(fields), frame_shape, truth["class"].value_counts().to_dict())
    everything = pd.concat([truth.assign(spectroscopic=True), photo.assign(spectroscopic=False)], ignore_index=True)
    measured = simulate(fields, everything, frame_shape, seed, frames_dir=frames_dir,
                        background_density=background_density, neighbour_galaxies=neighbour_galaxies, threads=threads)
    spec = everything["spectroscopic"].to_numpy()
    catalog = catalogue(truth, measured[spec].reset_index(drop=True), rng, spectroscopic=True)
    photometric = catalogue(photo, measured[~spec].reset_index(drop=True), rng, spectroscopic=False)
    if truth_path is not None:
        write_parquet_atomic(everything.drop(columns="spectroscopic"), truth_path, {"source": "synthetic"})
    if photometric_path is not None:
        write_parquet_atomic(photometric, photometric_path,
                             {"source": "synthetic", "survey": "sdssclr synthetic survey, photometric objects"})
    write_parquet_atomic(catalog, catalog_path, {"source": "synthetic", "survey": "sdssclr synthetic survey"})
    return catalog
