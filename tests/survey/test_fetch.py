"""Frame downloads against a loopback HTTP server serving synthetic frames, with faults."""

import numpy as np
import pytest

from loopback import SAS
from sdssclr.bands import BANDS
from sdssclr.catalog import FIELD_KEYS
from sdssclr.stamps.shards import cut_shard, part_path
from sdssclr.survey.fetch import FrameFetcher, LocalFrames
from sdssclr.survey.frames import FrameError, MissingFrame, frame_relpath
from sdssclr.survey.synthetic import generate_survey


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
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "s.parquet").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    assert not part_path(tmp_path / "s.parts", key).exists()  # the failed field is not marked done


def test_missing_frame_is_not_retried(survey, tmp_path):
    frames, cat = survey
    with SAS(frames) as sas:
        sas.faults[name(key_of(cat), "g")] = ["404"]
        with pytest.raises(MissingFrame, match="404"):
            fetcher(sas, tmp_path).fetch(key_of(cat), "g")
        assert sas.requests[name(key_of(cat), "g")] == 1


def test_a_missing_field_is_skipped_flagged_and_counted(survey, tmp_path):
    frames, cat = survey
    keys = sorted({key_of(cat, i) for i in range(len(cat))})
    in_missing = cat[[key_of(cat, i) == keys[1] for i in range(len(cat))]]["objID"]
    with SAS(frames) as sas:
        sas.faults[name(keys[1], "i")] = ["404"]
        index = cut_shard(cat, fetcher(sas, tmp_path / "dl"), tmp_path / "s.npy", tmp_path / "s.parquet",
                          max_missing_fraction=0.5)
        assert sas.requests[name(keys[1], "i")] == 1
    missing = index.set_index("objID")["flag_missing"]
    assert missing[in_missing].all() and missing.sum() == len(in_missing)
    assert not index.set_index("objID").loc[in_missing, "usable"].any()
    assert index.loc[~index["flag_missing"], "usable"].all()
    # more missing fields than allowed: the shard fails, naming them
    with SAS(frames) as sas:
        sas.faults[name(keys[1], "i")] = ["404"]
        with pytest.raises(MissingFrame, match=r"1 of 3 fields are missing, more than stamps.max_missing_fraction"):
            cut_shard(cat, fetcher(sas, tmp_path / "dl2"), tmp_path / "t.npy", tmp_path / "t.parquet",
                      max_missing_fraction=0.0)
    # a small shard (3 fields) at the default fraction: the floor of 2 fields tolerates the gap
    with SAS(frames) as sas:
        sas.faults[name(keys[1], "i")] = ["404"]
        index = cut_shard(cat, fetcher(sas, tmp_path / "dl3"), tmp_path / "u.npy", tmp_path / "u.parquet",
                          max_missing_fraction=0.02)
    assert index["flag_missing"].sum() == len(in_missing)


def test_missing_fields_are_tolerated_as_a_fraction_with_a_floor():
    from sdssclr.stamps.shards import missing_fields_allowed

    assert missing_fields_allowed(30, 0.02) == 2 and missing_fields_allowed(500, 0.02) == 10
    assert missing_fields_allowed(30, 0.0) == 0


def test_a_missing_mirror_file_is_a_missing_field(survey, tmp_path):
    import shutil

    frames, cat = survey
    mirror = tmp_path / "mirror"
    shutil.copytree(frames, mirror)
    (mirror / frame_relpath(*key_of(cat), "u")).unlink()
    index = cut_shard(cat, LocalFrames(mirror), tmp_path / "s.npy", tmp_path / "s.parquet", max_missing_fraction=0.5)
    assert index["flag_missing"].sum() == sum(key_of(cat, i) == key_of(cat) for i in range(len(cat)))


@pytest.mark.parametrize("fault, match", [("redirect", "redirected to ftp://"),
                                          ("encoded", "Content-Encoding 'x-bzip2'")])
def test_redirects_to_other_schemes_and_encodings_are_errors_naming_the_url(survey, tmp_path, fault, match):
    frames, cat = survey
    with SAS(frames) as sas:
        sas.faults[name(key_of(cat), "r")] = [fault]
        with pytest.raises(FrameError, match=match) as err:
            fetcher(sas, tmp_path).fetch(key_of(cat), "r")
        assert name(key_of(cat), "r") in str(err.value) and sas.requests[name(key_of(cat), "r")] == 1


def test_no_request_is_wasted_after_a_field_fails(survey, tmp_path):
    frames, cat = survey
    keys = sorted({key_of(cat, i) for i in range(len(cat))})
    with SAS(frames) as sas:
        for b in BANDS:
            sas.faults[name(keys[0], b)] = ["redirect"]  # the first field fails for good
        with pytest.raises(FrameError):
            cut_shard(cat, fetcher(sas, tmp_path / "dl"), tmp_path / "s.npy", tmp_path / "s.parquet", threads=1)
        later = [name(k, b) for k in keys[1:] for b in BANDS]
        assert sum(sas.requests[n] for n in later) == 0


def test_a_corrupt_kept_frame_is_verified_and_replaced(survey, tmp_path):
    frames, cat = survey
    key = key_of(cat)
    dest = tmp_path / "dl" / frame_relpath(*key, "g")
    dest.parent.mkdir(parents=True)
    dest.write_bytes((frames / frame_relpath(*key, "g")).read_bytes()[:5000])  # a truncated leftover
    with SAS(frames) as sas:
        f = fetcher(sas, tmp_path / "dl", keep_frames=True)
        f.acquire(key)
        assert sas.requests[name(key, "g")] == 1 and f.refetched == 1
    assert dest.read_bytes() == (frames / frame_relpath(*key, "g")).read_bytes()


def test_two_jobs_sharing_a_download_dir_never_delete_frames_in_use(survey, tmp_path):
    frames, cat = survey
    key = key_of(cat)
    with SAS(frames) as sas:
        a, b = fetcher(sas, tmp_path / "dl"), fetcher(sas, tmp_path / "dl")
        a.acquire(key)
        got = b.acquire(key)  # the other workflow uses the same field meanwhile
        a.release(key)
        assert all((tmp_path / "dl" / frame_relpath(*key, band)).exists() for band in BANDS)
        assert got["u"].image.shape == (128, 160)
        b.release(key)  # the last user deletes them
        assert not any((tmp_path / "dl" / frame_relpath(*key, band)).exists() for band in BANDS)


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
        assert set(refetched) <= {name(keys[-1], b) for b in BANDS}  # only the field not yet cut
    assert not (tmp_path / "s.parts").exists()  # parts are removed once the shard is assembled
    # stamps from downloaded frames are identical to stamps cut from the archive's copies
    cut_shard(cat, LocalFrames(frames), tmp_path / "ref.npy", tmp_path / "ref.parquet")
    assert np.array_equal(np.load(tmp_path / "s.npy"), np.load(tmp_path / "ref.npy"))
    assert index["usable"].all()


def test_parts_cut_before_the_positions_changed_are_cut_again(survey, tmp_path, caplog):
    """A shard crashes after some fields; the export's positions then shift by 3 arcsec. The rerun
    must not reuse the parts of the old positions: every field is cut again, and the shard equals a
    clean cut of the new positions."""
    frames, cat = survey
    keys = sorted({key_of(cat, i) for i in range(len(cat))})
    with SAS(frames) as sas:
        sas.faults[name(keys[-1], "r")] = ["503"] * 10
        with pytest.raises(FrameError):
            cut_shard(cat, fetcher(sas, tmp_path / "dl", keep_frames=True, retries=1),
                      tmp_path / "s.npy", tmp_path / "s.parquet", threads=1)
        assert len(list((tmp_path / "s.parts").glob("field-*.npz"))) == len(keys) - 1
        sas.faults.clear()
        shifted = cat.assign(ra=cat["ra"] + 3.0 / 3600.0)
        caplog.clear()
        caplog.set_level("INFO", logger="sdssclr.stamps.shards")
        cut_shard(shifted, fetcher(sas, tmp_path / "dl", keep_frames=True), tmp_path / "s.npy",
                  tmp_path / "s.parquet", threads=1)
    assert caplog.text.count("the plan changed") == len(keys) - 1
    assert "0 already cut in an earlier attempt" in caplog.text
    cut_shard(shifted, LocalFrames(frames), tmp_path / "ref.npy", tmp_path / "ref.parquet")
    assert np.array_equal(np.load(tmp_path / "s.npy"), np.load(tmp_path / "ref.npy"))


def test_streamed_run_deletes_frames_and_bounds_disk(survey, tmp_path):
    frames, cat = survey
    with SAS(frames) as sas:
        f = fetcher(sas, tmp_path / "dl", keep_frames=False)
        cut_shard(cat, f, tmp_path / "s.npy", tmp_path / "s.parquet", threads=1)
    assert not list((tmp_path / "dl").rglob("*.fits.bz2"))
    one_field = sum((frames / frame_relpath(*key_of(cat), b)).stat().st_size for b in BANDS)
    assert 0 < f.high_water <= 1.5 * one_field  # one field in flight with threads=1
    assert f.fetched == 5 * cat.groupby(list(FIELD_KEYS)).ngroups


def test_kill_9_of_a_downloading_shard_loses_no_finished_field(survey, tmp_path, repo):
    """A shard job is killed (SIGKILL) while it streams fields from the archive; the rerun fetches
    only the fields not yet cut, and cleans the temporary files the kill left behind."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    frames, cat = survey
    keys = sorted({key_of(cat, i) for i in range(len(cat))})
    plan = cat.assign(shard=0)
    plan.to_parquet(tmp_path / "plan.parquet")
    from sdssclr.io import write_parquet_atomic

    write_parquet_atomic(plan, tmp_path / "plan.parquet", {"source": "synthetic"})
    script = tmp_path / "shard.py"
    script.write_text(
        "import json, sys\n"
        "from sdssclr.survey.fetch import FrameFetcher\n"
        "from sdssclr.stamps.shards import run_shard\n"
        "a = json.loads(sys.argv[1])\n"
        "f = FrameFetcher(a['url'], 16, a['dl'], parallel=1, timeout=5, keep_frames=False)\n"
        "run_shard(a['plan'], 0, f, a['npy'], a['idx'], size=32, policy='drop', threads=1)\n")
    with SAS(frames) as sas:
        sas.delay = 0.15  # a slow archive: 0.75 s per field, so the kill lands mid-shard
        args = json.dumps({"url": sas.url, "dl": str(tmp_path / "dl"), "plan": str(tmp_path / "plan.parquet"),
                           "npy": str(tmp_path / "s.npy"), "idx": str(tmp_path / "s.parquet")})
        env = dict(os.environ, PYTHONPATH=str(repo / "src"))
        proc = subprocess.Popen([sys.executable, str(script), args], env=env)
        parts = tmp_path / "s.parts"
        deadline = time.time() + 60
        while time.time() < deadline and len(list(parts.glob("field-*.npz"))) < 1:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = {p.name for p in parts.glob("field-*.npz")}
        assert 1 <= len(done) < len(keys) and not (tmp_path / "s.npy").exists()
        unfinished = [k for k in keys if part_path(parts, k).name not in done]
        leftover = tmp_path / "dl" / frame_relpath(*unfinished[0], "u")
        leftover.parent.mkdir(parents=True, exist_ok=True)
        stale = leftover.parent / f".{leftover.name}.abc123.bz2.tmp"  # what a kill mid-download leaves
        stale.write_bytes(b"partial")
        before = sas.requests.copy()
        sas.delay = 0.0
        proc = subprocess.run([sys.executable, str(script), args], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        again = {n for n, c in sas.requests.items() if c > before[n]}
    finished = {k for k in keys if part_path(parts, k).name in done}
    assert not again & {name(k, b) for k in finished for b in BANDS}  # no finished field is fetched again
    assert again == {name(k, b) for k in keys if k not in finished for b in BANDS}
    assert not stale.exists()
    index = __import__("pandas").read_parquet(tmp_path / "s.parquet")
    assert len(index) == len(cat) and index["usable"].all() and not parts.exists()
