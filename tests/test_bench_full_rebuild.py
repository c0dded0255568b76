"""bench/full_rebuild.py --compare: the argument checks and the materialisation of both trees, by its
--dry-run (each tree copied and instrumented, then `snakemake -n`), the runner hook on one job, and the
side-by-side table on made-up runs. Nothing is timed here: benchmarks are never tests
(docs/performance.md)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import REPO, snakemake

pytestmark = pytest.mark.workflow

SCRIPT = REPO / "bench" / "full_rebuild.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout


def test_compare_dry_run_materialises_both_trees(tmp_path: Path) -> None:
    """Before = HEAD from `git archive`, after = this checkout's working tree: both copied,
    instrumented and dry-run by Snakemake."""
    keep = tmp_path / "runs"
    proc = _bench("--compare", "HEAD", "--dry-run", "--keep", str(keep))
    assert proc.returncode == 0, proc.stderr
    commit = _git("rev-parse", "--short", "HEAD").strip()
    lines = proc.stdout.splitlines()
    assert any(line.startswith(f"before (HEAD = {commit} (git archive))") for line in lines)
    assert any(line.startswith("after (this checkout") for line in lines)
    assert sum(line.endswith("jobs to run") for line in lines) == 2, proc.stdout
    # the before tree is HEAD's, byte for byte; the after copy is the working tree's
    snakefile = _git("show", "HEAD:Snakefile")
    assert (keep / "tree_before" / "Snakefile").read_text(encoding="utf-8") == snakefile
    for name in ("before", "after"):
        copy = keep / name
        assert (copy / "bench_overlay.yaml").exists()  # instrumented as for a timed run
        assert "_bench_run = run" in (copy / "workflow/scripts/dualpilot/workflow/runner.py").read_text()
        assert "rule bench_env_probe:" in (copy / "Snakefile").read_text(encoding="utf-8")
    after_config = (keep / "after" / "config" / "config.yaml").read_bytes()
    assert after_config == (REPO / "config" / "config.yaml").read_bytes()
    # the runner hook of the copy records a job's CPU (one cheap job, run for real)
    snakemake(
        keep / "after",
        "--cores",
        "1",
        "results/config_used.yaml",
        "--configfile",
        "bench_overlay.yaml",
    )
    records = list((keep / "after" / "benchmarks" / "_jobs").glob("save_config.*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["cpu_s"] > 0


def _fake_run(bench, label: str, cpu: list[float | None], wall: float):
    """A Run of two rules; the second rule without a hook record (cpu None: object dtype, as the outer
    join of rule_table leaves it)."""
    table = pd.DataFrame(
        {
            "rule": ["a", "b"],
            "jobs": [1, 2],
            "wall_s": [wall, 2.0],
            "cpu_s": pd.Series(cpu, dtype=object),
            "startup_total_s": [1.0, 2.0],
        }
    )
    timing = bench.Timed(wall=wall, cpu=2 * wall, main_cpu=1.0, returncode=0)
    return bench.Run(label, Path("."), timing, None, table, 3, 0, 0.0, None, "{}")


def test_compare_table_side_by_side_with_differences(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_full_rebuild", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    before = [_fake_run(bench, f"before#{i}", [4.0, None], 10.0 + i) for i in (1, 2)]
    after = [_fake_run(bench, f"after#{i}", [3.0, None], 6.0 + i) for i in (1, 2)]
    table = bench.compare_table(before, after).set_index("rule")
    assert table.loc["a", "wall_s_before"] == 11.5 and table.loc["a", "wall_s_after"] == 7.5
    assert table.loc["a", "wall_s_diff"] == -4.0 and table.loc["a", "cpu_s_diff"] == -1.0
    assert np.isnan(table.loc["b", "cpu_s_before"])
    text = bench.format_compare(bench.compare_table(before, after))
    total = text.splitlines()[-1].split()
    assert total[:3] == ["total", "(2", "rules)"] and total[5:8] == ["13.5", "9.5", "-4.0"]
    bench.print_compare(before, after, ("ref", "checkout"), argparse.Namespace(cores=2))
    out = capsys.readouterr().out
    order = [line.split()[0] for line in out.splitlines() if "build" in line and "#" in line]
    assert order == ["before#1", "after#1", "before#2", "after#2"]
    assert "build wall                 before    11.5 s   after     7.5 s   diff    -4.0 s" in out


def test_compare_arguments_are_checked() -> None:
    bad_ref = _bench("--compare", "no-such-ref-anywhere", "--dry-run")
    assert bad_ref.returncode != 0 and "git rev-parse" in bad_ref.stderr
    repeat = _bench("--repeat", "2", "--dry-run")
    assert repeat.returncode != 0 and "--repeat needs --compare" in repeat.stderr
    both = _bench("--compare", "HEAD", "--package", "/tmp", "--dry-run")
    assert both.returncode != 0 and "exclude each other" in both.stderr
    helped = _bench("--help")
    assert helped.returncode == 0
    assert all(opt in helped.stdout for opt in ("--compare", "--repeat", "--dry-run"))
