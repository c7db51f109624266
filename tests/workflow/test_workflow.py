"""The workflow itself: lint, formatting, and the DAG run end to end on a tiny synthetic config."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_snakemake
from sdssclr.io import read_parquet_metadata


def snakemake(repo, workdir, *args):
    return run_snakemake(workdir, *args)


def test_lint_is_clean(repo, tmp_path):
    for extra in ([], ["--configfile", str(REPO / "tests" / "data" / "tiny.yaml")]):  # SDSS and synthetic DAGs
        res = snakemake(repo, tmp_path, "--lint", *extra)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "Lints for" not in res.stdout + res.stderr


def test_snakefmt_is_clean(repo):
    res = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], capture_output=True,
                         text=True, cwd=repo)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def data_half(tiny_run):
    return tiny_run


@pytest.mark.slow
def test_data_half_runs_and_is_consistent(data_half):
    index = pd.read_parquet(data_half / "stamps" / "index.parquet")
    plan = pd.read_parquet(data_half / "stamps" / "plan.parquet")
    assert set(index["objID"]) == set(plan["objID"])
    for shard, rows in index.groupby("shard"):
        arr = np.load(data_half / "stamps" / f"shard-{shard:04d}.npy", mmap_mode="r")
        assert arr.shape == (len(rows), 5, 32, 32) and arr.dtype == np.float32
        assert sorted(rows["offset"]) == list(range(len(rows)))
    assert index["usable"].mean() > 0.9
    for name in ["survey/catalog.parquet", "splits/split2023/exp1.parquet", "splits/split2023/exp3.parquet",
                 "stamps/index.parquet"]:
        assert read_parquet_metadata(data_half / name)["source"] == "synthetic"
    exp1 = pd.read_parquet(data_half / "splits" / "split2023" / "exp1.parquet")
    exp3 = pd.read_parquet(data_half / "splits" / "split2023" / "exp3.parquet")
    fit = set(exp1.loc[exp1["split"] != "test", "objID"])
    assert not fit & set(exp3.loc[exp3["split"] == "test", "objID"])
    splits = set(pd.concat([pd.read_parquet(data_half / "splits" / "split2023" / f"exp{k}.parquet") for k in (1, 2, 3)])["objID"])
    assert splits == set(index.loc[index["labelled"], "objID"])  # and the unlabelled objects of their fields
    for log in ["pool_compact", "split_exp3_split2023", "stamp_shard_0000"]:
        assert (data_half / "logs" / f"{log}.log").stat().st_size > 0


def test_default_config_plans_the_sdss_path_offline(repo, tmp_path):
    res = snakemake(repo, tmp_path, "results/table1.md", "-n")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "sdss_catalog" in out and "synthetic_survey" not in out
    assert "stamp_shard" in out and "64" in out  # the paper-scale config's shard count
    assert "table1" in out and "pretrain" in out and "transfer" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_pretraining_runs_in_the_dag(tiny_run):
    from sdssclr.learn.runfiles import read_embeddings

    index = pd.read_parquet(tiny_run / "stamps" / "index.parquet")
    for dataset in ("compact", "faint_compact"):
        for seed in (0, 1):
            out = tiny_run / "pretrain" / dataset / "split2023" / "all" / f"seed{seed}"
            objid, emb = read_embeddings(out / "embeddings.parquet")
            assert set(objid) == set(index.loc[index["usable"], "objID"])
            assert emb.shape == (len(objid), 128) and np.isfinite(emb).all()
            curve = pd.read_csv(out / "curve.tsv", sep="\t")
            assert list(curve.columns) == ["epoch", "loss", "lr", "images_per_s", "view_sky_corr", "knn_val_acc"] and len(curve) == 2
            assert curve["knn_val_acc"].between(0, 1).all()
            assert not (out / "checkpoint.pt").exists()
            assert read_parquet_metadata(out / "embeddings.parquet")["source"] == "synthetic"
    a = read_embeddings(tiny_run / "pretrain" / "compact" / "split2023" / "all" / "seed0" / "embeddings.parquet")[1]
    b = read_embeddings(tiny_run / "pretrain" / "compact" / "split2023" / "all" / "seed1" / "embeddings.parquet")[1]
    c = read_embeddings(tiny_run / "pretrain" / "compact" / "split2023" / "labelled" / "seed0" / "embeddings.parquet")[1]
    assert not np.allclose(a, b) and not np.allclose(a, c)  # seeds differ, and so do the pretraining sets
    # the two views' sky pixels share the stamp's own noise only: the fresh noise halves it or better
    assert (pd.read_csv(tiny_run / "pretrain" / "compact" / "split2023" / "all" / "seed0" / "curve.tsv",
                        sep="\t")["view_sky_corr"] < 0.6).all()


@pytest.mark.slow
def test_tables_are_complete_and_labelled(tiny_run):
    text = (tiny_run / "table1.md").read_text()
    assert "SYNTHETIC SURVEY, NOT SDSS DATA" in text and "Runs: 2 seed(s) (0, 1) x 1 split seed(s) (2023)" in text
    assert text.index("## Primary endpoint") < text.index("## What the unlabelled objects add") < text.index(
        "## This workflow")
    from sdssclr.registry import LABELS

    for exp in ("exp1", "exp2", "exp3"):
        for task in ("SG", "SGQ"):
            for row in ("gbdt", "margnet", "margnet-ann", "margnet-cnn", "simclr", "twotower", "simclr-linear",
                        "linear-random", "simclr-margformer", "simclr-margformer-labelled", "margformer"):
                assert f"| {exp} | {task} | {LABELS[row]} |" in text
    assert "nan" not in text.lower()
    exp3 = (tiny_run / "experiments" / "exp3.md").read_text()
    assert "| exp3 | SG |" in exp3 and "| exp1 |" not in exp3
    # the encoder learning rate each image + feature model chose on the validation split, for both
    # the pretrained model and its control; the probe's C
    exp1 = (tiny_run / "experiments" / "exp1.md").read_text()
    chosen = exp1[exp1.index("## Chosen on the validation split"):]
    for model in ("simclr", "twotower", "simclr-margformer", "margformer"):
        assert f"| exp1 | SGQ | {LABELS[model]} | `encoder_lr` |" in chosen
    assert f"| exp1 | SG | {LABELS['simclr-linear']} | `C` |" in chosen
    assert "Label fraction" in (tiny_run / "label_efficiency.md").read_text()
    for png in ["label_efficiency.png", "figures/confusion_exp1_SGQ.png", "figures/confusion_exp3_SG.png"]:
        assert (tiny_run / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_exp3_evaluates_the_exp1_models(tiny_run, tmp_path):
    import json

    from sdssclr.learn.supervised import evaluate_run

    assert not list((tiny_run / "runs" / "exp3").rglob("model.pt"))
    for model in ("gbdt", "margnet", "simclr", "simclr-linear"):
        m3 = json.loads((tiny_run / "runs" / "exp3" / "SGQ" / model / "split2023" / "seed0" / "metrics.json").read_text())
        assert m3["trained_in"] == "exp1" and m3["experiment"] == "exp3"
        again = evaluate_run(tiny_run / "runs" / "exp1" / "SGQ" / model / "split2023" / "seed0" / "model.pt",
                             tiny_run / "splits" / "split2023" / "exp3.parquet", tiny_run / "stamps" / "index.parquet",
                             tmp_path / f"{model}.json", tmp_path / f"{model}.parquet", experiment="exp3")
        assert again["confusion_matrix"] == m3["confusion_matrix"]
        assert again["components"] == m3["components"]


def planned(workdir, override: dict) -> dict[str, int]:
    """Jobs ``snakemake -n`` plans on the finished tiny run after ``override`` (rule -> count)."""
    import yaml

    from conftest import REPO

    extra = workdir / "override.yaml"
    extra.write_text(yaml.safe_dump(override))
    res = run_snakemake(workdir, "-n", "--configfile", str(REPO / "tests" / "data" / "tiny.yaml"), str(extra))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    if "Nothing to be done" in out:
        return {}
    lines = out[out.index("Job stats:"):].splitlines()[3:]
    jobs = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


@pytest.mark.slow
def test_operational_keys_rerun_nothing_and_a_cut_reruns_its_downstream(tiny_run):
    workdir = tiny_run.parent
    operational = {
        "survey": {"timeout_s": 5, "page_size": 1000, "max_queries_per_minute": 10, "retries": 1, "backoff_s": 1.0,
                   "sas_url": "https://mirror.example.org/sas", "download_dir": "elsewhere", "parallel_downloads": 2,
                   "keep_frames": True, "download_on_submit_host": True},
        "stamps": {"max_missing_fraction": 0.2},
        "pretrain": {"device": "cpu", "gpus": 2, "embed_batch_size": 7, "checkpoint_every": 3},
        "classifiers": {"device": "cpu", "fail_at_chance": True},
    }
    assert planned(workdir, operational) == {}
    # a probe's regularisation retrains the probe (and what reads it), never MargNet
    probe = planned(workdir, {"classifiers": {"linear": {"C": [0.5]}}})
    # the probe and its control: 2 models x 2 exps x 2 tasks x 2 seeds
    assert probe["train"] == 16 and probe["transfer"] == 8 and "pretrain" not in probe
    assert set(probe) <= {"train", "transfer", "label_efficiency_run", "table1", "experiment_table",
                          "label_efficiency", "confusion_plot", "conformal", "html_page", "gallery",
                          "accuracy_vs_magnitude", "all"}
    # a second split seed draws its own samples, pretrains its own encoders and trains its own models
    two = planned(workdir, {"split_seeds": [2023, 7]})
    assert two["split"] == 3 and "pool" not in two and "synthetic_survey" not in two
    # (the stamps of the new split's objects rerun the stamp index, and with it the first split's work)
    assert two["pretrain"] == 2 * 2 * 2 * 2  # splits x datasets x pretraining sets x seeds
    assert two["train"] == 2 * 2 * 9 * 2 * 2  # splits x exps x models x tasks x seeds
    # a faint cut redraws the faint+compact pool only: the compact pool gets only its own cuts
    assert planned(workdir, {"cuts": {"faint_min_mag": 20.2}})["pool"] == 1
    # a cut changes the samples: everything downstream of the catalogue reruns, the survey does not
    cut = planned(workdir, {"cuts": {"compact_max_ratio": 0.45}})
    assert "synthetic_survey" not in cut
    for rule in ("pool", "split", "stamp_plan", "stamp_shard", "stamp_index", "pretrain", "train", "transfer",
                 "table1"):
        assert rule in cut, rule


@pytest.mark.slow
def test_predictions_classify_every_stamped_object_with_calibrated_sets(tiny_run):
    index = pd.read_parquet(tiny_run / "stamps" / "index.parquet")
    usable = index.loc[index["usable"]]
    for exp in ("exp1", "exp2"):
        split = pd.read_parquet(tiny_run / "splits" / "split2023" / f"{exp}.parquet")
        for task, classes in (("SG", ["STAR", "GALAXY"]), ("SGQ", ["STAR", "GALAXY", "QSO"])):
            for model in ("gbdt", "simclr-margformer"):
                df = pd.read_parquet(tiny_run / "predictions" / exp / task / f"{model}.parquet")
                assert sorted(df["objID"]) == sorted(usable["objID"])
                assert (~df["labelled"]).sum() == (~usable["labelled"]).sum() > 0
                assert df.loc[~df["labelled"], "class"].isna().all()
                p = df[[f"p_{c}" for c in classes]].to_numpy()
                np.testing.assert_allclose(p.sum(1), 1, atol=1e-4)
                sets = df[[f"in_set_{c}" for c in classes]].to_numpy()
                assert (sets.sum(1) == df["set_size"]).all()
                assert (df["predicted"] == np.asarray(classes)[p.argmax(1)]).all()
                mine = df.set_index("objID")["split"]
                want = split.set_index("objID")["split"]
                both = mine.index.intersection(want.index)
                assert (mine.loc[both] == want.loc[both]).all()
                assert (mine.drop(both) == "none").all()
    cal = pd.read_parquet(tiny_run / "splits" / "split2023" / "exp1.parquet")
    assert (cal["split"] == "calib").sum() > 0
    runs = pd.read_parquet(tiny_run / "runs" / "exp3" / "SG" / "margnet" / "split2023" / "seed0" / "predictions.parquet")
    # experiment 3: its own faint calibration objects, and experiment 1's as the shift diagnostic
    assert set(runs["split"]) == {"test", "calib", "calib_source"}
    exp3 = pd.read_parquet(tiny_run / "splits" / "split2023" / "exp3.parquet")
    faint = pd.read_parquet(tiny_run / "samples" / "pool_faint_compact.parquet")
    own = exp3.loc[exp3["split"] == "calib", "objID"]
    fitted = cal.loc[cal["split"].isin(["train", "val", "calib"]), "objID"]  # what exp1's models saw
    assert own.isin(faint["objID"]).all() and not own.isin(fitted).any()
    assert sorted(exp3.loc[exp3["split"] == "calib_source", "objID"]) == sorted(cal.loc[cal["split"] == "calib",
                                                                                        "objID"])
    conformal = (tiny_run / "conformal.md").read_text()
    assert "| exp3 | SG | MargNet (ours) | own dataset |" in conformal and "shift diagnostic" in conformal


@pytest.mark.slow
def test_the_report_holds_every_section(tiny_run, tmp_path):
    out = tmp_path / "report.html"
    res = run_snakemake(tiny_run.parent, "--configfile", str(REPO / "tests" / "data" / "tiny.yaml"),
                        "--report", str(out))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = out.read_text()
    for needle in ("1. Tables", "2. Per experiment", "3. Calibrated prediction sets", "4. Pretraining",
                   "table1.html", "label_efficiency.html", "label_efficiency.png", "conformal.html",
                   "conformal_coverage.png", "confusion_exp2_SGQ.png", "gallery_exp1_SG.png",
                   "accuracy_vs_mag_exp3_SGQ.png", "pretrain_faint_compact_split2023_seed1.png",
                   "embedding_compact_split2023_seed0.png", "Stamp galleries", "Embedding maps"):
        assert needle in text, needle
    conformal = (tiny_run / "conformal.md").read_text()
    assert "SYNTHETIC survey" in conformal and "| exp3 | SGQ |" in conformal
