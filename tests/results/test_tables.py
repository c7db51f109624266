"""Tables from run files: mean ± std over runs, differences to MargNet with their intervals, the
primary endpoint's verdicts, named errors."""

import json

import numpy as np
import pytest

from sdssclr.learn.metrics import classification_metrics
from sdssclr.learn.runfiles import write_predictions
from sdssclr.registry import MODELS
from sdssclr.results.figures import plot_label_efficiency
from sdssclr.results.tables import (MissingRunError, label_efficiency_summary, write_label_efficiency_table,
                                    write_results_table)
from sdssclr.stamps.objects import Objects

COMPARISON = {"baseline": "margnet", "primary": {"model": "simclr-margformer", "control": "margformer"},
              "level": 0.95, "equivalence_margin": 0.3}
CLASSES = ("STAR", "GALAXY")


def run(root, exp, task, model, seed, correct, source="synthetic", frac=1.0, n_train=100, n_val=20, split=2023,
        **extra):
    """A run directory with metrics.json and predictions.parquet for a model that gets the test
    objects ``correct`` right (objects alternate STAR/GALAXY); components copy the model."""
    d = root / exp / task / model / f"frac{frac}" / f"split{split}" / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    correct = np.asarray(correct, bool)
    n = len(correct)
    truth = np.arange(n) % 2
    pred = np.where(correct, truth, 1 - truth)
    p = np.eye(2)[pred] * 0.8 + 0.1
    objs = Objects(objid=np.arange(1000, 1000 + n), stamps=np.zeros((n, 5, 2, 2)), features=np.zeros((n, 24)),
                   psf_fwhm_px=np.ones((n, 5)), classes=np.array(CLASSES)[truth], split=np.array(["test"] * n),
                   labels=truth)
    names = [model, *MODELS[model].components]
    write_predictions(d / "predictions.parquet", objs, {k: p for k in names}, CLASSES, {"source": source})
    m = classification_metrics(truth, pred, CLASSES)
    (d / "metrics.json").write_text(json.dumps(m | {
        "experiment": exp, "task": task, "model": model, "seed": seed, "split_seed": split, "source": source, "n_train": n_train,
        "n_val": n_val, "label_fraction": frac, "components": {c: m for c in MODELS[model].components}} | extra))
    return d / "metrics.json"


def correct_first(n_right, n=50):
    return np.arange(n) < n_right


def test_mean_std_and_the_paired_difference_to_margnet(tmp_path):
    paths = [run(tmp_path, "exp1", "SG", "margnet", s, correct_first(k)) for s, k in enumerate([45, 46, 47])]
    # the tree is right on every object MargNet gets right, and on 2 more: +4.0 points, every seed
    paths += [run(tmp_path, "exp1", "SG", "gbdt", s, correct_first(k + 2)) for s, k in enumerate([45, 46, 47])]
    out = tmp_path / "t.md"
    write_results_table(paths, out, experiments=["exp1"], tasks=["SG"], models=["gbdt", "margnet"], seeds=[0, 1, 2],
                        split_seeds=[2023], title="T", comparison=COMPARISON)
    text = out.read_text()
    assert "| exp1 | SG | MargNet (ours) | 92.0 ± 2.0 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| exp1 | SG | Gradient-boosted trees"))
    assert "| 96.0 ± 2.0 |" in row
    diff = row.split("|")[7].strip()
    assert diff.startswith("+4.0 [") and diff.endswith("*")  # the interval excludes zero
    lo, hi = (float(v) for v in diff[6:diff.index("]")].split(","))
    assert 0 < lo < 4.0 < hi < 10.0  # only 4 of 50 objects differ: a wide but positive interval
    margnet_row = next(line for line in text.splitlines() if line.startswith("| exp1 | SG | MargNet (ours)"))
    assert margnet_row.split("|")[7].strip() == ""  # the baseline's own cell is blank
    assert "| exp1 | SG | MargNet ANN (24 features) |" in text  # components get rows of their own
    assert "SYNTHETIC SURVEY, NOT SDSS DATA" in text and "Runs: 3 seed(s) (0, 1, 2) x 1 split seed(s)" in text
    assert "conditional on the split" in text and "Welch-Satterthwaite" in text
    assert "| exp1 | SG | MargNet | 98.1 | 98.1 | 98.1 | Chaini et al. 2023" in text
    assert "| exp1 | SG | MargFormer | 98.1 | 98.1 | 98.1 | AstroFormer README" in text


def test_a_kept_experiment_3_leak_is_announced_with_its_counts(tmp_path):
    def table(**extra):
        paths = [run(tmp_path / str(bool(extra)), "exp3", "SG", "margnet", s, correct_first(45), **extra) for s in (0, 1)]
        write_results_table(paths, tmp_path / "t.md", experiments=["exp3"], tasks=["SG"], models=["margnet"],
                            seeds=[0, 1], split_seeds=[2023], title="T", comparison=COMPARISON)
        return (tmp_path / "t.md").read_text()

    assert "none of which is in" in table() and "leak" not in table()
    text = table(n_test_parent_fitted=12)
    assert "Experiment 3 keeps the original experiment 3's leak" in text and "none of which is in" not in text
    assert "per run: exp3 SG: 12. Their accuracies are optimistic" in text


def test_one_seed_prints_na_and_an_equal_model_has_no_mark(tmp_path):
    paths = [run(tmp_path, "exp1", "SG", "margnet", 0, correct_first(40)),
             run(tmp_path, "exp1", "SG", "simclr", 0, correct_first(40))]
    write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet", "simclr"],
                        seeds=[0], split_seeds=[2023], title="T", comparison=COMPARISON)
    text = (tmp_path / "t.md").read_text()
    assert "| 80.0 ± n/a |" in text and "± 0.0" not in text
    assert "+0.0 [+0.0, +0.0] |" in text


def test_missing_run_is_an_error_naming_it(tmp_path):
    paths = [run(tmp_path, "exp1", "SG", "margnet", 0, correct_first(40))]
    with pytest.raises(MissingRunError, match="exp1/SG/margnet/split2023/seed1"):
        write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet"],
                            seeds=[0, 1], split_seeds=[2023], title="T", comparison=COMPARISON)
    with pytest.raises(MissingRunError, match="nothere.json"):
        write_results_table(paths + [tmp_path / "nothere.json"], tmp_path / "t.md", experiments=["exp1"],
                            tasks=["SG"], models=["margnet"], seeds=[0], split_seeds=[2023], title="T",
                            comparison=COMPARISON)
    assert not (tmp_path / "t.md").exists()


def test_models_compared_on_different_objects_are_refused(tmp_path):
    paths = [run(tmp_path, "exp1", "SG", "margnet", 0, correct_first(40)),
             run(tmp_path, "exp1", "SG", "gbdt", 0, correct_first(40, n=48))]
    with pytest.raises(ValueError, match="same test objects"):
        write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["gbdt", "margnet"],
                            seeds=[0], split_seeds=[2023], title="T", comparison=COMPARISON)


def test_sources_are_never_mixed(tmp_path):
    paths = [run(tmp_path, "exp1", "SG", "margnet", 0, correct_first(40)),
             run(tmp_path, "exp1", "SG", "margnet", 1, correct_first(40), source="SDSS DR16")]
    with pytest.raises(ValueError, match="different data sources"):
        write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet"],
                            seeds=[0, 1], split_seeds=[2023], title="T", comparison=COMPARISON)


def test_real_data_table_has_no_synthetic_banner(tmp_path):
    paths = [run(tmp_path, "exp1", "SG", "margnet", 0, correct_first(40), source="SDSS DR16")]
    write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet"], seeds=[0],
                        split_seeds=[2023], title="T", comparison=COMPARISON)
    text = (tmp_path / "t.md").read_text()
    assert "SYNTHETIC" not in text and "Data source: **SDSS DR16**" in text


def test_label_efficiency_counts_training_and_validation_labels(tmp_path):
    paths = []
    for f, n_right, n_train, n_val in ((0.1, 30, 30, 6), (1.0, 40, 300, 60)):
        for s in (0, 1):
            paths.append(run(tmp_path, "exp1", "SGQ", "margnet", s, correct_first(n_right + s), frac=f,
                             n_train=n_train, n_val=n_val))
            paths.append(run(tmp_path, "exp1", "SGQ", "simclr", s, correct_first(n_right + s + 5), frac=f,
                             n_train=n_train, n_val=n_val))
    summ, source = label_efficiency_summary(paths, models=["margnet", "simclr"], fractions=[0.1, 1.0], seeds=[0, 1],
                                            split_seeds=[2023], comparison=COMPARISON)
    common = dict(experiment="exp1", models=["margnet", "simclr"], task="SGQ", comparison=COMPARISON)
    write_label_efficiency_table(summ, source, tmp_path / "le.md", fractions=[0.1, 1.0], seeds=[0, 1],
                                 split_seeds=[2023], **common)
    plot_label_efficiency(summ, source, tmp_path / "le.png", **common)
    text = (tmp_path / "le.md").read_text()
    assert text.startswith("# Label efficiency on exp1, task SGQ") and source == "synthetic"
    assert "| MargNet (ours) | 0.1 | 36 | 61.0 ± 1.4 |  | 2 |" in text  # 30 + 6 labels
    assert "| SimCLR fine-tuned + features | 1 | 360 | 91.0 ± 1.4 | +10.0 [" in text
    assert set(summ["n_labels"]) == {36, 360}
    assert (tmp_path / "le.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(MissingRunError, match="frac0.5"):
        label_efficiency_summary(paths, models=["margnet"], fractions=[0.5], seeds=[0], split_seeds=[2023],
                                 comparison=COMPARISON)


def test_the_primary_endpoint_opens_table_1_with_its_verdict(tmp_path):
    """SimCLR + MargFormer against its control on two split seeds x two seeds of 400 objects: on
    exp1 it is right on 40 more objects in every run (+10 points: benefit); on exp2 both get the
    same objects right (0 points, a zero-width interval inside +-0.3: no harm)."""
    paths, n = [], 400
    for split in (1, 2):
        for seed in (0, 1):
            k = 300 + 4 * seed + split
            for exp, extra in (("exp1", 40), ("exp2", 0)):
                paths.append(run(tmp_path, exp, "SG", "margnet", seed, correct_first(k, n), split=split))
                paths.append(run(tmp_path, exp, "SG", "margformer", seed, correct_first(k, n), split=split))
                paths.append(run(tmp_path, exp, "SG", "simclr-margformer", seed, correct_first(k + extra, n),
                                 split=split))
    out = tmp_path / "t.md"
    write_results_table(paths, out, experiments=["exp1", "exp2"], tasks=["SG"],
                        models=["margnet", "simclr-margformer", "margformer"], seeds=[0, 1], split_seeds=[1, 2],
                        title="T", comparison=COMPARISON)
    text = out.read_text()
    assert text.index("## Primary endpoint") < text.index("## This workflow")
    exp1 = next(line for line in text.splitlines() if line.startswith("| exp1 SG |"))
    exp2 = next(line for line in text.splitlines() if line.startswith("| exp2 SG |"))
    assert exp1.split("|")[4].strip().startswith("+10.0 [") and exp1.split("|")[5].strip() == "benefit"
    assert "| +0.0 [+0.0, +0.0] | no harm |" in exp2
    assert "Runs: 2 seed(s) (0, 1) x 2 split seed(s) (1, 2)" in text and "conditional on" not in text
    with pytest.raises(MissingRunError, match="exp1/SG/margformer/split3/seed0"):
        write_results_table(paths, out, experiments=["exp1"], tasks=["SG"],
                            models=["margnet", "simclr-margformer", "margformer"], seeds=[0, 1],
                            split_seeds=[1, 2, 3], title="T", comparison=COMPARISON)
