"""An offline synthetic SDSS survey that writes exactly the files the SDSS steps write.

Nothing here is real data: every catalogue it writes is tagged ``source=synthetic`` in its Parquet
metadata, frame headers carry ``SURVEY = 'SYNTHETIC'``, and run numbers start at 9000 (no real
SDSS imaging run is numbered that high).

Generative model
----------------
Fields. Each field gets an r-band TAN WCS at 0.396"/px with the SDSS orientation (RA along rows,
Dec along columns) and a small random rotation. The other four bands share the CD matrix but their
reference pixel is offset from r's by 3-11.5 px (mostly along the scan direction, as measured on
the real field 2583/2/136), so a cutter that cuts the same pixel box in every band misaligns the
colours. Each field has an r-band seeing drawn from a log-normal (median 1.3", clipped 0.8-2.2")
scaled per band (u 1.12, g 1.06, r 1, i 0.95, z 0.97), and a dust reddening E(B-V) drawn from an
exponential with mean 0.05 (clipped at 0.3), applied with the per-band coefficients of
:data:`sdssclr.bands.EXTINCTION_COEFF`.

Objects. Classes STAR/GALAXY/QSO are drawn with probabilities ``class_fractions``; r magnitudes
follow power-law number counts, p(r) ~ 10^(alpha r) (alpha 0.12 stars, 0.35 galaxies, 0.30
quasars).
- Stars follow a stellar locus parametrised by g-r (a mixture of turn-off, intermediate and M-dwarf
  populations); u-g, r-i, i-z are piecewise-linear functions of g-r plus 0.05 mag scatter.
- Quasars have redshifts from a mixture peaking at z ~ 1.6 with a second component at z ~ 2.8;
  their colours are blue power-law colours with emission-line wiggles, and the Lyman-alpha forest
  reddens u-g steeply above z ~ 2.6 and g-r above z ~ 3.3, so quasars at z ~ 2.5-3 cross the
  stellar locus (the classic confusion region).
- Galaxies have redshifts growing with r and colours reddening with z; they are exponential discs
  with half-light radius r_e log-normal about 0.9" x 10^(-0.1 (r - 18)) (0.45 dex scatter), axis
  ratio 0.4-1 and random position angle, so many faint galaxies are close to the PSF size.
Observed magnitudes are intrinsic + extinction. The catalogue's measured quantities are produced
the way the photometric pipeline would report them: model fluxes get Gaussian errors from the sky
noise within the (seeing plus size) effective area, converted to SDSS asinh magnitudes and errors;
``dered_x = x - extinction_x``; ``psfMagErr_r`` uses the PSF-matched flux (lower for extended
objects); ``deVRad_x`` is 1.2 r_e times measurement noise for galaxies and the absolute value of a
noise term for point sources; ``psffwhm_x`` is the field seeing with 1% scatter.
A few per cent of objects fail each quality cut (bad redshift warnings, negative star redshifts,
unclean photometry, r-band flags such as SATURATED or EDGE, missing BINNED1, zero radii), and a
small fraction are placed near a frame edge so that their stamp leaves the frame.

Images. Sources (catalogue objects plus faint background stars not in the catalogue) are rendered
in each band at their position through that band's WCS, as a double-Gaussian PSF (90% core of the
band's FWHM, 10% wing twice as wide); galaxies are the exponential profile approximated by a
non-negative mixture of Gaussians (fitted once by NNLS), each component convolved analytically
with both PSF components. Noise is generated in data numbers (DN): sky noise with the per-pixel
sigma that gives the band's 5-sigma point-source depth (u 22.0, g 22.2, r 22.2, i 21.3, z 20.5 at
1.3" seeing), plus source Poisson noise (gain 4.7), rounded to integer DN and converted back to
nanomaggies through a slowly varying per-column calibration vector (HDU1), as in real frames.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS
from scipy.optimize import nnls
from tqdm import tqdm

from ..bands import BANDS, EXTINCTION_COEFF, FWHM_TO_SIGMA, PIXEL_SCALE, asinh_mag, asinh_mag_err, mag_to_nmgy
from ..catalog import COLUMNS, FIELD_KEYS, OBJECT_CLASSES, PHOTO_COLUMN_NAMES, PHOTO_FLAGS
from ..io import write_parquet_atomic
from .frames import FRAME_OFFSET, field_paths, write_frame

log = logging.getLogger(__name__)

SEEING_SCALE = {"u": 1.12, "g": 1.06, "r": 1.0, "i": 0.95, "z": 0.97}
DEPTH_5SIGMA = {"u": 22.0, "g": 22.2, "r": 22.2, "i": 21.3, "z": 20.5}
REFERENCE_SEEING = 1.3
GAIN = 4.7
NOISE_DN = 6.0  # sky sigma in DN, sets the calibration (nanomaggies per DN)
PSF_WING_FRACTION, PSF_WING_SCALE = 0.1, 2.0
FIRST_RUN = 9000


def sky_sigma_nmgy(band: str) -> float:
    """Per-pixel sky noise (nanomaggies) giving the band's 5-sigma depth at reference seeing."""
    sigma_px = REFERENCE_SEEING * SEEING_SCALE[band] * FWHM_TO_SIGMA / PIXEL_SCALE
    return float(mag_to_nmgy(DEPTH_5SIGMA[band]) / 5.0 / np.sqrt(4 * np.pi * sigma_px**2))


@functools.cache
def exponential_mog() -> tuple[np.ndarray, np.ndarray]:
    """Weights and sigmas (in units of r_e) of a Gaussian mixture approximating an exponential
    profile of unit half-light radius, fitted by NNLS to the 2-D surface brightness."""
    sigmas = np.array([0.04, 0.1, 0.2, 0.35, 0.6, 1.0, 1.6])
    r = np.linspace(0.0, 6.0, 600)
    target = np.exp(-1.678 * r)
    target /= np.sum(target * r)
    basis = np.exp(-0.5 * (r[:, None] / sigmas) ** 2) / sigmas**2
    basis /= np.sum(basis * r[:, None], axis=0)
    wt = np.sqrt(r + 1e-3)[:, None]
    weights, _ = nnls(basis * wt, target * wt[:, 0])
    return weights / weights.sum(), sigmas


def _power_law_mags(rng, n, lo, hi, alpha):
    """Magnitudes in [lo, hi) with p(m) ~ 10^(alpha m), by inverse CDF."""
    a, b = 10 ** (alpha * lo), 10 ** (alpha * hi)
    return np.log10(a + rng.random(n) * (b - a)) / alpha


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _star_colours(rng, n):
    pop = rng.choice(3, n, p=[0.5, 0.15, 0.35])
    gr = np.where(pop == 0, rng.normal(0.35, 0.12, n),
                  np.where(pop == 1, rng.normal(0.75, 0.2, n), rng.normal(1.35, 0.12, n)))
    gr = np.clip(gr, -0.3, 1.6)
    ug = np.where(gr < 1.0, 0.75 + 1.35 * gr, 2.1 + 0.4 * (gr - 1.0))
    ri = np.where(gr < 1.2, 0.3 * gr - 0.02, 0.34 + 2.8 * (gr - 1.2))
    iz = 0.45 * ri + 0.02
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


def _galaxy_colours(rng, z):
    n = len(z)
    return (1.4 + 0.6 * z + rng.normal(0, 0.25, n), 0.55 + 1.2 * z + rng.normal(0, 0.12, n),
            0.3 + 0.5 * z + rng.normal(0, 0.07, n), 0.2 + 0.2 * z + rng.normal(0, 0.07, n))


def field_table(n_fields: int, rng: np.random.Generator) -> pd.DataFrame:
    """Per-field geometry, seeing and reddening."""
    k = np.arange(n_fields)
    fields = pd.DataFrame({
        "rerun": 301,
        "run": FIRST_RUN + k // 1200,
        "camcol": 1 + (k % 1200) // 200,
        "field": 11 + k % 200,
        "ra_c": 10.0 + 0.25 * (k % 1200),
        "dec_c": -1.0 + 0.25 * (k // 1200),
        "rot_deg": rng.normal(0.0, 0.05, n_fields),
        "seeing_r": np.clip(np.exp(rng.normal(np.log(1.3), 0.15, n_fields)), 0.8, 2.2),
        "ebv": np.clip(rng.exponential(0.05, n_fields), 0.0, 0.3),
    })
    for b in BANDS:
        if b == "r":
            fields["dx_r"], fields["dy_r"] = 0.0, 0.0
            continue
        sign = rng.choice([-1.0, 1.0], n_fields)
        fields[f"dy_{b}"] = sign * rng.uniform(3.0, 11.5, n_fields)
        fields[f"dx_{b}"] = rng.uniform(-1.5, 1.5, n_fields)
    return fields


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


def generate_catalog(n_objects: int, objects_per_field: int, frame_shape, seed: int,
                     class_fractions=(0.3, 0.3, 0.4), edge_fraction: float = 0.02,
                     stamp_margin: int = 32, fields: pd.DataFrame | None = None,
                     objid_base: int = 9_100_000_000_000_000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Draw fields and objects. Returns (catalogue, truth, fields).

    With ``fields`` given, the objects are spread over those fields (``objects_per_field`` each)
    instead of new ones: the photometric objects of the spectroscopic sample's fields."""
    rng = np.random.default_rng(seed)
    if fields is None:
        n_fields = max(1, int(np.ceil(n_objects / objects_per_field)))
        fields = field_table(n_fields, rng)
    n_fields = len(fields)
    ny, nx = frame_shape
    fidx = np.sort(rng.permutation(np.arange(n_objects) % n_fields))
    fld = fields.iloc[fidx].reset_index(drop=True)

    cls = rng.choice(np.array(OBJECT_CLASSES), n_objects, p=np.asarray(class_fractions) / sum(class_fractions))
    is_star, is_gal, is_qso = cls == "STAR", cls == "GALAXY", cls == "QSO"
    r0 = np.empty(n_objects)
    r0[is_star] = _power_law_mags(rng, is_star.sum(), 14.5, 22.5, 0.12)
    r0[is_gal] = _power_law_mags(rng, is_gal.sum(), 16.0, 22.5, 0.35)
    r0[is_qso] = _power_law_mags(rng, is_qso.sum(), 16.5, 22.5, 0.30)

    z = np.empty(n_objects)
    z[is_star] = rng.normal(1e-4, 3e-4, is_star.sum())  # some negative: fail s.z > 0
    zq = np.where(rng.random(is_qso.sum()) < 0.75, rng.normal(1.6, 0.6, is_qso.sum()),
                  rng.normal(2.8, 0.4, is_qso.sum()))
    z[is_qso] = np.clip(zq, 0.3, 4.5)
    z[is_gal] = np.clip(0.05 + 0.08 * (r0[is_gal] - 16) + rng.normal(0, 0.05, is_gal.sum()), 0.02, 0.9)

    colours = np.zeros((n_objects, 4))
    colours[is_star] = np.stack(_star_colours(rng, is_star.sum()), 1)
    colours[is_qso] = np.stack(_qso_colours(rng, z[is_qso]), 1)
    colours[is_gal] = np.stack(_galaxy_colours(rng, z[is_gal]), 1)
    intrinsic = {"r": r0}
    intrinsic["g"] = r0 + colours[:, 1]
    intrinsic["u"] = intrinsic["g"] + colours[:, 0]
    intrinsic["i"] = r0 - colours[:, 2]
    intrinsic["z"] = intrinsic["i"] - colours[:, 3]

    r_e = np.where(is_gal, np.exp(rng.normal(np.log(0.9 * 10 ** (-0.1 * (r0 - 18))), 0.45 * np.log(10), n_objects)), 0.0)
    r_e = np.clip(r_e, 0.0, 6.0)
    q = np.where(is_gal, rng.uniform(0.4, 1.0, n_objects), 1.0)
    pa = rng.uniform(0, np.pi, n_objects)

    # Positions: uniform within the r-band frame away from the edges, a few close to an edge.
    margin = stamp_margin
    x = rng.uniform(margin, nx - 1 - margin, n_objects)
    y = rng.uniform(margin, ny - 1 - margin, n_objects)
    near = rng.random(n_objects) < edge_fraction
    x[near] = rng.uniform(0, 8, near.sum())
    ra = np.empty(n_objects)
    dec = np.empty(n_objects)
    for k, rows in pd.Series(np.arange(n_objects)).groupby(fidx):
        w = field_wcs(fields.iloc[k], "r", frame_shape)
        ra[rows.to_numpy()], dec[rows.to_numpy()] = w.all_pix2world(x[rows], y[rows], 0)

    cat = {"objID": objid_base + np.arange(n_objects, dtype=np.int64)}
    cat["specObjID"] = 2_000_000_000_000_000_000 + np.arange(n_objects, dtype=np.int64)
    cat["class"] = cls
    cat["redshift"] = z
    cat["zErr"] = np.where(rng.random(n_objects) < 0.01, 0.2, np.abs(rng.normal(0, 0.0005, n_objects)) + 1e-5)
    cat["zWarning"] = np.where(rng.random(n_objects) < 0.02, 4, 0)
    cat["sciencePrimary"] = np.where(rng.random(n_objects) < 0.02, 0, 1)
    cat["targetType"] = np.where(rng.random(n_objects) < 0.01, "SKY", "SCIENCE")
    cat["bestObjID"] = cat["objID"]
    cat["fluxObjID"] = np.where(rng.random(n_objects) < 0.01, cat["objID"] + 1, cat["objID"])
    for key in FIELD_KEYS:
        cat[key] = fld[key].to_numpy()
    cat["ra"], cat["dec"] = ra, dec

    truth = {"objID": cat["objID"], "r_e": r_e, "q": q, "pa": pa, "x_r": x, "y_r": y,
             "ebv": fld["ebv"].to_numpy()}
    err, extinction, deV, psffwhm = {}, {}, {}, {}
    for b in BANDS:
        seeing = fld["seeing_r"].to_numpy() * SEEING_SCALE[b]
        ext = EXTINCTION_COEFF[b] * fld["ebv"].to_numpy()
        m_obs = intrinsic[b] + ext
        flux = mag_to_nmgy(m_obs)
        sig_psf = seeing * FWHM_TO_SIGMA / PIXEL_SCALE
        sig_eff = np.sqrt(sig_psf**2 + (0.6 * r_e / PIXEL_SCALE) ** 2)
        flux_err = sky_sigma_nmgy(b) * np.sqrt(4 * np.pi) * sig_eff
        measured = flux + rng.normal(0, 1, n_objects) * flux_err
        cat[b] = asinh_mag(measured, b)
        err[b] = asinh_mag_err(measured, flux_err, b)
        extinction[b] = ext
        if b == "r":
            psf_flux = flux * sig_psf**2 / sig_eff**2
            psf_err = sky_sigma_nmgy(b) * np.sqrt(4 * np.pi) * sig_psf
            cat["psfMagErr_r"] = asinh_mag_err(psf_flux, psf_err, b)
        noise = 0.05 + 0.5 * err[b]
        deV[b] = np.where(is_gal, 1.2 * r_e * np.exp(rng.normal(0, noise)),
                          np.abs(rng.normal(0, 0.1 + 0.5 * np.minimum(err[b], 1.0))))
        deV[b] = np.where(rng.random(n_objects) < 0.005, 0.0, deV[b])
        psffwhm[b] = np.where(rng.random(n_objects) < 0.002, 0.0, seeing * (1 + rng.normal(0, 0.01, n_objects)))
        truth[f"flux_{b}"] = flux
    for b in BANDS:
        cat[f"err_{b}"] = err[b]
    for b in BANDS:
        cat[f"dered_{b}"] = cat[b] - extinction[b]
    for b in BANDS:
        cat[f"deVRad_{b}"] = deV[b]
    for b in BANDS:
        cat[f"psffwhm_{b}"] = psffwhm[b]
    for b in BANDS:
        cat[f"extinction_{b}"] = extinction[b]

    flags = np.full(n_objects, PHOTO_FLAGS["BINNED1"], dtype=np.int64)
    flags[rng.random(n_objects) < 0.01] = 0  # BINNED1 missing
    for name, bit in PHOTO_FLAGS.items():  # each flag a clean object must not have
        if name != "BINNED1":
            flags[rng.random(n_objects) < 0.003] |= bit
    flags[r0 < 15.0] |= PHOTO_FLAGS["SATURATED"]
    flags[near] |= PHOTO_FLAGS["EDGE"] * (rng.random(near.sum()) < 0.5)
    cat["flags_r"] = flags
    cat["clean"] = np.where(rng.random(n_objects) < 0.02, 0, 1)
    cat["mode"] = np.where(rng.random(n_objects) < 0.02, 2, 1)
    cat["insideMask"] = np.where(rng.random(n_objects) < 0.01, 1, 0)

    catalog = pd.DataFrame(cat)[[c.alias for c in COLUMNS]]
    for c in COLUMNS:
        if c.dtype != "str":
            catalog[c.alias] = catalog[c.alias].astype(c.dtype)
    return catalog, pd.DataFrame(truth), fields


def _render_gaussians(image, x, y, flux, weights, covs):
    """Add ``flux`` x sum_k weights[k] N(0, cov_k) centred at pixel (x, y) to ``image`` in place;
    ``covs`` is (K, 3): the entries (xx, xy, yy) of each 2x2 covariance."""
    ny, nx = image.shape
    half = int(np.ceil(5 * np.sqrt(max(covs[:, 0].max(), covs[:, 2].max())))) + 1
    x0, x1 = max(int(np.floor(x)) - half, 0), min(int(np.floor(x)) + half + 1, nx)
    y0, y1 = max(int(np.floor(y)) - half, 0), min(int(np.floor(y)) + half + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1) - x)[None, None, :]
    dy = (np.arange(y0, y1) - y)[None, :, None]
    a, b, d = (covs[:, k][:, None, None] for k in range(3))
    det = a * d - b * b
    q = (d * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
    image[y0:y1, x0:x1] += flux * np.sum(weights[:, None, None] * np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(det)), 0)


def _source_components(sigma_psf: float, r_e_px: float, q: float, pa: float):
    """(weights (K,), covariances (K, 3) as xx, xy, yy) of a source: the double-Gaussian PSF
    convolved with its profile (a point, or the exponential's Gaussian mixture)."""
    psf_w = np.array([1 - PSF_WING_FRACTION, PSF_WING_FRACTION])
    psf_var = np.array([sigma_psf, PSF_WING_SCALE * sigma_psf]) ** 2
    if r_e_px <= 0:
        return psf_w, np.stack([psf_var, np.zeros(2), psf_var], 1)
    mog_w, mog_s = exponential_mog()
    keep = mog_w > 0
    major, minor = (mog_s[keep] * r_e_px) ** 2, (mog_s[keep] * r_e_px * q) ** 2
    c, s = np.cos(pa), np.sin(pa)
    shape = np.stack([major * c * c + minor * s * s, (major - minor) * c * s, major * s * s + minor * c * c], 1)
    covs = shape[:, None, :] + np.stack([psf_var, np.zeros(2), psf_var], 1)[None, :, :]
    return (mog_w[keep][:, None] * psf_w[None, :]).reshape(-1), covs.reshape(-1, 3)


def render_field(args) -> list[str]:
    """Render and write the five frames of one field; returns the written paths."""
    field, objects, frames_dir, frame_shape, seed, bg_density = args
    rng = np.random.default_rng(seed)
    ny, nx = frame_shape
    # Faint background stars not in the spectroscopic catalogue.
    n_bg = rng.poisson(bg_density * nx * ny / 1e5)
    bg_r = _power_law_mags(rng, n_bg, 19.0, 23.5, 0.3)
    bg_col = np.stack(_star_colours(rng, n_bg), 1) if n_bg else np.zeros((0, 4))
    bg_mags = {"r": bg_r, "g": bg_r + bg_col[:, 1], "i": bg_r - bg_col[:, 2]}
    bg_mags["u"] = bg_mags["g"] + bg_col[:, 0]
    bg_mags["z"] = bg_mags["i"] - bg_col[:, 3]
    wr = field_wcs(field, "r", frame_shape)
    bg_ra, bg_dec = wr.all_pix2world(rng.uniform(0, nx, n_bg), rng.uniform(0, ny, n_bg), 0)
    paths = field_paths(frames_dir, field["rerun"], field["run"], field["camcol"], field["field"])
    written = []
    for b in BANDS:
        wcs = field_wcs(field, b, frame_shape)
        sigma_psf = field["seeing_r"] * SEEING_SCALE[b] * FWHM_TO_SIGMA / PIXEL_SCALE
        image = np.zeros(frame_shape)
        xs, ys = wcs.all_world2pix(objects["ra"].to_numpy(), objects["dec"].to_numpy(), 0)
        r_e, q, pa, flux = (objects[c].to_numpy() for c in ("r_e", "q", "pa", f"flux_{b}"))
        for k in range(len(objects)):
            w, c = _source_components(sigma_psf, r_e[k] / PIXEL_SCALE, q[k], pa[k])
            _render_gaussians(image, xs[k], ys[k], flux[k], w, c)
        bx, by = wcs.all_world2pix(bg_ra, bg_dec, 0)
        bg_flux = mag_to_nmgy(bg_mags[b] + EXTINCTION_COEFF[b] * field["ebv"])
        w, c = _source_components(sigma_psf, 0.0, 1.0, 0.0)
        for k in range(n_bg):
            _render_gaussians(image, bx[k], by[k], bg_flux[k], w, c)
        sigma = sky_sigma_nmgy(b)
        calib = sigma / NOISE_DN * (1 + 0.02 * np.sin(np.linspace(0, np.pi, nx) + rng.uniform(0, 6)))
        sky_dn = NOISE_DN**2 * GAIN
        src_dn = image / calib[None, :]
        noise_dn = rng.standard_normal(frame_shape, dtype=np.float32) * np.sqrt(NOISE_DN**2 + np.clip(src_dn, 0, None) / GAIN)
        counts = np.round(src_dn + noise_dn + sky_dn)
        frame = ((counts - sky_dn) * calib[None, :]).astype(np.float32)
        header = field_header(field, b, frame_shape)
        header["NMGY"] = (float(calib.mean()), "mean nanomaggies per count")
        write_frame(paths[b], frame, header, calib, np.full((8, 8), sky_dn, dtype=np.float32))
        written.append(str(paths[b]))
    return written


def generate_survey(catalog_path, frames_dir, *, n_objects: int, objects_per_field: int,
                    frame_shape, seed: int, class_fractions=(0.3, 0.3, 0.4),
                    edge_fraction: float = 0.02, background_density: float = 2.0,
                    photometric_per_field: int = 0, truth_path=None, photometric_path=None,
                    threads: int = 1) -> pd.DataFrame:
    """Write the synthetic catalogue (Parquet, tagged ``source=synthetic``) and all frames.

    ``photometric_per_field`` more objects per field, drawn from the same population without the
    spectroscopic selection, are rendered into the frames too and written to ``photometric_path``
    with the photometric columns only (no spectroscopy, no class): what a PhotoObj query of the
    same fields returns."""
    catalog, truth, fields = generate_catalog(n_objects, objects_per_field, tuple(frame_shape), seed,
                                              class_fractions, edge_fraction)
    log.info("synthetic survey: %d objects in %d fields, frames %s, classes %s", len(catalog),
             len(fields), tuple(frame_shape), catalog["class"].value_counts().to_dict())
    photometric, photo_truth = catalog.iloc[:0], truth.iloc[:0]
    if photometric_per_field:
        photometric, photo_truth, _ = generate_catalog(photometric_per_field * len(fields), photometric_per_field,
                                                       tuple(frame_shape), seed + 1, class_fractions, edge_fraction,
                                                       fields=fields, objid_base=9_200_000_000_000_000)
        log.info("synthetic survey: %d photometric objects without spectra (%d per field)", len(photometric),
                 photometric_per_field)
    everything = pd.concat([catalog, photometric], ignore_index=True)
    objects = everything[["objID", "ra", "dec", *FIELD_KEYS]].merge(pd.concat([truth, photo_truth]), on="objID")
    groups = dict(list(objects.groupby(list(FIELD_KEYS))))
    jobs = []
    for k, f in fields.iterrows():
        key = tuple(int(f[c]) for c in FIELD_KEYS)
        objs = groups.get(key, objects.iloc[:0])
        jobs.append((f, objs, str(frames_dir), tuple(frame_shape), [seed, 7, k], background_density))
    with ProcessPoolExecutor(max_workers=max(1, threads)) as pool:
        for _ in tqdm(pool.map(render_field, jobs, chunksize=4), total=len(jobs), desc="fields",
                      mininterval=5):
            pass
    if truth_path is not None:
        write_parquet_atomic(pd.concat([truth, photo_truth], ignore_index=True), truth_path, {"source": "synthetic"})
    if photometric_path is not None:
        write_parquet_atomic(photometric[list(PHOTO_COLUMN_NAMES)], photometric_path,
                             {"source": "synthetic", "survey": "sdssclr synthetic survey, photometric objects"})
    write_parquet_atomic(catalog, catalog_path, {"source": "synthetic", "survey": "sdssclr synthetic survey"})
    return catalog
