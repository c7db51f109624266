"""The unlabelled sample and the pretraining sets: same rows in SQL and locally, no leakage."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from conftest import all_stamps, cuts_config
from sdssclr.catalog import FIELD_KEYS, PHOTO_COLUMNS
from sdssclr.samples.cuts import dataset_cuts
from sdssclr.samples.pretraining_set import LeakageError, build, check_not_pretrained_on
from sdssclr.samples.unlabelled import per_field_sample, photometric_sql, select_unlabelled
from sdssclr.survey.synthetic import generate_catalog


@pytest.fixture(scope="module")
def photometric():
    cat, _, fields = generate_catalog(900, 30, (256, 256), seed=8)
    return cat, fields


def test_the_unlabelled_sql_and_the_local_filter_select_the_same_rows(photometric):
    cat, _ = photometric
    spectroscopic = cat["objID"].iloc[::9]  # some objects have a spectrum: never unlabelled
    con = sqlite3.connect(":memory:")
    pd.DataFrame({c.name: cat[c.alias] for c in PHOTO_COLUMNS}).to_sql("PhotoObj", con, index=False)
    pd.DataFrame({"bestObjID": spectroscopic}).to_sql("SpecObj", con, index=False)
    cuts = dataset_cuts("compact", cuts_config(), photometric_only=True)
    fields = cat[list(FIELD_KEYS)].drop_duplicates()
    remote = []
    for (rerun, run, camcol), g in fields.groupby(["rerun", "run", "camcol"]):
        span = (int(g["field"].min()), int(g["field"].max()))
        remote.append(pd.read_sql(photometric_sql(cuts, rerun, run, camcol, span, per_field=5, seed=3), con))
    remote = pd.concat(remote)
    local, counts = select_unlabelled(cat, spectroscopic, fields, "compact", cuts_config(), per_field=5, seed=3)
    assert set(remote["objID"]) == set(local["objID"]) and len(local) > 50
    assert counts["removed: have a spectrum (labelled catalogue)"] == len(spectroscopic)
    assert not set(local["objID"]) & set(spectroscopic)  # no unlabelled object has a spectrum
    assert local.groupby(list(FIELD_KEYS)).size().max() <= 5
    faint, _ = select_unlabelled(cat, spectroscopic, fields, "faint_compact", cuts_config(), per_field=5, seed=3)
    assert set(faint["objID"]) < set(local["objID"])


def test_the_per_field_choice_is_seeded_and_random():
    df = pd.DataFrame({"objID": np.arange(1000, 1100), "rerun": 301, "run": 1, "camcol": 1, "field": 11})
    a, b = per_field_sample(df, 10, seed=0), per_field_sample(df, 10, seed=1)
    assert len(a) == 10 and a["objID"].tolist() == per_field_sample(df, 10, seed=0)["objID"].tolist()
    assert set(a["objID"]) != set(b["objID"])
    assert a["objID"].tolist() != list(range(1000, 1010))  # not simply the first objIDs


def split(ids, split_name):
    return pd.DataFrame({"objID": ids, "split": split_name})


def test_a_pretraining_set_never_holds_a_test_object_of_an_experiment_using_the_encoder(tmp_path):
    experiments = {"exp1": {"dataset": "compact"}, "exp2": {"dataset": "compact"},  # exp2 shares exp1's encoder
                   "exp3": {"train_from": "exp1", "test_dataset": "faint_compact"}}
    splits = {"exp1": pd.concat([split(range(0, 60), "train"), split(range(60, 70), "val"), split(range(70, 80), "test"),
                                 split([95], "test")]),
              "exp2": pd.concat([split(range(50, 90), "train"), split(range(0, 5), "test")])}
    unlabelled = {"compact": pd.DataFrame({"objID": range(200, 230)}),
                  "faint_compact": pd.DataFrame({"objID": range(220, 240)})}
    usable = range(0, 300)
    objects = build("compact", experiments, splits, unlabelled, usable, "all")
    tests = set(range(70, 80)) | set(range(0, 5))
    assert not set(objects["objID"]) & tests
    assert set(objects["origin"]) == {"labelled_train", "unlabelled_compact", "unlabelled_faint_compact"}
    # exp1's and exp2's training objects (0-89) less exp1's test (70-79) and exp2's test (0-4)
    assert len(objects[objects["origin"] == "labelled_train"]) == 90 - 10 - 5
    labelled_only = build("compact", experiments, splits, unlabelled, usable, "labelled")
    assert set(labelled_only["origin"]) == {"labelled_train"}
    # experiment 3 reuses the encoder: its evaluation checks its test objects against the set
    objects.to_parquet(tmp_path / "objects.parquet")
    check_not_pretrained_on(tmp_path / "objects.parquet", range(100, 110), "exp3's test objects")
    with pytest.raises(LeakageError, match="pretrained on 1 of exp3's test objects"):
        check_not_pretrained_on(tmp_path / "objects.parquet", [105, 205], "exp3's test objects")
    unlabelled["compact"] = pd.DataFrame({"objID": [95]})  # a labelled (test) object posing as unlabelled
    with pytest.raises(LeakageError, match="labelled objects of an experiment"):
        build("compact", experiments, splits, unlabelled, usable, "all")


@pytest.mark.slow
def test_the_workflow_pretrains_on_unlabelled_objects(tiny_run):
    from sdssclr.io import read_parquet_metadata

    exp = {n: pd.read_parquet(tiny_run / "splits" / "split2023" / f"{n}.parquet") for n in ("exp1", "exp2", "exp3")}
    index = all_stamps(tiny_run)
    assert (~index["labelled"]).sum() > 0 and index.loc[~index["labelled"], "class"].isna().all()
    for dataset, users in (("compact", ("exp1", "exp3")), ("faint_compact", ("exp2",))):
        objects = pd.read_parquet(tiny_run / "pretrain" / dataset / "split2023" / "all" / "objects.parquet")
        assert read_parquet_metadata(tiny_run / "pretrain" / dataset / "split2023" / "all" / "objects.parquet")["source"] == "synthetic"
        train = exp["exp1" if dataset == "compact" else "exp2"]
        assert len(objects) > (train["split"] == "train").sum()  # more than the labelled training split
        for name in users:
            assert not set(objects["objID"]) & set(exp[name].loc[exp[name]["split"] == "test", "objID"])
        unl = objects.loc[objects["origin"] != "labelled_train", "objID"]
        assert len(unl) and not set(unl) & set(pd.concat(exp.values())["objID"])
        # the labelled-only encoder's set: the labelled training objects of the same set, nothing else
        only = pd.read_parquet(tiny_run / "pretrain" / dataset / "split2023" / "labelled" / "objects.parquet")
        assert (only["origin"] == "labelled_train").all()
        assert sorted(only["objID"]) == sorted(objects.loc[objects["origin"] == "labelled_train", "objID"])
    for dataset in ("compact", "faint_compact"):
        objects = pd.read_parquet(tiny_run / "pretrain" / dataset / "split2023" / "all" / "objects.parquet")
        usable = objects["objID"].isin(index.loc[index["usable"], "objID"])
        n_labelled = int((usable & (objects["origin"] == "labelled_train")).sum())
        log = (tiny_run / "logs" / f"pretrain_{dataset}_split2023_all_seed0.log").read_text()
        # the encoder really trains on its pretraining set, not on the labelled training split alone
        assert f"pretraining set: {int(usable.sum())} objects, {n_labelled} of them labelled" in log
        assert f"SimCLR: {int(usable.sum())} training stamps" in log
