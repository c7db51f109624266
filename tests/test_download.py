"""Frame downloads against a loopback HTTP server serving synthetic frames, with faults."""

import numpy as np
import pytest

from loopback import SAS
from sdssclr.bands import BANDS
from sdssclr.catalog import FIELD_KEYS
from sdssclr.frames import FrameError, frame_relpath
from sdssclr.sdss import FrameFetcher
from sdssclr.stamps import LocalFrames, cut_shard
from sdssclr.synthetic import generate_survey


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("sas")
    cat = generate_survey(root / "cat.parquet", root / "frames", n_objects=12, objects_per_field=4,
                          frame_shape=(128, 160), seed=3, edge_fraction=0.0)
    return root / "frames", cat[["objID", "ra", "dec", *FIELD_KEYS]]


def fetcher(server, dest, **kw):
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("retries", 3)
    return FrameFetcher(server.url, 16, dest, parallel=4, **kw)


def key_of(cat, i=0):
    return tuple(int(cat.iloc[i][k]) for k in FIELD_KEYS)


def name(key, band):
    return frame_relpath(*key, band).split("/")[-1]


def test_faults_are_retried_and_the_result_is_verified(survey, tmp_path):
    frames, cat = survey
    key = key_of(cat)
    with SAS(frames) as sas:
        sas.faults[name(key, "u")] = ["truncate"]
        sas.faults[name(key, "g")] = ["503", "503"]
        sas.faults[name(key, "r")] = [("stall", 3.0)]  # past the 1 s timeout
        sas.faults[name(key, "i")] = ["corrupt"]
        f = fetcher(sas, tmp_path, timeout=1.0)
        got = f.acquire(key)
        assert set(got) == set(BANDS)
        assert sas.requests[name(key, "u")] == 2 and sas.requests[name(key, "g")] == 3
        assert sas.requests[name(key, "r")] == 2 and sas.requests[name(key, "i")] == 2
        for band in BANDS:
            local = tmp_path / frame_relpath(*key, band)
            assert local.read_bytes() == (frames / frame_relpath(*key, band)).read_bytes()


def test_persistent_corruption_fails_and_leaves_nothing(survey, tmp_path):
    frames, cat = survey
    key = key_of(cat)
    with SAS(frames) as sas:
        sas.faults[name(key, "z")] = ["truncate"] * 4
        f = fetcher(sas, tmp_path / "dl")
        with pytest.raises(FrameError, match="truncated"):
            cut_shard(cat, f, tmp_path / "s.npy", tmp_path / "s.parquet")
    assert not (tmp_path / "dl" / frame_relpath(*key, "z")).exists()
    assert not list(tmp_path.glob("s.*")) and not list(tmp_path.glob(".s.*"))


def test_missing_frame_is_not_retried(survey, tmp_path):
    frames, cat = survey
    with SAS(frames) as sas:
        sas.faults[name(key_of(cat), "g")] = ["404"]
        with pytest.raises(FrameError, match="404"):
            fetcher(sas, tmp_path).fetch(key_of(cat), "g")
        assert sas.requests[name(key_of(cat), "g")] == 1


def test_restart_after_a_crash_does_not_refetch_verified_frames(survey, tmp_path):
    frames, cat = survey
    keys = sorted({key_of(cat, i) for i in range(len(cat))})
    with SAS(frames) as sas:
        sas.faults[name(keys[-1], "r")] = ["503"] * 10  # the last field keeps failing: crash
        with pytest.raises(FrameError):
            cut_shard(cat, fetcher(sas, tmp_path / "dl", keep_frames=True, retries=1),
                      tmp_path / "s.npy", tmp_path / "s.parquet", threads=1)
        before = sas.requests.copy()
        sas.faults.clear()
        f = fetcher(sas, tmp_path / "dl", keep_frames=True)
        index = cut_shard(cat, f, tmp_path / "s.npy", tmp_path / "s.parquet", threads=1)
        refetched = {n: c - before[n] for n, c in sas.requests.items() if c > before[n]}
        assert set(refetched) <= {name(keys[-1], b) for b in BANDS}  # only the missing field
        assert f.reused >= 5 * (len(keys) - 1)
    # stamps from downloaded frames are identical to stamps cut from the archive's copies
    cut_shard(cat, LocalFrames(frames), tmp_path / "ref.npy", tmp_path / "ref.parquet")
    assert np.array_equal(np.load(tmp_path / "s.npy"), np.load(tmp_path / "ref.npy"))
    assert index["usable"].all()


def test_streamed_run_deletes_frames_and_bounds_disk(survey, tmp_path):
    frames, cat = survey
    with SAS(frames) as sas:
        f = fetcher(sas, tmp_path / "dl", keep_frames=False)
        cut_shard(cat, f, tmp_path / "s.npy", tmp_path / "s.parquet", threads=1)
    assert not list((tmp_path / "dl").rglob("*.fits.bz2"))
    one_field = sum((frames / frame_relpath(*key_of(cat), b)).stat().st_size for b in BANDS)
    assert 0 < f.high_water <= 1.5 * one_field  # one field in flight with threads=1
    assert f.fetched == 5 * cat.groupby(list(FIELD_KEYS)).ngroups
