"""The realism checks of the synthetic survey, on small cases: the sky noise it writes, the light in
its stars' wings, and its faint objects' features against the released real ones (when present)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sdssclr.bands import BANDS
from sdssclr.catalog import FEATURES, features, select_task
from sdssclr.results.realism import (ks_distances, light_beyond, like_sized, matched_to_r, seeing_of, sky_noise,
                                     star_field, tree_cv_accuracy)
from sdssclr.samples.cuts import apply_cuts, dataset_cuts
from sdssclr.survey.frames import field_paths, read_frame
from sdssclr.survey.render import SKY_SIGMA_NMGY, noisy_frame

REPO = Path(__file__).resolve().parents[2]
FRAMES = Path(os.environ.get("SDSS_FRAMES_DIR", REPO.parent / "shared" / "sdss-frames"))
RELEASE = REPO.parent / "shared" / "margnet-release" / "faint_sg_features.parquet"


def real_frame(band):
    path = field_paths(FRAMES, 301, 2583, 2, 136)[band]
    if not path.exists():
        pytest.skip(f"the real field is not at {path}")
    return read_frame(path, band).image


@pytest.mark.parametrize("band", BANDS)
def test_sky_noise_of_a_synthetic_frame_is_what_it_was_given(band):
    frame = noisy_frame(np.random.default_rng(0), np.zeros((400, 400)), band)[0]
    assert sky_noise(frame) == pytest.approx(SKY_SIGMA_NMGY[band], rel=0.05)


@pytest.mark.parametrize("band", ["g", "r", "z"])
def test_sky_noise_and_star_wings_match_the_real_field(band):
    real = real_frame(band)
    synthetic = noisy_frame(np.random.default_rng(1), np.zeros((400, 400)), band)[0]
    assert sky_noise(synthetic) == pytest.approx(sky_noise(real), rel=0.15)
    measured = light_beyond(real)
    assert measured["n"] >= 10
    stars = light_beyond(star_field(seeing_of(measured["concentration"], band), band))
    assert stars["beyond_2"] == pytest.approx(measured["beyond_2"], rel=0.3)
    assert stars["beyond_3.2"] == pytest.approx(measured["beyond_3.2"], rel=0.3)


def test_a_pure_gaussian_psf_would_fail_the_wing_check():
    """The check can fail: a Gaussian star has almost no light beyond 2"."""
    yy, xx = np.mgrid[:600, :600]
    model = sum(200 * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / 1.2**2) / (2 * np.pi * 1.2**2)
                for x in range(60, 560, 70) for y in range(60, 560, 70))
    stars = light_beyond(noisy_frame(np.random.default_rng(2), model, "r")[0])
    assert stars["n"] > 20 and stars["beyond_2"] < 0.01


def test_matched_sample_follows_the_reference_r_distribution():
    rng = np.random.default_rng(3)
    syn = pd.DataFrame({"class": "STAR", "r": rng.uniform(20, 23, 5000)})
    ref = pd.DataFrame({"class": "STAR", "r": rng.normal(21.5, 0.3, 800)})
    matched = matched_to_r(syn, ref)
    assert len(matched) == pytest.approx(len(ref), abs=5)
    assert ks_distances(matched, ref, ["r"]).loc["STAR", "r"] < 0.05


def test_like_sized_real_reference_has_the_synthetic_pools_distinct_objects_and_the_real_r_distribution():
    rng = np.random.default_rng(4)
    real = pd.DataFrame({"objID": np.arange(3000), "class": np.repeat(["STAR", "GALAXY", "QSO"], 1000),
                         "r": rng.normal(21.5, 0.4, 3000)})
    # a synthetic pool of 120 distinct stars (each listed three times) and 2000 distinct galaxies; no quasars
    syn = pd.DataFrame({"objID": np.r_[np.repeat(np.arange(120), 3), 10_000 + np.arange(2000)],
                        "class": ["STAR"] * 360 + ["GALAXY"] * 2000, "r": rng.uniform(20, 23, 2360)})
    ref = like_sized(real, syn)
    distinct = ref.groupby("class")["objID"].nunique()
    assert distinct["STAR"] <= 120 and distinct["STAR"] > 100  # 120 drawn, a few lost to resampling
    assert distinct["GALAXY"] > 600  # the whole real class (1000): the pool is larger
    assert "QSO" not in distinct  # no synthetic quasars, no real reference for them
    assert ref["objID"].isin(real["objID"]).all()
    stars = ref[ref["class"] == "STAR"]
    # drawn back to the real class's size and r histogram (less the tail bins the 120 do not reach)
    assert 900 < len(stars) <= 1000
    assert ks_distances(stars, real[real["class"] == "STAR"], ["r"]).loc["STAR", "r"] < 0.06
    assert like_sized(real, syn, seed=1)["objID"].tolist() != ref["objID"].tolist()


def test_faint_objects_of_a_small_synthetic_catalogue_against_the_released_real_ones(synthetic_catalog):
    """A small catalogue (so the bounds are looser than the benchmark's, which uses a medium one)."""
    if not RELEASE.exists():
        pytest.skip(f"the MargNet release is not at {RELEASE}")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cat = synthetic_catalog
    pool = select_task(cat[apply_cuts(cat, dataset_cuts("faint_compact", dict(cfg["cuts"], faint_rule="r_mag")))],
                       "SG")
    syn = pool.assign(**dict(zip(FEATURES, features(pool).T)))
    real = pd.read_parquet(RELEASE)
    real = real.assign(r=real["dered_r"] + real["extinction_r"])
    syn, real = syn[syn["r"].between(20, 22.7)], real[real["r"].between(20, 22.7)]
    assert len(syn) > 150
    matched = matched_to_r(syn, real)
    ks = ks_distances(matched, real).to_numpy()
    assert np.median(ks) < 0.2 and ks.max() < 0.45
    # the survey's target is 1.5 points (benchmarks/realism.py, medium catalogue); not met yet
    # (issue 18's closing note): this bound only catches a survey that drifts further away
    assert abs(tree_cv_accuracy(matched)[0] - tree_cv_accuracy(real)[0]) < 0.08
