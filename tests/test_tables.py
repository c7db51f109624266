import json

import pytest

from sdssclr.tables import MissingRunError, write_label_efficiency, write_results_table


def metric(path, exp, task, model, seed, acc, prec=None, rec=None, source="synthetic", frac=1.0, n_train=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "experiment": exp, "task": task, "model": model, "seed": seed, "source": source, "accuracy": acc,
        "precision": prec if prec is not None else acc, "recall": rec if rec is not None else acc,
        "n_test": 10, "n_train": n_train, "label_fraction": frac, "confusion_matrix": [[5, 0], [0, 5]],
        "class_names": ["STAR", "GALAXY"]}))
    return path


def test_mean_and_std_over_seeds(tmp_path):
    paths = [metric(tmp_path / f"m{s}.json", "exp1", "SG", "margnet", s, acc, prec=0.5)
             for s, acc in enumerate([0.90, 0.92, 0.94])]
    out = tmp_path / "t.md"
    write_results_table(paths, out, experiments=["exp1"], tasks=["SG"], models=["margnet"], seeds=[0, 1, 2], title="T")
    text = out.read_text()
    assert "| exp1 | SG | MargNet (ours) | 92.0 ± 2.0 | 50.0 ± 0.0 | 92.0 ± 2.0 | 3 |" in text
    assert "SYNTHETIC SURVEY, NOT SDSS DATA" in text and "Seeds: 3 (0, 1, 2)" in text
    assert "| exp1 | SG | MargNet | 98.1 | 98.1 | 98.1 | Chaini et al. 2023" in text
    assert "| exp1 | SG | MargFormer | 98.1 | 98.1 | 98.1 | AstroFormer README" in text


def test_missing_run_is_an_error_naming_it(tmp_path):
    paths = [metric(tmp_path / "m0.json", "exp1", "SG", "margnet", 0, 0.9)]
    with pytest.raises(MissingRunError, match="exp1/SG/margnet/seed1"):
        write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet"],
                            seeds=[0, 1], title="T")
    with pytest.raises(MissingRunError, match="nothere.json"):
        write_results_table(paths + [tmp_path / "nothere.json"], tmp_path / "t.md", experiments=["exp1"],
                            tasks=["SG"], models=["margnet"], seeds=[0], title="T")
    assert not (tmp_path / "t.md").exists()


def test_sources_are_never_mixed(tmp_path):
    paths = [metric(tmp_path / "a.json", "exp1", "SG", "margnet", 0, 0.9),
             metric(tmp_path / "b.json", "exp1", "SG", "margnet", 1, 0.9, source="SDSS DR16")]
    with pytest.raises(ValueError, match="different data sources"):
        write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet"],
                            seeds=[0, 1], title="T")


def test_real_data_table_has_no_synthetic_banner(tmp_path):
    paths = [metric(tmp_path / "a.json", "exp1", "SG", "margnet", 0, 0.9, source="SDSS DR16")]
    write_results_table(paths, tmp_path / "t.md", experiments=["exp1"], tasks=["SG"], models=["margnet"], seeds=[0],
                        title="T")
    text = (tmp_path / "t.md").read_text()
    assert "SYNTHETIC" not in text and "Data source: **SDSS DR16**" in text


def test_label_efficiency_table(tmp_path):
    paths = [metric(tmp_path / f"{m}{f}{s}.json", "exp1", "SGQ", m, s, a, frac=f, n_train=int(300 * f))
             for m in ("margnet", "simclr-linear") for f in (0.1, 1.0) for s, a in ((0, 0.6 + f / 4), (1, 0.62 + f / 4))]
    write_label_efficiency(paths, tmp_path / "le.md", tmp_path / "le.png", models=["margnet", "simclr-linear"],
                           fractions=[0.1, 1.0], seeds=[0, 1], task="SGQ")
    text = (tmp_path / "le.md").read_text()
    assert "| MargNet (ours) | 0.1 | 30 | 63.5 ± 1.4 | 2 |" in text
    assert (tmp_path / "le.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(MissingRunError, match="frac0.5"):
        write_label_efficiency(paths, tmp_path / "x.md", tmp_path / "x.png", models=["margnet"], fractions=[0.5],
                               seeds=[0], task="SGQ")
