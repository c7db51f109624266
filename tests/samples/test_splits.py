import numpy as np
import pandas as pd
import pytest

from sdssclr.catalog import labels, select_task
from sdssclr.io import read_parquet_metadata, write_parquet_atomic
from sdssclr.samples.splits import (PARENT_FITTED, SampleError, carve_calibration, check_split, make_sample,
                                   make_split, make_transfer_sample, make_transfer_split, parent_fitted_ids,
                                   parent_overlap, write_split)


def pool(n_per_class=(300, 200, 500), start=0):
    ids, classes = [], []
    for cls, n in zip(["STAR", "GALAXY", "QSO"], n_per_class):
        ids.extend(range(start, start + n))
        classes.extend([cls] * n)
        start += n
    return pd.DataFrame({"objID": np.array(ids, dtype=np.int64), "class": classes,
                         "r": np.linspace(17, 22, len(ids))})


def test_split_is_balanced_disjoint_and_in_ratio():
    split = make_split(pool(), 160, [6, 1, 1], seed=3, experiment="exp1")
    counts = split.groupby(["split", "class"]).size().unstack()
    assert (counts.loc["train"] == 120).all() and (counts.loc["val"] == 20).all()
    assert (counts.loc["test"] == 20).all()
    assert not split["objID"].duplicated().any()
    check_split(split, "exp1")


def test_split_is_reproducible_and_seed_dependent_and_order_free():
    p = pool()
    a = make_split(p, 100, [8, 1, 1], seed=1, experiment="exp2")
    b = make_split(p.sample(frac=1.0, random_state=0), 100, [8, 1, 1], seed=1, experiment="exp2")
    c = make_split(p, 100, [8, 1, 1], seed=2, experiment="exp2")
    key = lambda s: s.sort_values("objID")[["objID", "split"]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(key(a), key(b))
    assert not key(a).equals(key(c))


def test_undersampling_is_random_not_top_n():
    split = make_split(pool((1000, 1000, 1000)), 100, [6, 1, 1], seed=0, experiment="exp1")
    stars = split.loc[split["class"] == "STAR", "objID"]
    assert stars.max() > 500  # a TOP 100 would stop at objID 99


def test_too_small_pool_is_an_error_naming_the_class():
    with pytest.raises(SampleError, match="GALAXY"):
        make_split(pool((300, 50, 500)), 100, [6, 1, 1], seed=0, experiment="exp1")


def transfer(parent, test_pool, per_class, **kw):
    """Experiment 3's split as the rules build it: its own sample, then the split."""
    return make_transfer_split(parent, make_transfer_sample(parent, test_pool, per_class, **kw))


def test_the_sample_and_what_is_stamped_do_not_depend_on_the_calibration_carve():
    p = pool((400, 400, 400))
    sample = make_sample(p, 300, [6, 1, 1], seed=0, experiment="exp1")
    for fraction in (0.2, 0.5):
        split = make_split(p, 300, [6, 1, 1], seed=0, experiment="exp1", calibration_fraction=fraction)
        assert (split["objID"] == sample["objID"]).all()
        assert ((split["split"] == "calib") <= (sample["split"] == "val")).all()
        # experiment 3 draws the same objects whatever its parent's calibration fraction
        faint = p.iloc[::2]
        own = make_transfer_sample(split, faint, 30, seed=0, experiment="exp3", calibration_per_class=20)
        pd.testing.assert_frame_equal(own, make_transfer_sample(sample, faint, 30, seed=0, experiment="exp3",
                                                                calibration_per_class=20))


def test_transfer_split_never_tests_on_training_objects():
    parent = make_split(pool((400, 400, 400)), 300, [6, 1, 1], seed=0, experiment="exp1", calibration_fraction=0.5)
    faint = pool((400, 400, 400)).iloc[::2]  # overlaps the parent's objIDs heavily
    exp3 = transfer(parent, faint, 30, seed=0, experiment="exp3")
    fit = set(parent.loc[parent["split"] != "test", "objID"])
    assert not fit & set(exp3.loc[exp3["split"] == "test", "objID"])
    assert (exp3.loc[exp3["split"] == "test", "class"].value_counts() == 30).all()
    # the parent's train/val as they were; its calibration objects kept as the shift diagnostic
    kept = parent[parent["split"] != "test"].replace({"split": {"calib": "calib_source"}})
    pd.testing.assert_frame_equal(exp3[exp3["split"] != "test"].drop(columns=PARENT_FITTED).reset_index(drop=True),
                                  kept.reset_index(drop=True))
    assert not exp3[PARENT_FITTED].any() and parent_overlap(parent, exp3) == 0
    check_split(exp3, "exp3")


def test_keep_parent_overlap_replicates_the_leak_flagged_and_counted(tmp_path):
    parent = make_split(pool((400, 400, 400)), 300, [6, 1, 1], seed=0, experiment="exp1", calibration_fraction=0.5)
    faint = pool((400, 400, 400)).iloc[::2]  # 3 in 4 of these are parent train/val/calibration objects
    exp3 = transfer(parent, faint, 30, seed=0, experiment="exp3", calibration_per_class=20, keep_parent_overlap=True)
    fit = set(parent.loc[parent["split"] != "test", "objID"])
    own = exp3["split"].isin(["test", "calib"])
    assert (exp3.loc[own, PARENT_FITTED] == exp3.loc[own, "objID"].isin(fit)).all()
    assert not exp3.loc[~own, PARENT_FITTED].any()
    n = int(exp3[PARENT_FITTED].sum())
    assert n == parent_overlap(parent, exp3) > 100  # 150 own objects, ~3/4 of them the parent's
    # each object once: a kept one appears in the experiment's test/calibration, not in its copy of the parent
    copied = ("train", "val", "calib_source")
    check_split(exp3, "exp3", copied)
    with pytest.raises(SampleError, match="not balanced"):  # the copy lost the objects it gave up
        check_split(exp3, "exp3")
    assert len(exp3) == (parent["split"] != "test").sum() - n + 150
    # the same test objects as a draw from the pool that ignores the parent
    assert (exp3.loc[exp3["split"] == "test", "class"].value_counts() == 30).all()

    # the split file: refused without the switch, flagged and counted with it
    parent_path, sample_path = tmp_path / "exp1.parquet", tmp_path / "sample_exp3.parquet"
    meta = {"source": "synthetic", "split_seed": "0"}
    write_parquet_atomic(parent, parent_path, meta)
    write_parquet_atomic(make_transfer_sample(parent, faint, 30, 0, "exp3", 20, keep_parent_overlap=True),
                         sample_path, meta)
    cfg = {"train_from": "exp1", "test_dataset": "faint_compact", "test_per_class": 30, "calibration_per_class": 20}
    with pytest.raises(SampleError, match=f"exp3: {n} test or calibration objects are in exp1's train/val splits"):
        write_split("exp3", cfg | {"keep_parent_overlap": False}, 0, tmp_path / "no.parquet",
                    sample_path=sample_path, parent_path=parent_path)
    assert not (tmp_path / "no.parquet").exists()
    write_split("exp3", cfg | {"keep_parent_overlap": True}, 0, tmp_path / "exp3.parquet",
                sample_path=sample_path, parent_path=parent_path)
    assert read_parquet_metadata(tmp_path / "exp3.parquet")["parent_overlap"] == str(n)
    assert sorted(parent_fitted_ids(tmp_path / "exp3.parquet")) == sorted(exp3.loc[exp3[PARENT_FITTED], "objID"])
    assert len(parent_fitted_ids(parent_path)) == 0  # an experiment with its own dataset flags nothing


def test_transfer_split_calibrates_on_its_own_dataset_never_on_a_test_object():
    parent = make_split(pool((400, 400, 400)), 300, [6, 1, 1], seed=0, experiment="exp1", calibration_fraction=0.5)
    faint = pool((400, 400, 400)).iloc[::2]
    without = transfer(parent, faint, 30, seed=0, experiment="exp3")
    exp3 = transfer(parent, faint, 30, seed=0, experiment="exp3", calibration_per_class=20)
    cal = exp3[exp3["split"] == "calib"]
    assert (cal["class"].value_counts() == 20).all() and len(cal) == 60
    assert cal["objID"].isin(faint["objID"]).all()  # drawn from the test dataset's pool...
    assert not cal["objID"].isin(exp3.loc[exp3["split"] != "calib", "objID"]).any()  # ...none a test or parent object
    assert (exp3["split"] == "calib_source").sum() == (parent["split"] == "calib").sum() > 0
    # the test objects do not depend on whether a calibration set is drawn
    test = lambda s: sorted(s.loc[s["split"] == "test", "objID"])  # noqa: E731
    assert test(exp3) == test(without)
    check_split(exp3, "exp3")
    with pytest.raises(SampleError, match="calibration pool"):
        transfer(parent, faint, 30, seed=0, experiment="exp3", calibration_per_class=150)


def test_check_split_catches_leakage_and_imbalance():
    split = make_split(pool(), 80, [6, 1, 1], seed=0, experiment="exp1")
    leaked = pd.concat([split, split[split["split"] == "train"].head(1).assign(split="test")])
    with pytest.raises(SampleError, match="more than once"):
        check_split(leaked, "exp1")
    with pytest.raises(SampleError, match="not balanced"):
        check_split(split.iloc[3:], "exp1")


def test_tasks():
    split = make_split(pool(), 50, [6, 1, 1], seed=0, experiment="exp1")
    sg = select_task(split, "SG")
    assert set(sg["class"]) == {"STAR", "GALAXY"} and len(sg) == 100
    assert sorted(set(labels(sg, "SG"))) == [0, 1]
    assert sorted(set(labels(select_task(split, "SGQ"), "SGQ"))) == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown task"):
        select_task(split, "SQ")


def test_calibration_is_carved_from_the_validation_split_only():
    df = pd.DataFrame({"objID": np.arange(80), "class": np.repeat(["STAR", "GALAXY"], 40),
                       "split": np.tile(["train"] * 20 + ["val"] * 10 + ["test"] * 10, 2)})
    out = carve_calibration(df, 0.5, 2023, "exp1")
    assert (out["split"] == "calib").sum() == 10
    assert (df.loc[out["split"] == "calib", "split"] == "val").all()
    assert out.groupby("class")["split"].apply(lambda s: (s == "calib").sum()).tolist() == [5, 5]
    assert out["split"].eq(carve_calibration(df, 0.5, 2023, "exp1")["split"]).all()  # seeded
