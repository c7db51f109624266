"""How close the synthetic survey is to SDSS: image statistics against a real field, feature
distributions against real objects, and whether the pixels hold information the catalogue lacks.

Calibration uses only image statistics and feature distributions; the classifier figures here
(a tree's accuracy) are checks, never tuned on. ``benchmarks/realism.py`` prints all of them for a
medium-size synthetic survey against ``../shared/sdss-frames`` and ``../shared/margnet-release``:

- :func:`sky_noise`: per-pixel sky noise of a frame (nanomaggies), robust;
- :func:`light_beyond`: the fraction of a star's light (within 7.4") beyond 2" and 3.2", median
  over isolated, high-S/N point sources found by sep; :func:`star_field` renders a synthetic frame
  of such stars at the seeing :func:`seeing_of` infers from a real frame's stars;
- :func:`ks_distances`: per class and feature, the Kolmogorov-Smirnov distance between two
  samples, the synthetic one first drawn to the other's r distribution (per 0.1-mag bin, as the
  paper's experiment-3 test set was balanced);
- :func:`tree_cv_accuracy`: a gradient-boosted tree's 5-fold accuracy on the 24 features;
  :func:`like_sized` draws the real reference the way the synthetic sample is drawn (as many
  distinct objects per class as the synthetic pool holds, then to the real r distribution with
  replacement), since a tree learns less from fewer distinct objects;
- :func:`stamp_magnitudes`: PSF-weighted magnitudes measured on the stamps, to test whether the
  pixels add photometry that the catalogue (measured from the same pixels) does not hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sep
from scipy.spatial import cKDTree
from scipy.stats import ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

from ..bands import BANDS, FWHM_TO_SIGMA, PIXEL_SCALE, asinh_mag
from ..catalog import FEATURES
from ..survey.render import PSF, noisy_frame, render_source

#: Apertures (arcsec) of the growth-curve check: the light beyond the first two, of that within the last.
APERTURES = (2.0, 3.2, 7.4)


def _background_subtracted(image: np.ndarray):
    """(image less sep's 64-px background, the background's global rms), with sep's limits raised
    for crowded frames (the real field lies on a globular cluster)."""
    data = np.ascontiguousarray(image, dtype=np.float64)
    bkg = sep.Background(data, bw=64, bh=64)
    sep.set_extract_pixstack(2_000_000)
    sep.set_sub_object_limit(4096)
    return data - bkg.back(), bkg.globalrms


def sky_noise(image: np.ndarray) -> float:
    """Robust per-pixel noise of a sky-subtracted frame: 1.4826 MAD of the pixels that sep's
    3-sigma detection leaves outside every source (objects masked with a 3-px margin)."""
    sub, rms = _background_subtracted(image)
    objs = sep.extract(sub, 3.0, err=rms, minarea=4, segmentation_map=True)[1]
    mask = objs > 0
    grown = mask.copy()
    for shift in range(1, 4):
        for axis in (0, 1):
            grown |= np.roll(mask, shift, axis) | np.roll(mask, -shift, axis)
    sky = sub[~grown]
    return float(1.4826 * np.median(np.abs(sky - np.median(sky))))


def light_beyond(image: np.ndarray, min_snr: float = 50.0, isolation_arcsec: float = 10.0) -> dict:
    """Median fraction of a point source's light within 7.4" that lies beyond 2" and beyond 3.2",
    over isolated high-S/N detections whose 1"/2" concentration is within 0.03 of the frame's
    stellar mode; with the number of stars and that concentration."""
    sub, rms = _background_subtracted(image)
    objs = sep.extract(sub, 5.0, err=rms, minarea=5)
    x, y = objs["x"], objs["y"]
    if len(x) < 2:
        return {"n": 0, "beyond_2": np.nan, "beyond_3.2": np.nan, "concentration": np.nan}
    d, _ = cKDTree(np.c_[x, y]).query(np.c_[x, y], k=2)
    r_in, r2, r32, r_tot = (a / PIXEL_SCALE for a in (1.0, *APERTURES))
    edge = r_tot + 2
    ny, nx = sub.shape
    keep = (d[:, 1] > isolation_arcsec / PIXEL_SCALE) & (x > edge) & (x < nx - edge) & (y > edge) & (y < ny - edge)
    keep &= objs["flag"] == 0
    tot = sep.sum_circle(sub, x, y, r_tot, subpix=5)[0]
    keep &= tot / (rms * np.sqrt(np.pi) * r_tot) > min_snr
    if keep.sum() < 3:
        return {"n": int(keep.sum()), "beyond_2": np.nan, "beyond_3.2": np.nan, "concentration": np.nan}
    f1, f2, f32 = (sep.sum_circle(sub, x, y, r, subpix=5)[0] for r in (r_in, r2, r32))
    conc = f1 / f2
    mode = float(np.median(conc[keep]))
    keep &= np.abs(conc - mode) < 0.03
    return {"n": int(keep.sum()), "beyond_2": float(np.median(1 - f2[keep] / tot[keep])),
            "beyond_3.2": float(np.median(1 - f32[keep] / tot[keep])), "concentration": mode}


def matched_to_r(synthetic: pd.DataFrame, real: pd.DataFrame, column: str = "r", width: float = 0.1,
                 seed: int = 0) -> pd.DataFrame:
    """Synthetic objects drawn (with replacement) to the real sample's ``column`` histogram per class,
    in bins of ``width`` mag over the range both cover."""
    rng = np.random.default_rng(seed)
    parts = []
    for cls, real_c in real.groupby("class"):
        syn_c = synthetic[synthetic["class"] == cls]
        if syn_c.empty:
            continue
        lo = max(real_c[column].min(), syn_c[column].min())
        hi = min(real_c[column].max(), syn_c[column].max())
        edges = np.arange(np.floor(lo / width) * width, hi + width, width)
        want = np.histogram(real_c[column], edges)[0]
        which = np.digitize(syn_c[column], edges) - 1
        for b, n in enumerate(want):
            pool = np.flatnonzero(which == b)
            if n and len(pool):
                parts.append(syn_c.iloc[rng.choice(pool, n, replace=True)])
    return pd.concat(parts, ignore_index=True)


def like_sized(real: pd.DataFrame, synthetic: pd.DataFrame, column: str = "r", width: float = 0.1,
               seed: int = 0) -> pd.DataFrame:
    """The real sample drawn as :func:`matched_to_r` draws the synthetic one: per class, a random
    subset of the real objects as large as the synthetic pool's count of distinct objects (by
    ``objID``; all of them where the pool is larger), then drawn with replacement to the full real
    sample's ``column`` histogram. A tree's accuracy on it is the like-for-like reference for one on
    ``matched_to_r(synthetic, real)``: same rows, same r distribution, same number of distinct
    objects."""
    rng = np.random.default_rng(seed)
    parts = []
    for cls, real_c in real.groupby("class"):
        syn_c = synthetic[synthetic["class"] == cls]
        distinct = syn_c["objID"].nunique() if "objID" in syn_c else len(syn_c)
        take = min(distinct, len(real_c))
        if take:
            parts.append(real_c.iloc[np.sort(rng.choice(len(real_c), take, replace=False))])
    subset = pd.concat(parts, ignore_index=True) if parts else real.iloc[:0]
    return matched_to_r(subset, real, column=column, width=width, seed=seed)


def ks_distances(synthetic: pd.DataFrame, real: pd.DataFrame, features=FEATURES) -> pd.DataFrame:
    """Kolmogorov-Smirnov distance per class (rows) and feature (columns)."""
    rows = {}
    for cls, real_c in real.groupby("class"):
        syn_c = synthetic[synthetic["class"] == cls]
        rows[cls] = {f: float(ks_2samp(syn_c[f], real_c[f]).statistic) for f in features}
    return pd.DataFrame(rows).T


def tree_cv_accuracy(df: pd.DataFrame, features=FEATURES, seed: int = 0, folds: int = 5) -> tuple[float, float]:
    """Mean and standard deviation over ``folds`` stratified folds of a gradient-boosted tree's
    accuracy on ``features`` (early stopping on 10% of each training fold). Rows of the same objID
    (a sample drawn with replacement, :func:`matched_to_r`) stay in one fold, so no object is
    tested on a tree that trained on it."""
    tree = HistGradientBoostingClassifier(max_iter=500, learning_rate=0.1, early_stopping=True, random_state=seed)
    groups = df["objID"].to_numpy() if "objID" in df else np.arange(len(df))
    scores = cross_val_score(tree, df[list(features)].to_numpy(float), df["class"].to_numpy(), groups=groups,
                             cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed))
    return float(scores.mean()), float(scores.std())


def stamp_magnitudes(stamps: np.ndarray, psf_fwhm_px: np.ndarray) -> np.ndarray:
    """(N, 5) asinh magnitudes of PSF-weighted fluxes measured on WCS-aligned stamps (object at the
    centre pixel), a Gaussian of each object's catalogue seeing (``psf_fwhm_px``, pixels, as
    :class:`~sdssclr.stamps.objects.Objects` holds it) per band as the weight."""
    n, nb, h, w = stamps.shape
    yy, xx = np.mgrid[:h, :w]
    r2 = ((yy - h // 2) ** 2 + (xx - w // 2) ** 2)[None, None]
    sigma = (np.asarray(psf_fwhm_px, float) * FWHM_TO_SIGMA)[:, :, None, None]
    g = np.exp(-0.5 * r2 / sigma**2) / (2 * np.pi * sigma**2)
    flux = np.sum(g * stamps, axis=(2, 3)) / np.sum(g * g, axis=(2, 3))
    return np.stack([asinh_mag(flux[:, k], b) for k, b in enumerate(BANDS)], 1)


def seeing_of(concentration: float, band: str) -> float:
    """The FWHM whose PSF model has this 1"/2" concentration (bisection)."""
    lo, hi = 0.5, 2.5
    for _ in range(40):
        mid = (lo + hi) / 2
        p = PSF.for_seeing(mid, band)
        c = p.enclosed(1.0 / PIXEL_SCALE) / p.enclosed(2.0 / PIXEL_SCALE)
        lo, hi = (mid, hi) if c > concentration else (lo, mid)
    return (lo + hi) / 2


def star_field(seeing: float, band: str, seed: int = 0, n: int = 80) -> np.ndarray:
    """A full-size synthetic frame of isolated bright stars at ``seeing``, with the survey's noise."""
    rng = np.random.default_rng(seed)
    model = np.zeros((1489, 2048))
    psf = PSF.for_seeing(seeing, band)
    gx, gy = np.meshgrid(np.linspace(60, 1988, 10), np.linspace(60, 1429, 8))
    for x, y in zip(gx.ravel()[:n], gy.ravel()[:n]):
        render_source(model, x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5), 10 ** rng.uniform(2.0, 3.0), psf)
    return noisy_frame(rng, model, band)[0]
