"""The conformal coverage report: coverage per class on a constructed case, calibration rows, shift."""

import numpy as np
import pandas as pd
import pytest

from sdssclr.learn.conformal import prediction_sets, thresholds
from sdssclr.results.coverage import coverage_table, run_sets, tolerance


def constructed(n, rng):
    """Three classes whose scores differ: class 2 is much harder (its true-class probability is low),
    so a marginal threshold under-covers it and a Mondrian one does not."""
    labels = rng.integers(0, 3, n)
    conf = np.where(labels == 2, rng.beta(2, 3, n), rng.beta(8, 1, n))
    probas = np.empty((n, 3))
    for i, (y, c) in enumerate(zip(labels, conf)):
        rest = rng.dirichlet([1, 1]) * (1 - c)
        probas[i] = np.insert(rest, y, c)
    return probas, labels


def test_mondrian_sets_cover_every_class_and_marginal_sets_do_not():
    rng = np.random.default_rng(0)
    cal_p, cal_y = constructed(6000, rng)
    test_p, test_y = constructed(20000, rng)
    alpha = 0.1
    sets = prediction_sets(test_p, thresholds(cal_p, cal_y, alpha, mondrian=True))
    tab = coverage_table(sets, test_y, ["A", "B", "C"], alpha).set_index("class")
    for c in "ABC":
        n_cal = int((cal_y == "ABC".index(c)).sum())
        below, above = tolerance(tab.loc[c, "n"], alpha, n_cal)
        assert -below < tab.loc[c, "coverage"] - 0.9 < above
    marginal = prediction_sets(test_p, thresholds(cal_p, cal_y, alpha, mondrian=False))
    tab_m = coverage_table(marginal, test_y, ["A", "B", "C"], alpha).set_index("class")
    below, above = tolerance(len(test_y), alpha, len(cal_y))
    assert -below < tab_m.loc["all", "coverage"] - 0.9 < above
    assert tab_m.loc["C", "coverage"] < 0.9 - tolerance(tab_m.loc["C", "n"], alpha, len(cal_y))[0]


def test_the_tolerance_band_puts_the_finite_sample_excess_above_the_target_only():
    # 1000 test objects, 99 calibration objects, alpha 0.1: spread 3 sqrt(0.09/1000 + 0.09/101) = 0.0940
    below, above = tolerance(1000, 0.1, 99)
    assert below == pytest.approx(3 * np.sqrt(0.09 / 1000 + 0.09 / 101), rel=1e-12)
    assert above == pytest.approx(below + 1 / 100, rel=1e-12)
    # three seeds' sets of the same 1000 objects are 1000 objects, not 3000
    sets = np.ones((3000, 2), bool)
    tab = coverage_table(sets, np.tile([0, 1], 1500), ["A", "B"], 0.1, objid=np.tile(np.arange(1000), 3))
    assert tab.set_index("class").loc["all", "n"] == 1000


def test_run_sets_calibrate_on_calib_rows_and_score_test_rows():
    rng = np.random.default_rng(1)
    p_cal, y_cal = constructed(600, rng)
    p_test, y_test = constructed(400, rng)
    names = ["STAR", "GALAXY", "QSO"]
    df = pd.DataFrame({"objID": np.arange(1000), "class": np.asarray(names)[np.r_[y_cal, y_test]],
                       "split": ["calib"] * 600 + ["test"] * 400, "r_mag": rng.uniform(18, 21, 1000)})
    for k, c in enumerate(names):
        df[f"m.p_{c}"] = np.r_[p_cal[:, k], p_test[:, k]]
    labels, sets, mag, n_cal, _ = run_sets(df, "m", names, 0.1)
    assert n_cal.tolist() == np.bincount(y_cal, minlength=3).tolist()
    assert len(labels) == len(sets) == len(mag) == 400
    np.testing.assert_array_equal(sets, prediction_sets(p_test, thresholds(p_cal, y_cal, 0.1)))


def write_run(path, probas, labels, split, names, source="synthetic", experiment="exp1", task="SGQ", seed=0):
    from sdssclr.io import write_parquet_atomic

    df = pd.DataFrame({"objID": np.arange(len(labels)), "class": np.asarray(names)[labels], "split": split,
                       "r_mag": np.linspace(18, 22, len(labels))})
    for k, c in enumerate(names):
        df[f"margnet.p_{c}"] = probas[:, k]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(df, path, {"source": source, "experiment": experiment, "task": task, "seed": seed})


def test_the_report_flags_a_class_whose_coverage_breaks_under_shift(tmp_path):
    from sdssclr.results.coverage import write_conformal_report

    rng = np.random.default_rng(3)
    names = ["STAR", "GALAXY", "QSO"]
    p_cal, y_cal = constructed(3000, rng)
    p_ok, y_ok = constructed(3000, rng)
    # a shifted test set: the STAR objects are now as hard as class C was
    p_sh, y_sh = constructed(3000, rng)
    star = y_sh == 0
    p_sh[star] = np.roll(p_sh[star], 1, axis=1) * 0.3 + 0.7 / 3
    for exp, (p, y) in {"exp1": (p_ok, y_ok), "exp3": (p_sh, y_sh)}.items():
        write_run(tmp_path / exp / "predictions.parquet", np.r_[p_cal, p], np.r_[y_cal, y],
                  ["calib"] * 3000 + ["test"] * 3000, names, experiment=exp)
    md = tmp_path / "conformal.md"
    table = write_conformal_report([tmp_path / "exp1" / "predictions.parquet", tmp_path / "exp3" / "predictions.parquet"],
                                   md, tmp_path / "coverage.png", models=["margnet"], alpha=0.1, mondrian=True, n_bins=4)
    text = md.read_text()
    assert "SYNTHETIC survey" in text
    exp1 = [ln for ln in text.splitlines() if ln.startswith("| exp1 | SGQ |")][0]
    exp3 = [ln for ln in text.splitlines() if ln.startswith("| exp3 | SGQ |")][0]
    assert "| own dataset |" in exp1 and "| own dataset |" in exp3
    assert "!" not in exp1 and "STAR" in exp3 and exp3.split("STAR ")[1].split(",")[0].endswith("!")
    star3 = table[(table["experiment"] == "exp3") & (table["class"] == "STAR")].iloc[0]
    assert star3["below"] and star3["coverage"] < 0.8
    assert (tmp_path / "coverage.png").read_bytes()[:4] == b"\x89PNG"


def test_each_class_is_judged_with_its_own_calibration_count_when_a_class_has_no_test_objects(tmp_path):
    from sdssclr.results.coverage import write_conformal_report

    rng = np.random.default_rng(4)
    names = ["STAR", "GALAXY", "QSO"]
    p_cal, y_cal = constructed(900, rng)
    keep = np.flatnonzero(y_cal != 2)[:300]  # few QSO calibration objects, many of the others
    keep = np.r_[keep, np.flatnonzero(y_cal == 2)[:40]]
    p_cal, y_cal = p_cal[keep], y_cal[keep]
    p_test, y_test = constructed(600, rng)
    p_test, y_test = p_test[y_test != 0], y_test[y_test != 0]  # no STAR among the test objects
    write_run(tmp_path / "r" / "predictions.parquet", np.r_[p_cal, p_test], np.r_[y_cal, y_test],
              ["calib"] * len(y_cal) + ["test"] * len(y_test), names)
    table = write_conformal_report([tmp_path / "r" / "predictions.parquet"], tmp_path / "c.md", tmp_path / "c.png",
                                   models=["margnet"], alpha=0.1, mondrian=True, n_bins=3).set_index("class")
    n_cal = np.bincount(y_cal, minlength=3)
    assert "STAR" not in table.index
    for k, c in ((1, "GALAXY"), (2, "QSO")):
        assert table.loc[c, "tol_below"] == pytest.approx(tolerance(int(table.loc[c, "n"]), 0.1, int(n_cal[k]))[0])
    assert table.loc["all", "tol_above"] == pytest.approx(tolerance(len(y_test), 0.1, int(n_cal.min()))[1])


def test_experiment_3_is_calibrated_on_its_own_dataset_and_the_parents_calibration_is_a_shift_diagnostic(tmp_path):
    from sdssclr.results.coverage import write_conformal_report

    rng = np.random.default_rng(5)
    names = ["STAR", "GALAXY", "QSO"]
    p_src, y_src = constructed(3000, rng)  # the parent's (compact) calibration objects: easy
    # the faint test dataset: every class as hard as class C, its own calibration objects likewise
    p_cal, y_cal = constructed(3000, rng)
    p_test, y_test = constructed(3000, rng)
    for p in (p_cal, p_test):
        p[:] = p * 0.4 + 0.6 / 3
    write_run(tmp_path / "exp3" / "predictions.parquet", np.r_[p_src, p_cal, p_test], np.r_[y_src, y_cal, y_test],
              ["calib_source"] * 3000 + ["calib"] * 3000 + ["test"] * 3000, names, experiment="exp3")
    table = write_conformal_report([tmp_path / "exp3" / "predictions.parquet"], tmp_path / "c.md", tmp_path / "c.png",
                                   models=["margnet"], alpha=0.1, mondrian=True, n_bins=3)
    own = table[(table["calibration"] == "calib") & (table["class"] == "all")].iloc[0]
    shift = table[(table["calibration"] == "calib_source") & (table["class"] == "all")].iloc[0]
    assert not own["below"] and abs(own["coverage"] - 0.9) < 0.03  # exchangeable: the guarantee holds
    assert shift["below"]  # calibrated on the easy parent objects, the faint sets are too small
    text = (tmp_path / "c.md").read_text()
    assert "| exp3 | SGQ | MargNet (ours) | own dataset |" in text and "shift diagnostic" in text
