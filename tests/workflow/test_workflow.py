"""The workflow itself: lint, formatting, and the DAG run end to end on a tiny synthetic config."""

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, all_stamps, run_snakemake, stamp_sets
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
    sets = stamp_sets(data_half)
    assert sorted(p.parent.name for p in sets) == ["exp1", "exp2", "exp3", "unlabelled_compact",
                                                   "unlabelled_faint_compact"]
    for path in sets:
        index = pd.read_parquet(path)
        plan = pd.read_parquet(path.with_name("plan.parquet"))
        assert set(index["objID"]) == set(plan["objID"])
        for shard, rows in index.groupby("shard"):
            arr = np.load(path.with_name(f"shard-{shard:04d}.npy"), mmap_mode="r")
            assert arr.shape == (len(rows), 5, 32, 32) and arr.dtype == np.float32
            assert sorted(rows["offset"]) == list(range(len(rows)))
        assert index["usable"].mean() > 0.9
        # each set holds the objects of its own consumer: an experiment's sample, or unlabelled objects
        name = path.parent.name
        source = (data_half / "samples" / "split2023" / f"{name}.parquet")
        assert set(index["objID"]) == set(pd.read_parquet(source)["objID"])
        assert index["labelled"].all() if name.startswith("exp") else not index["labelled"].any()
    for name in ["survey/catalog.parquet", "splits/split2023/exp1.parquet", "splits/split2023/exp3.parquet",
                 "samples/split2023/exp3.parquet", "stamps/split2023/exp1/index.parquet"]:
        assert read_parquet_metadata(data_half / name)["source"] == "synthetic"
    exp1 = pd.read_parquet(data_half / "splits" / "split2023" / "exp1.parquet")
    exp3 = pd.read_parquet(data_half / "splits" / "split2023" / "exp3.parquet")
    fit = set(exp1.loc[exp1["split"] != "test", "objID"])
    assert not fit & set(exp3.loc[exp3["split"] == "test", "objID"])
    # experiment 3's sample: its own test and calibration objects; the rest of its split is exp1's
    own3 = pd.read_parquet(data_half / "samples" / "split2023" / "exp3.parquet")
    assert set(own3["split"]) == {"test", "calib"}
    assert set(exp3["objID"]) == set(own3["objID"]) | fit
    for log in ["pool_compact", "sample_exp3_split2023", "split_exp3_split2023", "stamp_shard_exp1_split2023_0000"]:
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

    # each encoder embeds every usable stamp of the sets it reads: its owner's sample and the
    # unlabelled objects it sees (the compact encoder: both datasets', the target domain's too)
    for dataset, sets in (("compact", ("exp1", "unlabelled_compact", "unlabelled_faint_compact")),
                          ("faint_compact", ("exp2", "unlabelled_faint_compact"))):
        index = all_stamps(tiny_run, *sets)
        for seed in (0, 1):
            out = tiny_run / "pretrain" / dataset / "split2023" / "all" / f"seed{seed}"
            objid, emb = read_embeddings(out / "embeddings.parquet")
            assert sorted(objid) == sorted(index.loc[index["usable"], "objID"])
            assert emb.shape == (len(objid), 128) and np.isfinite(emb).all()
            curve = pd.read_csv(out / "curve.tsv", sep="\t")
            assert list(curve.columns) == ["epoch", "loss", "lr", "images_per_s", "view_sky_corr", "knn_val_acc"] and len(curve) == 2
            assert curve["knn_val_acc"].between(0, 1).all()
            assert not (out / "checkpoint.pt").exists()
            assert read_parquet_metadata(out / "embeddings.parquet")["source"] == "synthetic"
    def embeddings(name):
        objid, vectors = read_embeddings(tiny_run / "pretrain" / "compact" / "split2023" / name / "embeddings.parquet")
        return pd.DataFrame(vectors, index=objid)

    emb = {name: embeddings(name) for name in ("all/seed0", "all/seed1", "labelled/seed0")}
    # the labelled-only encoder embeds the labelled objects it reads (its set holds no unlabelled one)
    labelled = emb["labelled/seed0"]
    assert sorted(labelled.index) == sorted(all_stamps(tiny_run, "exp1").query("usable")["objID"])
    a, b, c = emb["all/seed0"].loc[labelled.index], emb["all/seed1"].loc[labelled.index], labelled
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

    from sdssclr.catalog import TASK_CLASSES
    from sdssclr.io import write_parquet_atomic
    from sdssclr.learn.supervised import evaluate_run

    assert not list((tiny_run / "runs" / "exp3").rglob("model.pt"))
    for model in ("gbdt", "margnet", "simclr", "simclr-linear"):
        m3 = json.loads((tiny_run / "runs" / "exp3" / "SGQ" / model / "split2023" / "seed0" / "metrics.json").read_text())
        assert m3["trained_in"] == "exp1" and m3["experiment"] == "exp3"
        again = evaluate_run(tiny_run / "runs" / "exp1" / "SGQ" / model / "split2023" / "seed0" / "model.pt",
                             tiny_run / "splits" / "split2023" / "exp3.parquet", stamp_sets(tiny_run, "exp3", "exp1"),
                             tmp_path / f"{model}.json", tmp_path / f"{model}.parquet", experiment="exp3")
        assert again["confusion_matrix"] == m3["confusion_matrix"]
        assert again["components"] == m3["components"]
        assert m3["n_test_parent_fitted"] == again["n_test_parent_fitted"] == 0
    # a split that flags some test objects as the parent's (keep_parent_overlap): counted, per task
    split = pd.read_parquet(tiny_run / "splits" / "split2023" / "exp3.parquet")
    flagged = split["split"].eq("test") & split["class"].isin(["STAR", "GALAXY", "QSO"]) & (split.index % 3 == 0)
    meta = read_parquet_metadata(tiny_run / "splits" / "split2023" / "exp3.parquet")
    write_parquet_atomic(split.assign(parent_fitted=flagged), tmp_path / "leaky.parquet", meta)
    for task in ("SG", "SGQ"):
        leaky = evaluate_run(tiny_run / "runs" / "exp1" / task / "gbdt" / "split2023" / "seed0" / "model.pt",
                             tmp_path / "leaky.parquet", stamp_sets(tiny_run, "exp3", "exp1"), tmp_path / "l.json",
                             tmp_path / "l.parquet", experiment="exp3")
        tested = pd.read_parquet(tmp_path / "l.parquet").query("split == 'test'")["objID"]
        want = split.loc[flagged & split["class"].isin(TASK_CLASSES[task]), "objID"].isin(tested).sum()
        assert leaky["n_test_parent_fitted"] == want > 0
    # a pretrained model's evaluation checked its test objects against the encoder's pretraining set
    log = (tiny_run / "logs" / "transfer_exp3_SGQ_simclr-margformer_split2023_seed0.log").read_text()
    assert "none of 45 exp3's test objects in the encoder's pretraining set" in log


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


# The tiny run's shape (tests/data/tiny.yaml over config.yaml): 2 experiments that train, 9 models,
# 2 tasks, 2 seeds, 1 split seed; label budget 0.5 for 3 models of exp1 SGQ. Pretrained models read
# the 'all' encoder (simclr, simclr-linear, simclr-margformer) or the 'labelled' one.
RUNS = 2 * 2  # tasks x seeds of one model in one experiment
ALL_ENCODER = 3
PRETRAINED = ALL_ENCODER + 1
# Tables, figures, reports and predictions: downstream of almost everything, never checked by count.
REPORTS = {"table1", "experiment_table", "label_efficiency", "confusion_plot", "conformal", "html_page", "gallery",
           "accuracy_vs_magnitude", "predict", "similarity_index", "pretrain_curve_plot", "embedding_map", "all"}
STAMPS = {"stamp_plan", "stamp_shard", "stamp_index"}

# What each scientific key should rerun on a finished run: the rules (reports aside) and their job
# counts. Keys grouped by what they feed; the five of issue 20's table come first.
RERUNS = [
    # a faint cut: the faint pool and its samples (exp2, exp3), the faint unlabelled objects, the
    # encoders that see them (compact 'all' sees the target domain), never exp1's sample or stamps
    ({"cuts": {"faint_min_mag": 20.2}},
     {"pool": 1, "sample": 2, "split": 2, "unlabelled": 1, "stamp_plan": 3, "stamp_shard": 6, "stamp_index": 3,
      "pretrain_set": 3, "pretrain": 6, "train": 9 * RUNS + ALL_ENCODER * RUNS, "transfer": 9 * RUNS,
      "label_efficiency_run": 2}),
    # the calibration carve changes the splits, never the samples, so no stamp is cut again
    ({"conformal": {"calibration_fraction": 0.3}},
     {"split": 3, "pretrain_set": 4, "pretrain": 8, "train": 2 * 9 * RUNS, "transfer": 9 * RUNS,
      "label_efficiency_run": 6}),
    # experiment 3's test objects: its sample, split, stamps and evaluations only
    ({"experiments": {"exp3": {"test_per_class": 12}}},
     {"sample": 1, "split": 1, "stamp_plan": 1, "stamp_shard": 2, "stamp_index": 1, "transfer": 9 * RUNS}),
    # unlabelled objects: their stamps, the 'all' encoders and the models on them, nothing supervised
    ({"unlabelled": {"per_field": 3}},
     {"unlabelled": 2, "stamp_plan": 2, "stamp_shard": 4, "stamp_index": 2, "pretrain_set": 2, "pretrain": 4,
      "train": 2 * ALL_ENCODER * RUNS, "transfer": ALL_ENCODER * RUNS, "label_efficiency_run": 2}),
    # one dataset's size: its sample (and exp3's, drawn outside it), the compact encoders, exp1's models
    ({"datasets": {"compact": {"per_class": 50}}},
     {"sample": 2, "split": 2, "unlabelled": 1, "stamp_plan": 3, "stamp_shard": 6, "stamp_index": 3,
      "pretrain_set": 2, "pretrain": 4, "train": 9 * RUNS, "transfer": 9 * RUNS, "label_efficiency_run": 6}),
    ({"experiments": {"exp2": {"ratios": [6, 2, 2]}}},
     {"sample": 1, "split": 1, "unlabelled": 1, "stamp_plan": 2, "stamp_shard": 4, "stamp_index": 2,
      "pretrain_set": 3, "pretrain": 6, "train": 9 * RUNS + ALL_ENCODER * RUNS, "transfer": ALL_ENCODER * RUNS,
      "label_efficiency_run": 2}),
    # a second split seed: everything of its own, nothing of the first
    ({"split_seeds": [2023, 7]},
     {"sample": 3, "split": 3, "unlabelled": 2, "stamp_plan": 5, "stamp_shard": 10, "stamp_index": 5,
      "pretrain_set": 4, "pretrain": 8, "train": 2 * 9 * RUNS, "transfer": 9 * RUNS, "label_efficiency_run": 6}),
    # a third seed: its encoders and models
    ({"seeds": [0, 1, 2]},
     {"pretrain": 4, "train": 2 * 9 * 2, "transfer": 9 * 2, "label_efficiency_run": 3}),
    # SimCLR's recipe: the encoders and every pretrained model, not the pretraining sets
    ({"pretrain": {"temperature": 0.3}},
     {"pretrain": 8, "train": 2 * PRETRAINED * RUNS, "transfer": PRETRAINED * RUNS, "label_efficiency_run": 2}),
    ({"pretrain": {"augment": {"min_fresh_noise": 0.5}}},
     {"pretrain": 8, "train": 2 * PRETRAINED * RUNS, "transfer": PRETRAINED * RUNS, "label_efficiency_run": 2}),
    # one classifier's recipe: that model (and its control sharing the section) only
    ({"classifiers": {"linear": {"C": [0.5]}}}, {"train": 2 * 2 * RUNS, "transfer": 2 * RUNS}),
    ({"classifiers": {"margnet": {"ann": {"max_epochs": 4}}}},
     {"train": 2 * RUNS, "transfer": RUNS, "label_efficiency_run": 2}),
    ({"classifiers": {"gbdt": {"max_iter": 25}}}, {"train": 2 * RUNS, "transfer": RUNS}),
    ({"classifiers": {"finetune": {"width": 16}}}, {"train": 2 * 2 * RUNS, "transfer": 2 * RUNS}),
    ({"classifiers": {"margformer": {"dim": 8}}},
     {"train": 2 * 3 * RUNS, "transfer": 3 * RUNS, "label_efficiency_run": 4}),
    # the stamps themselves: every stamp and everything that reads one
    ({"stamps": {"policy": "pad"}},
     {"stamp_shard": 10, "stamp_index": 5, "pretrain_set": 4, "pretrain": 8, "train": 2 * 9 * RUNS,
      "transfer": 9 * RUNS, "label_efficiency_run": 6}),
    # what only the tables, the report and the predictions read
    # the survey itself: everything
    ({"synthetic": {"photometric_per_field": 7}},
     {"synthetic_survey": 1, "pool": 2, "sample": 3, "split": 3, "unlabelled": 2, "stamp_plan": 5, "stamp_shard": 10,
      "stamp_index": 5, "pretrain_set": 4, "pretrain": 8, "train": 2 * 9 * RUNS, "transfer": 9 * RUNS,
      "label_efficiency_run": 6}),
    ({"comparison": {"equivalence_margin": 0.5}}, {}),
    ({"predictions": {"models": ["gbdt"]}}, {}),
    # dropping a task or a model keeps every run of the others
    ({"tasks": ["SGQ"]}, {}),
    ({"models": ["margnet", "simclr", "twotower", "simclr-linear", "linear-random", "simclr-margformer",
                 "simclr-margformer-labelled", "margformer"], "predictions": {"models": ["margnet"]}}, {}),
    ({"conformal": {"alpha": 0.2}}, {}),
    ({"label_efficiency": {"fractions": [0.25, 1.0]}}, {"label_efficiency_run": 6}),
]


@pytest.mark.slow
def test_object_lists_feed_the_pools_they_restrict(tiny_run, tmp_path):
    """A dataset's list is an input of its pool; a transfer experiment's list of test objects makes
    its own test pool, and only experiment 3's work follows from it."""
    pool = pd.read_parquet(tiny_run / "samples" / "pool_compact.parquet", columns=["objID"])
    listed = tmp_path / "objlist.npy"
    np.save(listed, pool["objID"].to_numpy())
    jobs = planned(tiny_run.parent, {"datasets": {"compact": {"objid_list": str(listed)}}})
    assert jobs["pool"] == 1 and jobs["sample"] == 2 and "synthetic_survey" not in jobs
    faint = pd.read_parquet(tiny_run / "samples" / "pool_faint_compact.parquet", columns=["objID"])
    test_list = tmp_path / "exp3.parquet"
    faint.to_parquet(test_list)
    jobs = planned(tiny_run.parent, {"experiments": {"exp3": {"test_objid_list": str(test_list)}}})
    assert {rule: n for rule, n in jobs.items() if rule not in REPORTS} == {
        "test_pool": 1, "sample": 1, "split": 1, "stamp_plan": 1, "stamp_shard": 2, "stamp_index": 1,
        "transfer": 9 * RUNS}


def test_the_first_real_run_config_plans_the_sdss_path_offline(repo, tmp_path):
    res = snakemake(repo, tmp_path, "results/table1.md", "-n", "--configfile", str(repo / "sdss-small.yaml"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "sdss_catalog" in out and "synthetic_survey" not in out and "stamp_plan" in out


def yaml_key(override: dict) -> str:
    """'a.b.c' of a one-key override."""
    key, value = next(iter(override.items()))
    return key + ("." + yaml_key(value) if isinstance(value, dict) else "")


@pytest.mark.slow
@pytest.mark.parametrize("override, expected", RERUNS, ids=[yaml_key(o) for o, _ in RERUNS])
def test_a_scientific_key_reruns_what_reads_it_and_nothing_else(tiny_run, override, expected):
    jobs = planned(tiny_run.parent, override)
    assert {rule: n for rule, n in jobs.items() if rule not in REPORTS} == expected


def test_every_section_of_the_scientific_config_has_its_rerun_case(base_config):
    """Every top-level section with a scientific key, and every model's recipe in ``classifiers``,
    is exercised by RERUNS (the survey section's scientific keys belong to the SDSS path)."""
    from sdssclr.config import OPERATIONAL

    def scientific(section, value):
        return not isinstance(value, dict) or any(k not in OPERATIONAL.get(section, ()) for k in value)

    sections = {(k,) for k, v in base_config.items() if k not in ("survey", "classifiers") and scientific(k, v)}
    sections |= {("classifiers", k) for k, v in base_config["classifiers"].items() if isinstance(v, dict)}
    covered = set()
    for override, _ in RERUNS:
        key = tuple(yaml_key(override).split("."))
        covered.add(key[:2] if key[0] == "classifiers" else key[:1])
    assert sections <= covered, sorted(sections - covered)


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
    # a stamp file lost (to a full disk, a cleanup): finished results stand (Snakemake treats it like
    # a temporary file), but the next job that reads the set has it cut first, never a
    # FileNotFoundError: then what reads that set reruns (exp2's models, its dataset's encoders)
    lost = tiny_run / "stamps" / "split2023" / "exp2" / "shard-0001.npy"
    kept = shutil.copy2(lost, workdir / "kept.npy")
    lost.unlink()
    try:
        untouched = planned(workdir, {})
        jobs = planned(workdir, {"classifiers": {"gbdt": {"max_iter": 25}}})
    finally:
        shutil.copy2(kept, lost)
    assert untouched == {}
    assert {r: n for r, n in jobs.items() if r not in REPORTS} == {
        "stamp_shard": 1, "stamp_index": 1, "pretrain_set": 2, "pretrain": 4, "train": 9 * RUNS + RUNS,
        "transfer": RUNS}
    # a cut of both pools changes every sample: everything downstream of the catalogue, not the survey
    cut = planned(workdir, {"cuts": {"compact_max_ratio": 0.45}})
    assert "synthetic_survey" not in cut
    for rule in ("pool", "sample", "split", *STAMPS, "unlabelled", "pretrain", "train", "transfer", "table1"):
        assert rule in cut, rule


@pytest.mark.slow
def test_predictions_classify_every_stamped_object_with_calibrated_sets(tiny_run):
    for exp, dataset in (("exp1", "compact"), ("exp2", "faint_compact")):
        # the experiment's own objects and the unlabelled objects of its dataset
        index = all_stamps(tiny_run, exp, f"unlabelled_{dataset}")
        usable = index.loc[index["usable"]]
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
