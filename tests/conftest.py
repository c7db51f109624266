import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
sys.path.insert(0, str(REPO / "src"))


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def schema():
    return SCHEMA


@pytest.fixture()
def base_config():
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())


def cuts_config():
    return dict(compact_max_ratio=0.5, faint_rule="mean_mag", faint_min_mag=20.0, faint_r_max=23.0,
                err_ratio_max=0.1, psfmagerr_r_max=0.2)
