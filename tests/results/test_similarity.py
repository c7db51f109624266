"""Similarity search: nearest neighbours by cosine similarity from a saved index, and its command line."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sdssclr.results.similarity import SimilarityIndex, save_index
from conftest import stamp_sets


def test_neighbours_are_ranked_by_cosine_similarity(tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(500, 16)).astype(np.float32)
    q = vecs[7]
    # objects 100..104 point almost along object 7, at decreasing similarity, with any length
    for k, eps in enumerate((0.01, 0.05, 0.1, 0.2, 0.3)):
        vecs[100 + k] = (q + eps * np.linalg.norm(q) * rng.normal(size=16) / 4) * (k + 1) * 3
    ids = np.arange(500, dtype=np.int64) * 10 + 1237650000000000000
    save_index(ids, vecs, tmp_path / "idx")
    index = SimilarityIndex(tmp_path / "idx")
    got, sim = index.neighbours(int(ids[7]), 5)
    assert got.tolist() == ids[100:105].tolist()
    expected = [float(np.dot(q, vecs[i]) / np.linalg.norm(q) / np.linalg.norm(vecs[i])) for i in range(100, 105)]
    np.testing.assert_allclose(sim, expected, atol=1e-5)
    assert np.all(np.diff(sim) <= 0)
    with pytest.raises(KeyError, match="not in the index"):
        index.neighbours(42, 3)


def test_the_command_line_lists_neighbours_with_classes_and_writes_a_gallery(tiny_run, tmp_path, repo):
    folder = tiny_run / "similarity" / "compact" / "split2023" / "seed0"
    ids = np.load(folder / "objid.npy")
    out = tmp_path / "gallery.png"
    res = subprocess.run([sys.executable, "-m", "sdssclr", "similar", str(ids[0]), "--k", "5", "--index", str(folder),
                          "--stamps", *map(str, stamp_sets(tiny_run)), "--gallery", str(out)],
                         capture_output=True, text=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo / "src")})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].split() == ["rank", "objID", "similarity", "class", "r_mag"]
    assert len(lines) == 1 + 5 + 1
    classes = {ln.split()[3] for ln in lines[1:6]}
    assert classes <= {"STAR", "GALAXY", "QSO", "unlabelled"}
    assert out.stat().st_size > 10_000
    res = subprocess.run([sys.executable, "-m", "sdssclr", "similar", "12345", "--index", str(folder),
                          "--gallery", "none"], capture_output=True, text=True, cwd=repo,
                         env={**os.environ, "PYTHONPATH": str(repo / "src")})
    assert res.returncode == 2 and "12345 is not in the index" in res.stderr
