# Shared helpers: config validation, wildcard constraints, input functions.
# Everything a job needs from the config arrives in its script through `params` (never via snakemake.config).

import os
from pathlib import Path

from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

# --- cross-field config checks: keys that are each valid but contradict each other stop the
# run here, before any job, with the key(s) named (dualpilot.workflow.config_checks, unit-tested).
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from dualpilot.workflow.config_checks import ConfigError, check_config, config_warnings

try:
    check_config(config, root=os.getcwd())
except ConfigError as err:
    raise WorkflowError(str(err)) from None
for _warning in config_warnings(config):
    logger.warning(f"WARNING (configuration): {_warning}")
# --- end of cross-field config checks

# BLAS threads: Snakemake sets OMP/OPENBLAS/MKL_NUM_THREADS to each job's `threads` (1 unless a rule asks
# for more), so jobs running side by side do not oversubscribe the cores (checked by bench/full_rebuild.py).

# Analyses of the baseline stage, each written to results/estimates/<analysis>.csv by its own rule.
BASELINE_ANALYSES = ["baseline", "single_vs_dual", "event_study", "duration"]

# Placebo kinds run by rule placebo (docs/placebo.md) and the options of the engine, merged from the
# per-kind config blocks.
PLACEBO_KINDS = config["placebo"]["kinds"]
PLACEBO_OPTIONS = {
    "shifts": config["placebo"]["time"]["shifts"],
    "shift_range": config["placebo"]["time_random"]["shift_range"],
    "n_units": config["placebo"]["mixed"]["n_units"],
    "time_scope": config["placebo"]["mixed"]["time_scope"],
}

# Heterogeneity dimensions (config heterogeneity: dimensions), each with its own permutation shards.
HETEROGENEITY_DIMENSIONS = list(config["heterogeneity"]["dimensions"])

# --- paths and job resources
# Every path is written once. A file the workflow writes is named by the rule that writes it; other rules
# read it as rules.<rule>.output.<name> (so a rule file reads only rules of files included before it). The
# shipped reference files (resources/README.md) are named here; a rule takes those it reads by name with
# `**reference("city_master", ...)`.
REFERENCE = {
    "city_master": "resources/cities/city_master.csv",
    "name_crosswalk": "resources/cities/name_crosswalk.csv",
    "header_aliases": "resources/yearbook/header_aliases.csv",
    "plausibility": "resources/yearbook/plausibility.csv",
    "usd_cny": "resources/macro/usd_cny.csv",
    "low_carbon": "resources/policy/low_carbon_pilots.csv",  # the demo's low-carbon pilots
    "labels": "resources/labels/terms.csv",  # labels of terms, models and columns (zh/en); rules read LABELS
    "specs": "resources/labels/tables.csv",  # rows and notes of each formatted table
    "layer": "resources/geo/prefectures.geojson",
    "dash_line": "resources/geo/nine_dash_line.geojson",
}


def reference(*names):
    """The named reference files, as named inputs of a rule."""
    return {name: REFERENCE[name] for name in names}


# The pilot programmes (config `programmes:`) and the two whose overlap is the dual pilot (`dual:`).
DUAL = list(config["dual"])
# The label file every table, figure and the .dta read: the shipped one with the labels derived from the
# programmes (rule write_labels).
LABELS = "results/labels/terms.csv"


def programme_inputs():
    """Named inputs of the dual pair's shipped files: list_<key>, its pilot list in resources/policy/ when
    one of that name is shipped (a list only in <raw_dir>/policy/ is among `raw_inputs`), and counts_<key>,
    its official counts per batch (when `official_counts` names a table)."""
    out = {}
    for key in DUAL:
        block = config["programmes"][key]
        shipped = Path("resources", "policy", block["pilot_list"])
        if shipped.is_file():
            out[f"list_{key}"] = str(shipped)
        if block.get("official_counts"):
            out[f"counts_{key}"] = str(
                Path("resources", "policy", block["official_counts"])
            )
    return out


# Memory (MB) and wall time (minutes) of a job, given to every job rule as `**JOB_RESOURCES` under
# `resources` (build_panel and the sharded rules set their own). Measured peaks of the demo's jobs stay under
# 420 MB and 10 s (docs/performance.md); the limits leave room for the real yearbooks. A profile may change
# one rule's values with set-resources (profiles/slurm does for make_demo_extracts).
JOB_RESOURCES = {"mem_mb": 2000, "runtime": 30}
# --- end of paths and job resources


# --- render rules: estimation rules write tidy estimates only; one render_<stage> rule per stage
# draws that stage's tables and figures, so a change of `tables:` or `figures:` re-runs render jobs only.
# Each formatted table is written as results/tables/<table>.{tex,md,html}; the HTML page is in the report
# (shown inline), beside the tidy CSV (a download), with the caption of workflow/report/<caption>.rst.
TABLE_REPORT = {
    # table: (label in the report, caption file)
    "baseline": ("baseline DID", "baseline"),
    "single_vs_dual": ("dual vs single pilots", "single_vs_dual"),
    "event_study": ("event study", "event_study"),
    "duration": ("duration", "duration"),
    "descriptives": ("descriptive statistics", "descriptives"),
    "treatment_summary": ("treatment summary", "treatment_summary"),
    "psm_did": ("PSM-DID", "psm_did"),
    "psm_balance": ("PSM balance", "psm_balance"),
    "honestdid": ("HonestDiD", "honestdid"),
    "pilot_order": ("pilot order", "pilot_order"),
    "robustness": ("robustness grid", "robustness"),
    "mechanisms": ("mechanisms", "mechanisms"),
    "heterogeneity": ("heterogeneity", "heterogeneity"),
    "heterogeneity_tests": ("heterogeneity tests", "heterogeneity"),
}


def table_outputs(names, category):
    """Named outputs <name>_tex, <name>_md and <name>_html (in the report) of each formatted table."""
    out = {}
    for name in names:
        label, caption = TABLE_REPORT[name]
        out[f"{name}_tex"] = f"results/tables/{name}.tex"
        out[f"{name}_md"] = f"results/tables/{name}.md"
        out[f"{name}_html"] = report(
            f"results/tables/{name}.html",
            caption=f"../report/{caption}.rst",
            category=category,
            subcategory="Formatted tables",
            labels={"analysis": label, "type": "formatted table"},
        )
    return out


def config_snapshot():
    """The configuration in effect, written at parse time to .snakemake/dualpilot/config_<sha256>.yaml (once
    per distinct configuration). Rule save_config copies it: its input path changes exactly when the
    configuration does, so a dry run's reason names that path instead of printing the whole config.
    """
    import hashlib

    import yaml

    text = yaml.safe_dump(dict(config), allow_unicode=True, sort_keys=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = Path(".snakemake", "dualpilot", f"config_{digest}.yaml")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(path)


# --- end of the render block


def placebo_draws(kind):
    """Draws of a placebo kind: one per shift for the deterministic time placebo, else placebo: draws."""
    return (
        len(PLACEBO_OPTIONS["shifts"]) if kind == "time" else config["placebo"]["draws"]
    )


def placebo_shards(kind):
    """Shards of a placebo kind: never more than its draws."""
    return min(config["placebo"]["shards"], placebo_draws(kind))


wildcard_constraints:
    kind="|".join(PLACEBO_KINDS),
    shard=r"\d+",
    dimension="|".join(HETEROGENEITY_DIMENSIONS),


# The demo extracts are written here by rule make_demo_extracts; `raw_dir` points here by default.
DEMO_RAW_DIR = "results/demo/raw"
YEARS = (config["years"]["start"], config["years"]["end"])


def raw_dir_is_demo():
    return os.path.normpath(config["raw_dir"]) == os.path.normpath(DEMO_RAW_DIR)


def raw_inputs(wildcards):
    """The raw files behind the panel, so that editing one of them rebuilds it.

    For the demo this is the directory the demo rule writes; for a user's `raw_dir` it is every file found in
    it. A missing `raw_dir` stops the run here, before any job starts, with the path in the message.
    """
    if raw_dir_is_demo():
        return [DEMO_RAW_DIR]
    raw = Path(config["raw_dir"])
    if not raw.is_dir():
        raise WorkflowError(
            f"config raw_dir={str(raw)!r} is not a directory. Point it at extracts laid out as "
            "docs/raw-data.md describes, e.g. `snakemake --config raw_dir=/path/to/extracts ...`."
        )
    return sorted(
        str(p) for p in raw.rglob("*") if p.is_file() and not p.name.startswith(".")
    )
