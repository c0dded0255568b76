"""One small but complete build of the study in a temporary copy of the workflow, shared by the tests of
the report (tests/test_report.py) and of the render rules (tests/test_workflow_render.py) through the
session fixture `small_study` of conftest.py, so the suite builds it once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workflow_helpers import copy_workflow, snakemake

# Small but complete: every stage runs, with few draws (about 2 minutes on 2 cores). English tables and
# captions: tests/test_report.py reads them.
SMALL_OVERLAY: dict[str, Any] = {
    "tables": {"language": "en"},
    "figures": {"dpi": 80},
    "placebo": {"draws": 20, "shards": 2},
    "heterogeneity": {"draws": 20, "shards": 1},
    "mechanisms": {"bootstrap": {"reps": 20}},
    "spatial": {"permutations": 99, "map_years": [2006, 2023]},
    "robustness": {"honestdid": {"n_draws": 100}, "grid": {"bootstrap": {"reps": 99}}},
}
OVERLAY_FILE = "overlay.yaml"
BUILD_OUTPUT = "build_output.txt"  # what `snakemake` printed during the build (stdout, then stderr)


def build_small_study(dest: Path) -> Path:
    """Copy the workflow to `dest`, build `rule all` on SMALL_OVERLAY (written to dest/overlay.yaml) and
    keep Snakemake's output in dest/build_output.txt; return `dest`."""
    work = copy_workflow(dest)
    (work / OVERLAY_FILE).write_text(yaml.safe_dump(SMALL_OVERLAY), encoding="utf-8")
    proc = snakemake(work, "--cores", "2", "--configfile", OVERLAY_FILE)
    (work / BUILD_OUTPUT).write_text(proc.stdout + proc.stderr, encoding="utf-8")
    return work
