"""Glue used by the Snakefile itself (not by the science code)."""

from __future__ import annotations

import os


def export_package_path(src: str) -> None:
    """Put ``src`` first on PYTHONPATH so that rule scripts, which Snakemake runs in fresh Python
    processes (inside conda envs too), import this checkout's sdssclr without installing it.
    Every job, local or on a cluster node, parses the Snakefile and so calls this again."""
    parts = [src, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src)]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
