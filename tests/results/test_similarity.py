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
    assert len(lines) == 1 + 5 + 2
    assert lines[-2].startswith("index: exact search over")  # the tiny run's index is exact
    classes = {ln.split()[3] for ln in lines[1:6]}
    assert classes <= {"STAR", "GALAXY", "QSO", "unlabelled"}
    assert out.stat().st_size > 10_000
    res = subprocess.run([sys.executable, "-m", "sdssclr", "similar", "12345", "--index", str(folder),
                          "--gallery", "none"], capture_output=True, text=True, cwd=repo,
                         env={**os.environ, "PYTHONPATH": str(repo / "src")})
    assert res.returncode == 2 and "12345 is not in the index" in res.stderr


def latent_vectors(n, dim, rng, latent=8, noise=0.1):
    """Vectors whose neighbours are set by a few factors: a random linear map of ``latent``-d
    Gaussians plus isotropic noise."""
    return (rng.normal(size=(n, latent)) @ rng.normal(size=(latent, dim)) + noise * rng.normal(size=(n, dim))
            * np.sqrt(latent)).astype(np.float32)


def test_the_index_is_exact_while_small_and_compressed_beyond_with_high_recall(tmp_path):
    from sdssclr.results.similarity import index_spec

    assert index_spec(1000, 512) == "Flat"
    assert index_spec(10_000_000, 128) == "IVF4096,PQ64"  # 64 code bytes, sqrt(n) ~ 3,160 cells
    assert index_spec(10_000_000, 96) == "IVF4096,PQ48"  # m divides the dimension, >= 2 dims each
    assert index_spec(10_000_000, 512) == "IVF4096,PQ64"
    rng = np.random.default_rng(1)
    n, dim, k = 20_000, 32, 10
    vecs = latent_vectors(n, dim, rng)
    ids = np.arange(n, dtype=np.int64) + 1237650000000000000
    assert save_index(ids, vecs, tmp_path / "exact") == "Flat"
    assert save_index(ids, vecs, tmp_path / "ivf", exact_max_bytes=n * dim) == "IVF128,PQ16"
    exact, approx = SimilarityIndex(tmp_path / "exact"), SimilarityIndex(tmp_path / "ivf")
    assert exact.exact and not approx.exact and "approximate" in approx.describe()
    # bytes per object in the index: the codes and an 8-byte id (the exact vectors stay on disk)
    assert (tmp_path / "ivf" / "index.faiss").stat().st_size / n < 40
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    recall = []
    for q in rng.choice(n, 50, replace=False):
        truth = set(ids[np.argsort(-(unit @ unit[q]))[1:k + 1]])
        got, sim = approx.neighbours(int(ids[q]), k)
        assert len(got) == k and ids[q] not in got and np.all(np.diff(sim) <= 0)
        rows = got - ids[0]  # re-ranked: the similarities are the exact ones
        np.testing.assert_allclose(sim, unit[rows] @ unit[q], atol=1e-5)
        recall.append(len(truth & set(got)) / k)
        assert set(exact.neighbours(int(ids[q]), k)[0]) == truth
    assert np.mean(recall) > 0.9


def test_an_index_whose_objids_do_not_match_its_vectors_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    save_index(np.arange(50), rng.normal(size=(50, 8)), tmp_path / "idx")
    np.save(tmp_path / "idx" / "objid.npy", np.arange(49))
    with pytest.raises(ValueError, match="holds 50 vectors, vectors.npy 50 and objid.npy 49"):
        SimilarityIndex(tmp_path / "idx")
