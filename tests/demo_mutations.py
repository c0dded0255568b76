"""Malformed raw directories built as mutations of the demo extracts (tests of ingestion integrity).

`pristine_demo_raw` writes the demo extracts once per test session, exactly as rule make_demo_extracts does
with the default configuration; `mutable_copy` copies them into a test's folder so the test can damage one
file; `build_panel_outputs` runs the build_panel rule's own `main` in-process (no Snakemake start-up) with the
rule's inputs, outputs and params, so a test sees the same error, log and files a user would.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pandas as pd
import yaml

from dualpilot.core.errors import InputError
from dualpilot.workflow.runner import Named

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
YEARS = (CONFIG["years"]["start"], CONFIG["years"]["end"])

#: The inputs of rule build_panel other than the raw files (workflow/rules/panel.smk).
PANEL_RESOURCES = {
    "city_master": "resources/cities/city_master.csv",
    "name_crosswalk": "resources/cities/name_crosswalk.csv",
    "header_aliases": "resources/yearbook/header_aliases.csv",
    "plausibility": "resources/yearbook/plausibility.csv",
    "usd_cny": "resources/macro/usd_cny.csv",
    "list_sc": "resources/policy/smart_city_pilots.csv",
    "list_lc": "resources/policy/low_carbon_pilots.csv",
    "counts_sc": "resources/policy/smart_city_batches.csv",
    "labels": "resources/labels/terms.csv",
}
#: The inputs of rule make_demo_extracts.
DEMO_RESOURCES = {
    "city_master": "resources/cities/city_master.csv",
    "name_crosswalk": "resources/cities/name_crosswalk.csv",
    "header_aliases": "resources/yearbook/header_aliases.csv",
    "usd_cny": "resources/macro/usd_cny.csv",
    "low_carbon": "resources/policy/low_carbon_pilots.csv",
}
#: The outputs of rule build_panel, relative to the results folder.
PANEL_OUTPUTS = {
    "parquet": "panel/panel.parquet",
    "csv": "panel/panel.csv",
    "dta": "panel/panel.dta",
    "manifest": "panel/manifest.csv",
    "sample": "panel/sample.csv",
    "industries": "panel/industries_long.parquet",
    "quality": "panel/quality.csv",
}


def _script(name: str) -> ModuleType:
    """Import workflow/scripts/<name>.py as a module (its `run` guard keeps it from running)."""
    spec = importlib.util.spec_from_file_location(
        f"script_{name}", REPO / "workflow/scripts" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def write_demo_raw(
    dest: Path,
    years: tuple[int, int] = YEARS,
    demo: dict | None = None,
    outcome_industry: str = CONFIG["outcome_industry"],
) -> Path:
    """Write the demo extracts of the default configuration into `dest` (rule make_demo_extracts), with
    the truth beside it (dest.parent / truth.parquet, truth.json). `demo` replaces the `demo:` block,
    `outcome_industry` the config key (its column is printed in every edition)."""
    main = _script("make_demo_extracts").main
    inputs = Named(**{k: str(REPO / v) for k, v in DEMO_RESOURCES.items()})
    outputs = Named(
        raw=str(dest),
        truth=str(dest.parent / "truth.parquet"),
        summary=str(dest.parent / "truth.json"),
    )
    settings = CONFIG["demo"] if demo is None else demo
    main(
        inputs,
        outputs,
        Named(
            years=years,
            demo=settings,
            programmes=CONFIG["programmes"],
            policy=CONFIG["policy"],
            outcome_industry=outcome_industry,
        ),
    )
    return dest


def mutable_copy(pristine: Path, dest: Path) -> Path:
    """A copy of a raw directory that a test may damage."""
    shutil.copytree(pristine, dest)
    return dest


def panel_params(raw_dir: Path, **overrides) -> Named:
    """The params of rule build_panel for `raw_dir`, from config/config.yaml, with `overrides`."""
    params = {
        "raw_dir": str(raw_dir),
        "years": YEARS,
        "sample_rule": CONFIG["sample"]["rule"],
        "jump_factor": CONFIG["ingestion"]["jump_factor"],
        "programmes": CONFIG["programmes"],
        "dual": CONFIG["dual"],
        "policy": CONFIG["policy"],
        "truncation_ratio": CONFIG["ingestion"]["truncation_ratio"],
        "outcome_industry": CONFIG["outcome_industry"],
    }
    params.update(overrides)
    return Named(**params)


def build_panel_outputs(raw_dir: Path, results: Path, **param_overrides) -> dict[str, Path]:
    """Run rule build_panel's `main` on `raw_dir`, writing into `results`; return the output paths.

    An InputError propagates, as it would stop the rule."""
    main = _script("build_panel").main
    inputs = Named(raw=[str(raw_dir)], **{k: str(REPO / v) for k, v in PANEL_RESOURCES.items()})
    paths = {k: results / v for k, v in PANEL_OUTPUTS.items()}
    main(
        inputs,
        Named(**{k: str(p) for k, p in paths.items()}),
        panel_params(raw_dir, **param_overrides),
    )
    return paths


def nothing_written(results: Path) -> bool:
    """True when no output of build_panel (nor a temporary file of one) exists under `results`."""
    panel_dir = results / "panel"
    return not panel_dir.exists() or not any(panel_dir.iterdir())


def build_fails(raw_dir: Path, results: Path, **param_overrides) -> InputError:
    """Run rule build_panel's `main` on a damaged `raw_dir`: it must raise InputError and write nothing
    into `results`; the error is returned for the test to read."""
    try:
        build_panel_outputs(raw_dir, results, **param_overrides)
    except InputError as exc:
        assert nothing_written(results), f"{results}: output left behind"
        return exc
    raise AssertionError(f"build_panel accepted {raw_dir}")


def read_csv_rows(path: Path) -> list[str]:
    """The lines of a CSV extract, decoded as the demo wrote it (UTF-8 or GB18030)."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding).splitlines(keepends=True)
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"{path}: neither UTF-8 nor GB18030")


def panel_frame(paths: dict[str, Path]) -> pd.DataFrame:
    return pd.read_parquet(paths["parquet"])
