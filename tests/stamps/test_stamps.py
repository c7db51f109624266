import bz2

import numpy as np
import pandas as pd
import pytest

from sdssclr.bands import BANDS
from sdssclr.catalog import FIELD_KEYS
from sdssclr.stamps.cutting import cut_band, cut_field, lanczos_weights
from sdssclr.stamps.shards import cut_shard, plan_shards
from sdssclr.survey.fetch import LocalFrames
from sdssclr.survey.frames import FrameError, field_paths, read_frame, write_frame
from sdssclr.survey.render import PSF, render_source
from sdssclr.survey.synthetic import field_header, field_table, field_wcs

SHAPE = (160, 200)


def centroid(img, radius=6.0):
    y, x = np.mgrid[: img.shape[0], : img.shape[1]]
    c = img.shape[0] // 2
    w = np.where((x - c) ** 2 + (y - c) ** 2 <= radius**2, np.clip(img, 0, None), 0)
    return (w * x).sum() / w.sum(), (w * y).sum() / w.sum()


@pytest.fixture(scope="module")
def field_dir(tmp_path_factory):
    """One synthetic field, noise-free, with bright point sources at known sky positions."""
    root = tmp_path_factory.mktemp("frames")
    field = field_table(1, np.random.default_rng(4)).iloc[0]
    wr = field_wcs(field, "r", SHAPE)
    rng = np.random.default_rng(0)
    px = np.c_[rng.uniform(30, SHAPE[1] - 30, 6), rng.uniform(30, SHAPE[0] - 30, 6)]
    ra, dec = wr.all_pix2world(px[:, 0], px[:, 1], 0)
    paths = field_paths(root, *(int(field[k]) for k in FIELD_KEYS))
    for b in BANDS:
        w = field_wcs(field, b, SHAPE)
        xs, ys = w.all_world2pix(ra, dec, 0)
        image = np.zeros(SHAPE)
        psf = PSF(np.array([0.9, 0.1]), np.array([1.6, 3.2]), 1.5)  # a double Gaussian, sigma 1.6 px
        for x, y in zip(xs, ys):
            render_source(image, x, y, 100.0, psf)
        write_frame(paths[b], image, field_header(field, b, SHAPE), np.ones(SHAPE[1]), np.zeros((4, 4)))
    objects = pd.DataFrame({"objID": np.arange(6, dtype=np.int64), "ra": ra, "dec": dec,
                            **{k: int(field[k]) for k in FIELD_KEYS}})
    return root, field, objects


def test_bands_really_are_offset(field_dir):
    root, field, objects = field_dir
    frames = {b: read_frame(p, b) for b, p in field_paths(root, *objects.iloc[0][list(FIELD_KEYS)]).items()}
    xr, yr = frames["r"].world_to_pixel(objects["ra"], objects["dec"])
    for b in "ugiz":
        x, y = frames[b].world_to_pixel(objects["ra"], objects["dec"])
        assert np.hypot(x - xr, y - yr).min() > 3.0  # a same-pixel-box cutter would misalign


def test_point_source_centred_in_every_band(field_dir):
    root, _, objects = field_dir
    frames = {b: read_frame(p, b) for b, p in field_paths(root, *objects.iloc[0][list(FIELD_KEYS)]).items()}
    stamps, edge, nonfinite, _ = cut_field(frames, objects["ra"], objects["dec"], 32)
    assert stamps.shape == (6, 5, 32, 32) and stamps.dtype == np.float32
    assert not edge.any() and not nonfinite.any()
    for stamp in stamps:
        for band_img in stamp:
            cx, cy = centroid(band_img)
            assert abs(cx - 16) < 0.25 and abs(cy - 16) < 0.25
        # flux conserved through the resampling (100 nmgy, within the stamp)
        assert np.allclose(stamp.sum(axis=(1, 2)), 100.0, rtol=0.02)


def test_lanczos_is_exact_on_integer_shifts_and_normalised():
    w = lanczos_weights(np.array([0.0, 0.3, 0.999]))
    assert np.allclose(w.sum(1), 1.0)
    assert np.allclose(w[0], [0, 0, 1, 0, 0, 0])
    img = np.random.default_rng(0).normal(size=(50, 50))
    s, edge = cut_band(img, np.array([25.0]), np.array([20.0]), 16)
    assert np.allclose(s[0], img[12:28, 17:33], atol=1e-6) and not edge[0]


def test_stamp_leaving_the_frame_is_flagged_and_handled(field_dir, tmp_path):
    root, _, objects = field_dir
    off = objects.copy()
    wr = read_frame(field_paths(root, *objects.iloc[0][list(FIELD_KEYS)])["r"]).wcs
    off.loc[0, ["ra", "dec"]] = wr.all_pix2world([[3.0, 80.0]], 0)[0]
    for policy, usable in [("drop", False), ("pad", True)]:
        idx = cut_shard(off, LocalFrames(root), tmp_path / f"{policy}.npy", tmp_path / f"{policy}.parquet",
                        size=32, policy=policy)
        row = idx.set_index("objID").loc[0]
        assert row["flag_edge"] and row["usable"] == usable
        assert idx["usable"].sum() == 5 + usable
        arr = np.load(tmp_path / f"{policy}.npy", mmap_mode="r")
        assert np.isfinite(arr).all()
        assert (arr[int(row["offset"])][:, :, :4] == 0).all()  # padded with 0 beyond the edge


def test_corrupt_frame_names_the_file_and_leaves_no_output(field_dir, tmp_path):
    import shutil

    root, _, objects = field_dir
    bad_root = tmp_path / "frames"
    shutil.copytree(root, bad_root)
    g = field_paths(bad_root, *objects.iloc[0][list(FIELD_KEYS)])["g"]
    g.write_bytes(g.read_bytes()[: len(g.read_bytes()) // 2])  # truncated download
    with pytest.raises(FrameError, match=g.name):
        cut_shard(objects, LocalFrames(bad_root), tmp_path / "s.npy", tmp_path / "s.parquet")
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "s.parquet").exists()
    assert not list(tmp_path.glob(".s.*")) and not list((tmp_path / "s.parts").iterdir())

    g.write_bytes(bz2.compress(b"this is not a FITS file" * 100))
    with pytest.raises(FrameError, match="not a readable FITS"):
        read_frame(g)


def test_a_frame_of_another_band_or_field_is_refused(field_dir, tmp_path):
    import shutil

    root, _, objects = field_dir
    key = tuple(objects.iloc[0][list(FIELD_KEYS)])
    paths = field_paths(root, *key)
    with pytest.raises(FrameError, match=r"FILTER='r' \(expected 'u'\)"):
        read_frame(paths["r"], "u", key)  # the r frame in the u slot
    other = (key[0], key[1], key[2], key[3] + 1)
    with pytest.raises(FrameError, match=r"FRAME='\d+' \(expected \d+\)"):
        read_frame(paths["g"], "g", other)  # the right band of another field
    read_frame(paths["g"], "g", key)  # the right one passes
    mirror = tmp_path / "mirror"
    shutil.copytree(root, mirror)
    wrong = field_paths(mirror, *key)
    shutil.copy(wrong["r"], wrong["u"])
    with pytest.raises(FrameError, match="FILTER"):
        cut_shard(objects, LocalFrames(mirror), tmp_path / "s.npy", tmp_path / "s.parquet")


def test_plan_keeps_fields_whole_and_balances():
    objs = pd.DataFrame({"objID": np.arange(100), "ra": 0.0, "dec": 0.0, "rerun": 301, "run": 1,
                         "camcol": 1, "field": np.arange(100) // 7})
    plan = plan_shards(pd.concat([objs, objs.head(5)]), 3)
    assert len(plan) == 100
    assert (plan.groupby("field")["shard"].nunique() == 1).all()
    sizes = np.bincount(plan["shard"], minlength=3)
    assert sizes.max() - sizes.min() <= 7


def test_the_index_refuses_a_shard_whose_stamps_are_gone_or_short(tmp_path):
    from conftest import build_tiny_data
    from sdssclr.stamps.shards import merge_index

    build_tiny_data(tmp_path, n_objects=600, per_class=20)
    stamps = tmp_path / "stamps"
    args = ([stamps / "shard-0000.parquet"], tmp_path / "sample_exp1.parquet", tmp_path / "again.parquet")
    full = np.load(stamps / "shard-0000.npy")
    np.save(stamps / "shard-0000.npy", full[:-1])  # a shard of one stamp fewer than its index
    with pytest.raises(ValueError, match=rf"shard-0000\.npy holds {len(full) - 1} stamps but its index"):
        merge_index(*args)
    (stamps / "shard-0000.npy").unlink()  # e.g. lost to a full disk
    with pytest.raises(FileNotFoundError, match=r"shard-0000\.npy: the stamps of shard index .* are missing"):
        merge_index(*args)
    assert not (tmp_path / "again.parquet").exists()


def test_a_full_disk_while_assembling_is_named_and_leaves_nothing_that_looks_finished(field_dir, tmp_path,
                                                                                     monkeypatch):
    import errno

    import sdssclr.stamps.shards as shards

    root, _, objects = field_dir

    def full_disk(fh, block):
        fh.write(block[:1].tobytes())  # part of the shard reached the disk, then it was full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards, "write_block", full_disk)
    with pytest.raises(OSError, match=r"shard 0: writing .*s\.npy failed \(No space left on device\)"):
        cut_shard(objects, LocalFrames(root), tmp_path / "s.npy", tmp_path / "s.parquet")
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "s.parquet").exists()
    assert not list(tmp_path.glob(".s.npy*"))  # no temporary left behind
    monkeypatch.undo()  # space freed: the rerun assembles from the fields already cut
    index = cut_shard(objects, LocalFrames(root), tmp_path / "s.npy", tmp_path / "s.parquet")
    assert len(index) == len(objects) and np.load(tmp_path / "s.npy").shape == (len(objects), 5, 32, 32)


def test_a_streamed_plan_says_what_it_will_download_before_anything_is_fetched(tmp_path, caplog):
    import logging

    from conftest import REPO
    from sdssclr.io import write_parquet_atomic
    from sdssclr.stamps.shards import write_plan
    from sdssclr.survey.frames import TYPICAL_FRAME_MB

    objects = pd.DataFrame({"objID": np.arange(7), "ra": 0.0, "dec": 0.0, "rerun": 301, "run": [1, 1, 1, 2, 2, 3, 3],
                            "camcol": 1, "field": [10, 10, 11, 10, 10, 12, 12]})
    write_parquet_atomic(objects, tmp_path / "sample.parquet", {"source": "SDSS DR16"})
    with caplog.at_level(logging.INFO):
        write_plan([tmp_path / "sample.parquet"], 2, tmp_path / "plan.parquet", streamed=True)
    gb = 4 * 5 * TYPICAL_FRAME_MB / 1e3
    assert f"download plan: 4 fields, 20 frames, about {gb:.1f} GB" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        write_plan([tmp_path / "sample.parquet"], 2, tmp_path / "plan2.parquet", streamed=False)
    assert "download plan" not in caplog.text
    real = REPO.parent / "shared" / "sdss-frames"
    if real.exists():  # the typical frame size is the real field's
        sizes = [p.stat().st_size for p in real.rglob("frame-*.fits.bz2")]
        assert TYPICAL_FRAME_MB == pytest.approx(np.mean(sizes) / 1e6, abs=0.01)
