"""The real SDSS field (run 2583, camcol 2, field 136) used as a local archive mirror.

Set SDSS_FRAMES_DIR to the folder above '301/' (.ci/run points it at ../shared/sdss-frames);
skipped when unset. The frames are never copied into the repository.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from sdssclr.bands import BANDS
from sdssclr.stamps.shards import cut_shard
from sdssclr.survey.fetch import frame_source
from sdssclr.survey.frames import field_paths, read_frame

ROOT = os.environ.get("SDSS_FRAMES_DIR")
KEY = (301, 2583, 2, 136)
pytestmark = pytest.mark.skipif(not ROOT, reason="SDSS_FRAMES_DIR not set")


def centroid(img, radius=3):
    y, x = np.mgrid[: img.shape[0], : img.shape[1]]
    c = img.shape[0] // 2
    w = np.where((x - c) ** 2 + (y - c) ** 2 <= radius**2, np.clip(img, 0, None), 0)
    return (w * x).sum() / w.sum() - c, (w * y).sum() / w.sum() - c


@pytest.fixture(scope="module")
def positions():
    """A small catalogue: isolated sources found in the r frame, positions refined on r."""
    r = read_frame(field_paths(ROOT, *KEY)["r"], "r")
    smooth = ndimage.gaussian_filter(r.image, 1.5)
    peaks = (smooth == ndimage.maximum_filter(smooth, 21)) & (smooth > 1.0) & (smooth < 50)
    y, x = np.nonzero(peaks)
    keep = (x > 40) & (x < r.image.shape[1] - 40) & (y > 40) & (y < r.image.shape[0] - 40)
    x, y = x[keep][:300].astype(float), y[keep][:300].astype(float)
    for _ in range(3):  # centroid on r until the position is stable
        ys, xs = np.mgrid[-3:4, -3:4]
        for k in range(len(x)):
            iy, ix = int(round(y[k])), int(round(x[k]))
            w = np.clip(r.image[iy - 3: iy + 4, ix - 3: ix + 4], 0, None) * (xs**2 + ys**2 <= 9)
            x[k], y[k] = ix + (w * xs).sum() / w.sum(), iy + (w * ys).sum() / w.sum()
    ra, dec = r.wcs.all_pix2world(x, y, 0)
    return pd.DataFrame({"objID": np.arange(len(x)), "ra": ra, "dec": dec, "rerun": KEY[0], "run": KEY[1],
                         "camcol": KEY[2], "field": KEY[3]})


def test_real_field_stamps_are_centred_in_all_bands(positions, tmp_path):
    survey = {"source": "sdss", "frames_dir": ROOT}
    index = cut_shard(positions, frame_source(survey), tmp_path / "s.npy", tmp_path / "s.parquet", size=32)
    stamps = np.load(tmp_path / "s.npy")
    assert len(stamps) > 100 and index["usable"].all()
    report = []
    for k, band in enumerate(BANDS):
        c = np.array([centroid(s[k]) for s in stamps])
        offset = np.median(np.hypot(c[:, 0], c[:, 1]))
        raw = np.median(np.hypot(index[f"x_{band}"] - index["x_r"], index[f"y_{band}"] - index["y_r"]))
        report.append(f"{band}: median centroid offset {offset:.3f} px (detector offset from r {raw:.1f} px)")
        assert offset < 0.25
        if band != "r":
            assert raw > 2.5  # the bands really are on different pixel grids
    print("\n" + "\n".join(report))


def test_real_frame_format(tmp_path):
    frame = read_frame(Path(ROOT) / "301/2583/2/frame-g-002583-2-0136.fits.bz2")
    assert frame.image.shape == (1489, 2048) and frame.band == "g"
    assert frame.header["NMGY"] > 0 and frame.wcs.has_celestial
