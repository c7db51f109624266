import numpy as np
from astropy.io import fits

from sdssclr.bands import BANDS
from sdssclr.catalog import COLUMN_NAMES, OBJECT_CLASSES
from sdssclr.io import read_parquet_metadata
from sdssclr.survey.frames import decompress
from sdssclr.survey.synthetic import generate_catalog, generate_survey


def test_catalog_has_the_sdss_columns_and_is_seeded():
    a, _, _ = generate_catalog(240, 40, (192, 192), seed=1)
    b, _, _ = generate_catalog(240, 40, (192, 192), seed=1)
    assert tuple(a.columns) == COLUMN_NAMES
    assert a.equals(b)
    assert set(a["class"]) == set(OBJECT_CLASSES)


def test_galaxies_are_larger_and_faint_objects_noisier(synthetic_catalog):
    cat = synthetic_catalog
    ratio = cat["deVRad_r"] / cat["psffwhm_r"].where(cat["psffwhm_r"] > 0)
    assert ratio[cat["class"] == "GALAXY"].median() > 2 * ratio[cat["class"] == "STAR"].median()
    assert cat.loc[cat["r"] > 21, "err_r"].median() > 3 * cat.loc[cat["r"] < 19, "err_r"].median()


def test_survey_files_are_sdss_format_and_labelled_synthetic(tmp_path):
    cat = generate_survey(tmp_path / "cat.parquet", tmp_path / "frames", n_objects=40, objects_per_field=20,
                          frame_shape=(128, 160), seed=0)
    assert read_parquet_metadata(tmp_path / "cat.parquet")["source"] == "synthetic"
    row = cat.iloc[0]
    for b in BANDS:
        path = tmp_path / "frames" / f"{row.rerun}/{row.run}/{row.camcol}" / f"frame-{b}-{row.run:06d}-{row.camcol}-{row.field:04d}.fits.bz2"
        with fits.open(__import__("io").BytesIO(decompress(path))) as hdul:
            assert hdul[0].data.shape == (128, 160) and hdul[0].data.dtype == np.dtype(">f4")
            assert hdul[0].header["SURVEY"] == "SYNTHETIC" and hdul[0].header["FILTER"] == b
            assert hdul[0].header["NMGY"] > 0 and hdul[1].data.shape == (160,)
            assert "ALLSKY" in hdul[2].columns.names
