"""Benchmark: a full rebuild of the workflow on the demo data, timed per rule (not a test).

    python bench/full_rebuild.py                     # 2 cores, 1000 placebo draws per kind, + report
    python bench/full_rebuild.py -- --configfile /abs/path/overlay.yaml       # a proposed config
    python bench/full_rebuild.py --package /tmp/patched                       # a patched dualpilot/
    python bench/full_rebuild.py --compare main~3 --repeat 2   # git ref's tree vs this checkout, alternating
    python bench/full_rebuild.py --compare main~3 --dry-run    # both trees prepared, `snakemake -n` in each

What it does:

1. copies the workflow's sources (Snakefile config workflow resources envs profiles) into a fresh
   temporary directory (or `--keep DIR`), so the run starts from an empty results/ and nothing in the
   checkout is touched; with `--package DIR`, DIR/dualpilot replaces the copy's package;
2. instruments the copy only: a `benchmark:` directive (benchmarks/<log path>.tsv) for every rule that
   runs code but has none (marked `*` in the table); a wrapper around `dualpilot.workflow.runner.run` that
   writes each job's exact CPU time and peak RSS (getrusage at exit) to benchmarks/_jobs/; and a probe
   rule `bench_env_probe`, run like every job (`script:` + `runner.run`), that records the BLAS thread
   variables a job starts with and the threads of the BLAS library numpy loads;
3. runs `python -m snakemake --cores N all results/bench/env_probe.json --configfile
   bench_overlay.yaml` (the overlay sets `placebo: draws: D`; arguments after `--` are appended, e.g.
   a second `--configfile`, merged after it), timing the wall clock, the CPU time of the whole process
   tree and of Snakemake's own process;
4. runs `snakemake --report report.html`, timed on its own (`--no-report` skips it);
5. reads every benchmarks/**/*.tsv, maps each file to its rule through Snakemake's log, and prints a
   table per rule: jobs, wall time summed over wildcards and of the longest job, CPU, max RSS; then
   the CPU that starting the rule's interpreter and importing its script's modules costs per job
   (measured after the build in fresh interpreters), the totals, the target verdict, the load average
   before and after and the probe.

With `--compare REF` the script does all this for two trees in the same invocation: REF's (`git archive
REF`, extracted into the temporary directory: "before") and this checkout's working tree ("after"), built
alternately (before, after, and with `--repeat N` N times each, alternating), each build from its own fresh
copy. It prints every build's totals in the order they ran, then per rule the mean jobs, wall and CPU
seconds (and startup CPU) of both trees side by side with the differences, and the mean build wall and
CPU of both with the difference. `--dry-run` (with or without `--compare`) prepares the tree(s) as for a
timed run and runs `snakemake -n` in each instead.

Snakemake's benchmark files sample RSS (and CPU) every 0.5 s, then every 30 s after 15 s: use the
exact `cpu s` and `peak RSS MB` columns. On a shared machine wall times grow with the load; CPU times
do not (much), and CPU / cores is the wall time of an idle machine at best.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["Snakefile", "config", "workflow", "resources", "envs", "profiles"]
"""What a run needs; results/, logs/, benchmarks/ and .snakemake/ are not copied (an empty start)."""

PROBE_OUTPUT = "results/bench/env_probe.json"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

PROBE_RULE = f'''

rule bench_env_probe:
    """Added by bench/full_rebuild.py: the BLAS thread settings seen inside a job."""
    output:
        "{PROBE_OUTPUT}",
    log:
        "logs/bench_env_probe.log",
    threads: 1
    script:
        "workflow/scripts/bench_env_probe.py"
'''

PROBE_SCRIPT = '''"""Added by bench/full_rebuild.py: what a job sees of the BLAS thread settings."""

import json
import os
import sys

VARS = {vars!r}
at_start = {{v: os.environ.get(v) for v in VARS}}
preloaded = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "scipy", "pandas"))

import numpy  # noqa: E402,F401  (loads OpenBLAS with the environment seen at start)
from threadpoolctl import threadpool_info  # noqa: E402

at_import = [{{k: d.get(k) for k in ("internal_api", "num_threads")}} for d in threadpool_info()]

try:  # the package by role (dualpilot/workflow/runner.py), or a tree from before it (--compare)
    from dualpilot.workflow.runner import run  # noqa: E402
except ModuleNotFoundError:
    from dualpilot.runner import run  # noqa: E402


def main(inputs, outputs, params):
    record = {{
        "environment_at_job_start": at_start,
        "numeric_modules_loaded_before_the_script": preloaded,
        "blas_when_numpy_was_imported": at_import,
        "environment_inside_main": {{v: os.environ.get(v) for v in VARS}},
        "blas_inside_main": [
            {{k: d.get(k) for k in ("internal_api", "num_threads")}} for d in threadpool_info()
        ],
    }}
    with open(outputs[0], "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)


run(main, globals())
'''


RUNNER_HOOK = """

# ---- added by bench/full_rebuild.py: exact CPU time and peak RSS of every job ----
_bench_run = run


def run(main, namespace):  # noqa: F811
    # imported here: the hook must not rely on what runner.py imports (it stopped importing os)
    import atexit
    import json as _json
    import os as _os
    import resource as _resource
    from pathlib import Path as _Path

    smk = namespace.get("snakemake")

    def _dump():
        use = _resource.getrusage(_resource.RUSAGE_SELF)
        kids = _resource.getrusage(_resource.RUSAGE_CHILDREN)
        record = {
            "rule": smk.rule,
            "wildcards": dict(smk.wildcards.items()),
            "cpu_s": use.ru_utime + use.ru_stime + kids.ru_utime + kids.ru_stime,
            "peak_rss_mb": max(use.ru_maxrss, kids.ru_maxrss) / 1024,
        }
        out = _Path("benchmarks/_jobs") / f"{smk.rule}.{_os.getpid()}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_json.dumps(record))

    if smk is not None:
        atexit.register(_dump)
    _bench_run(main, namespace)
"""


@dataclass
class Timed:
    """Wall clock and CPU time (user + system, all processes of the tree) of one command."""

    wall: float
    cpu: float
    main_cpu: float
    """CPU of the top process alone (Snakemake's scheduler and its threads), polled every 0.2 s."""
    returncode: int


def copy_sources(dest: Path, tree: Path = REPO) -> None:
    """Copy the workflow's sources of `tree` (default: this checkout) into `dest` (which must not hold a
    previous run)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        src = tree / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)


_RULE = re.compile(r"^rule (\w+):")
_DIRECTIVE = re.compile(r"^    (\w+):")
_LOG_PATH = re.compile(r'"logs/([^"]+)\.log"')
_RUNS_CODE = {"script", "shell", "run", "wrapper", "notebook"}


def instrument(path: Path) -> list[str]:
    """Add `benchmark: "benchmarks/<log path>.tsv"` to every rule of the .smk/Snakefile at `path` that
    runs code, has a single `logs/...log` and no benchmark. Returns the rules changed."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out: list[str] = []
    added: list[str] = []
    i = 0
    while i < len(lines):
        m = _RULE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j][0] in " \t#"):
            j += 1
        block = lines[i:j]
        directives = [
            (k, d.group(1)) for k, line in enumerate(block) if (d := _DIRECTIVE.match(line))
        ]
        names = {name for _, name in directives}
        if "benchmark" not in names and "log" in names and names & _RUNS_CODE:
            k_log = next(k for k, name in directives if name == "log")
            k_next = next((k for k, _ in directives if k > k_log), len(block))
            logs = _LOG_PATH.findall("".join(block[k_log:k_next]))
            if len(logs) == 1:
                insert = ["    benchmark:\n", f'        "benchmarks/{logs[0]}.tsv"\n']
                block = block[:k_next] + insert + block[k_next:]
                added.append(m.group(1))
        out.extend(block)
        i = j
    if added:
        path.write_text("".join(out), encoding="utf-8")
    return added


def add_runner_hook(workdir: Path) -> None:
    """Wrap `dualpilot.workflow.runner.run` in the copy so that every job writes benchmarks/_jobs/<rule>.<pid>.json
    with its exact CPU time (getrusage at exit: all threads and children) and peak RSS."""
    package = workdir / "workflow/scripts/dualpilot"
    runners = [package / "runner.py"] if (package / "runner.py").exists() else []
    runners = runners or sorted(package.rglob("runner.py"))  # the package may have sub-packages
    if len(runners) != 1:
        raise SystemExit(f"{package}: need exactly one runner.py to hook, found {runners}")
    with open(runners[0], "a", encoding="utf-8") as fh:
        fh.write(RUNNER_HOOK)


def add_probe(workdir: Path) -> None:
    """Append the environment probe rule and its script to the copy."""
    with open(workdir / "Snakefile", "a", encoding="utf-8") as fh:
        fh.write(PROBE_RULE)
    (workdir / "workflow/scripts/bench_env_probe.py").write_text(
        PROBE_SCRIPT.format(vars=THREAD_VARS), encoding="utf-8"
    )


def timed(cmd: list[str], cwd: Path, log: Path) -> Timed:
    """Run `cmd` in `cwd` with output to `log`; wall clock and CPU of the whole process tree."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    main_cpu = 0.0
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        top = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                t = top.cpu_times()
                main_cpu = t.user + t.system
            except psutil.Error:
                pass
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, main_cpu, proc.returncode)


_JOB_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_JOB_BENCH = re.compile(r"^\s+benchmark: (\S+)$")


def benchmark_rules(log_text: str) -> dict[str, str]:
    """benchmark file -> rule, from the job descriptions Snakemake prints."""
    mapping: dict[str, str] = {}
    rule = None
    for line in log_text.splitlines():
        if m := _JOB_RULE.match(line):
            rule = m.group(1)
        elif (m := _JOB_BENCH.match(line)) and rule:
            mapping[os.path.normpath(m.group(1))] = rule
    return mapping


def read_benchmarks(workdir: Path, mapping: dict[str, str]) -> pd.DataFrame:
    """One row per benchmark TSV: rule, file, s (wall), max_rss (MB, sampled). Unknown files raise."""
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        rel = os.path.normpath(path.relative_to(workdir))
        if rel not in mapping:
            raise ValueError(f"{rel}: no job of this run wrote it (stale benchmark file?)")
        tsv = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
        rows.append(
            {
                "rule": mapping[rel],
                "file": rel,
                "s": float(tsv["s"].iloc[-1]),
                "max_rss": float(tsv["max_rss"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["rule", "file", "s", "max_rss"])


def read_job_records(workdir: Path) -> pd.DataFrame:
    """The records of the runner hook: rule, cpu_s, peak_rss_mb (one row per job)."""
    rows = [
        json.loads(p.read_text()) for p in sorted((workdir / "benchmarks/_jobs").glob("*.json"))
    ]  # a job that leaves through os._exit writes none: its CPU shows as "-"
    cols = ["rule", "cpu_s", "peak_rss_mb"]
    return pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)


def script_imports(script: Path) -> list[str]:
    """Every import statement of a workflow script (the scripts import inside `main`), as source."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    return [
        ast.unparse(n)
        for n in nodes
        if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
    ]


PREAMBLE_IMPORTS = [
    "import pickle",
    "from snakemake.logging import logger",
    "from snakemake.iocontainers import Snakemake",
    "import snakemake.io",
]
"""What Snakemake's script preamble imports before a job's own code (unpickling needs snakemake.io)."""


def startup_cost(scripts_dir: Path, imports: list[str], repeats: int) -> tuple[float, float]:
    """Best wall and CPU seconds over `repeats` fresh interpreters that only run `imports` (with the
    scripts folder on sys.path, as in a job)."""
    code = "\n".join([f"import sys; sys.path.insert(0, {str(scripts_dir)!r})", *imports])
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=scripts_dir)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu


def startup_costs(workdir: Path, rules: list[str], repeats: int) -> pd.DataFrame:
    """Per rule: CPU seconds of starting its script's interpreter with Snakemake's preamble and the
    script's imports (workflow/scripts/<rule>.py, the project's naming rule); NaN without a script."""
    scripts = workdir / "workflow/scripts"
    rows = [
        {
            "rule": "(interpreter + preamble)",
            "startup_cpu_s": startup_cost(scripts, PREAMBLE_IMPORTS, repeats)[1],
        }
    ]
    for rule in rules:
        script = scripts / f"{rule}.py"
        cpu = (
            startup_cost(scripts, PREAMBLE_IMPORTS + script_imports(script), repeats)[1]
            if script.exists()
            else float("nan")
        )
        rows.append({"rule": rule, "startup_cpu_s": cpu})
    return pd.DataFrame(rows)


def rule_table(
    tsv: pd.DataFrame, records: pd.DataFrame, instrumented: set[str], startup: pd.DataFrame | None
) -> pd.DataFrame:
    """Per rule: jobs, wall s (sum, longest job), max RSS (sampled) from the benchmark TSVs; exact CPU
    s and peak RSS from the runner hook; startup CPU per job and over all jobs; sorted by wall time."""
    table = tsv.groupby("rule").agg(
        jobs=("s", "size"),
        wall_s=("s", "sum"),
        longest_s=("s", "max"),
        max_rss_mb=("max_rss", "max"),
    )
    exact = records.groupby("rule").agg(
        hook_jobs=("cpu_s", "size"), cpu_s=("cpu_s", "sum"), peak_rss_mb=("peak_rss_mb", "max")
    )
    table = table.join(exact, how="outer")
    if startup is not None:
        table = table.join(startup.set_index("rule"), how="left")
        table["startup_total_s"] = table["startup_cpu_s"] * table["jobs"]
    table["benchmark_added"] = table.index.isin(list(instrumented))
    return table.sort_values("wall_s", ascending=False).reset_index()


def format_table(table: pd.DataFrame) -> str:
    """The per-rule table as text, with a total line."""
    has_startup = "startup_cpu_s" in table
    head = (
        f"{'rule':<34}{'jobs':>5}{'wall s':>8}{'longest':>8}{'cpu s':>8}{'max RSS MB':>11}"
        f"{'peak RSS MB':>12}" + (f"{'startup s/job':>14}{'startup s':>10}" if has_startup else "")
    )
    lines = [head, "-" * len(head)]

    def fmt(x: float, width: int, digits: int) -> str:
        return f"{'-':>{width}}" if pd.isna(x) else f"{x:>{width}.{digits}f}"

    for r in table.itertuples():
        line = (
            f"{r.rule + ('*' if r.benchmark_added else ''):<34}{r.jobs:>5.0f}{fmt(r.wall_s, 8, 1)}"
            f"{fmt(r.longest_s, 8, 1)}{fmt(r.cpu_s, 8, 1)}{fmt(r.max_rss_mb, 11, 0)}"
            f"{fmt(r.peak_rss_mb, 12, 0)}"
        )
        if has_startup:
            line += f"{fmt(r.startup_cpu_s, 14, 2)}{fmt(r.startup_total_s, 10, 1)}"
        lines.append(line)
    lines.append("-" * len(head))
    total = (
        f"{'total (' + str(len(table)) + ' rules)':<34}{table['jobs'].sum():>5.0f}"
        f"{fmt(table['wall_s'].sum(), 8, 1)}{fmt(table['longest_s'].max(), 8, 1)}"
        f"{fmt(table['cpu_s'].sum(), 8, 1)}{fmt(table['max_rss_mb'].max(), 11, 0)}"
        f"{fmt(table['peak_rss_mb'].max(), 12, 0)}"
    )
    if has_startup:
        total += f"{'':>14}{fmt(table['startup_total_s'].sum(), 10, 1)}"
    lines.append(total)
    return "\n".join(lines)


def load() -> str:
    """The load average (1, 5, 15 min) as text."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def config_used(workdir: Path) -> str:
    """The placebo, heterogeneity and mechanisms settings the run used (results/config_used.yaml)."""
    import yaml

    cfg = yaml.safe_load((workdir / "results/config_used.yaml").read_text(encoding="utf-8"))
    parts = {
        "placebo": {k: cfg["placebo"][k] for k in ("draws", "shards", "kinds")},
        "heterogeneity": {k: cfg["heterogeneity"][k] for k in ("draws", "shards")},
        "mechanisms.bootstrap.reps": cfg["mechanisms"]["bootstrap"]["reps"],
    }
    return json.dumps(parts)


def parse_args() -> tuple[argparse.Namespace, list[str], argparse.ArgumentParser]:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000, help="placebo draws per random kind")
    ap.add_argument("--no-report", action="store_true", help="skip `snakemake --report`")
    ap.add_argument("--no-instrument", action="store_true", help="add no benchmark directives")
    ap.add_argument(
        "--startup-repeats",
        type=int,
        default=2,
        help="fresh interpreters per rule to time startup and imports (best kept); 0 skips",
    )
    ap.add_argument(
        "--package",
        type=Path,
        metavar="DIR",
        help="replace the copy's dualpilot/ by DIR/dualpilot (measure a proposed library change)",
    )
    ap.add_argument(
        "--compare",
        metavar="REF",
        help="also rebuild the tree of git REF (`git archive REF`; e.g. main~3) and compare it with "
        "this checkout's (working tree) in the same run: before = REF, after = this checkout",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="with --compare: N builds of each tree, alternating before, after, before, ...",
    )
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="materialise the tree(s) and instrument them, run `snakemake -n` in each; no timing",
    )
    ap.add_argument("--keep", metavar="DIR", help="run in DIR (must not exist) and keep it")
    ap.add_argument("--csv", metavar="PATH", help="also write the per-rule table as CSV")
    ap.add_argument("--target", type=float, default=90.0, help="wall-clock target of the build (s)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.repeat > 1 and not args.compare:
        ap.error("--repeat needs --compare")
    if args.compare and args.package:
        ap.error("--compare and --package exclude each other (compare two trees, or patch one)")
    return args, extra, ap


def git(*args: str) -> str:
    """Output of `git -C <checkout> args` (stripped); raises SystemExit naming the command on failure."""
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def materialise(ref: str, dest: Path) -> str:
    """Extract the tree of git `ref` into `dest` (`git archive`); returns the commit's short hash."""
    commit = git("rev-parse", "--verify", "--short", f"{ref}^{{commit}}")
    dest.mkdir(parents=True)
    archive = dest.parent / f"{dest.name}.tar"
    git("archive", "--format=tar", "-o", str(archive), commit)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return commit


def checkout_label() -> str:
    """This checkout: HEAD's short hash and whether the working tree has changes under SOURCES."""
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", *SOURCES)
    return f"{head} (working tree{', with uncommitted changes' if dirty else ''})"


@dataclass
class Run:
    """One build of one tree: its timings and per-rule table."""

    label: str
    workdir: Path
    build: Timed
    report: Timed | None
    table: pd.DataFrame
    n_jobs: int
    n_aggregate: int
    all_jobs_cpu: float
    startup: pd.DataFrame | None
    config: str
    """The placebo, heterogeneity and mechanisms settings in effect (`config_used`)."""


def prepare(workdir: Path, tree: Path, args: argparse.Namespace) -> set[str]:
    """A fresh instrumented copy of `tree`'s workflow in `workdir`; returns the rules instrumented."""
    copy_sources(workdir, tree)
    if args.package:
        package = workdir / "workflow/scripts/dualpilot"
        shutil.rmtree(package)
        shutil.copytree(
            args.package / "dualpilot", package, ignore=shutil.ignore_patterns("__pycache__")
        )
    instrumented: set[str] = set()
    if not args.no_instrument:
        for smk_file in [
            workdir / "Snakefile",
            *sorted((workdir / "workflow/rules").glob("*.smk")),
        ]:
            instrumented.update(instrument(smk_file))
    add_runner_hook(workdir)
    add_probe(workdir)
    # An overlay file, not --config: Snakemake parses nested --config values as strings.
    (workdir / "bench_overlay.yaml").write_text(
        f"placebo:\n  draws: {args.draws}\n", encoding="utf-8"
    )
    return instrumented


CONFIG_ARGS = ["--configfile", "bench_overlay.yaml"]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def build_once(
    label: str, workdir: Path, tree: Path, args: argparse.Namespace, extra: list[str]
) -> Run:
    """Copy, instrument, build (and report) `tree` in `workdir`; read the per-rule table."""
    instrumented = prepare(workdir, tree, args)
    build = timed(
        [*SNAKEMAKE, "--cores", str(args.cores), "all", PROBE_OUTPUT, *CONFIG_ARGS, *extra],
        workdir,
        workdir / "build.log",
    )
    if build.returncode:
        sys.exit(f"{label}: snakemake failed ({build.returncode}); see {workdir / 'build.log'}")
    report = None
    if not args.no_report:
        report = timed(
            [
                *SNAKEMAKE,
                "--cores",
                str(args.cores),
                "--report",
                "report.html",
                *CONFIG_ARGS,
                *extra,
            ],
            workdir,
            workdir / "report.log",
        )
        if report.returncode:
            sys.exit(f"{label}: snakemake --report failed; see {workdir / 'report.log'}")
    log_text = (workdir / "build.log").read_text(encoding="utf-8")
    n_jobs = len(re.findall(r"^(?:local)?rule \w+:$", log_text, flags=re.M))
    tsv = read_benchmarks(workdir, benchmark_rules(log_text))
    records = read_job_records(workdir)
    all_jobs_cpu = float(records["cpu_s"].sum())  # the probe included
    tsv, records = (f[f["rule"] != "bench_env_probe"] for f in (tsv, records))
    rules = sorted(set(tsv["rule"]) | set(records["rule"]))
    startup = startup_costs(workdir, rules, args.startup_repeats) if args.startup_repeats else None
    table = rule_table(tsv, records, instrumented, startup)
    n_aggregate = n_jobs - 1 - len(tsv)
    config = config_used(workdir)
    return Run(
        label, workdir, build, report, table, n_jobs, n_aggregate, all_jobs_cpu, startup, config
    )


def print_single(run: Run, args: argparse.Namespace, extra: list[str]) -> None:
    """The report of one build (the script's output without --compare)."""
    workdir, build, report, table, startup = (
        run.workdir,
        run.build,
        run.report,
        run.table,
        run.startup,
    )
    print(f"\nconfig in effect: {run.config}")
    print(f"extra snakemake arguments: {extra or 'none'}\n")
    print(format_table(table))
    notes = [
        "wall s, longest, max RSS MB: Snakemake's benchmark files (RSS sampled every 0.5 s, then 30 s)",
        "cpu s, peak RSS MB: exact, from getrusage at the exit of each job (runner hook)",
    ]
    if startup is not None:
        floor = startup.loc[startup["rule"] == "(interpreter + preamble)", "startup_cpu_s"].iloc[0]
        notes.append(
            "startup s/job: CPU of a fresh interpreter that runs Snakemake's preamble and the script's "
            f"imports, then exits (best of {args.startup_repeats}; without the script's imports: "
            f"{floor:.2f} s)"
        )
    if table["benchmark_added"].any():
        notes.append(
            "* benchmark directive added by this script (the rule has none in the workflow)"
        )
    print("\n".join(notes))
    print(
        f"\nbuild: {build.wall:.1f} s wall on {args.cores} cores, {run.n_jobs} jobs ({run.n_aggregate} "
        f"aggregate target(s), 1 probe); CPU of every process (Snakemake included) {build.cpu:.1f} s "
        f"-> at least {build.cpu / args.cores:.1f} s on {args.cores} idle cores"
    )
    print(
        f"jobs: wall summed {table['wall_s'].sum():.1f} s (mean concurrency "
        f"{table['wall_s'].sum() / build.wall:.2f}), CPU {table['cpu_s'].sum():.1f} s; Snakemake's "
        f"main process {build.main_cpu:.1f} s CPU, its other children (not jobs) "
        f"{build.cpu - build.main_cpu - run.all_jobs_cpu:.1f} s"
        + (
            f"; starting, importing and exiting the jobs' interpreters "
            f"{table['startup_total_s'].sum():.1f} s CPU ({table['startup_total_s'].sum() / build.cpu:.0%}"
            " of the build's CPU)"
            if startup is not None
            else ""
        )
    )
    verdict = (
        "met"
        if build.wall <= args.target
        else f"missed by {build.wall - args.target:.1f} s ({build.wall / args.target:.2f}x)"
    )
    print(f"target {args.target:.0f} s wall: {verdict}")
    if report is not None:
        size = (workdir / "report.html").stat().st_size / 2**20
        print(
            f"report: {report.wall:.1f} s wall, {report.cpu:.1f} s CPU ({size:.1f} MB report.html)"
        )
    probe = json.loads((workdir / PROBE_OUTPUT).read_text(encoding="utf-8"))
    print("\nenvironment probe (inside a job):")
    for key, value in probe.items():
        print(f"  {key}: {value}")


def compare_table(before: list[Run], after: list[Run]) -> pd.DataFrame:
    """Per rule, the mean over the runs of each tree of jobs, wall s (summed over jobs), CPU s and
    startup s; the after - before differences; sorted by the larger wall time. A rule missing from a
    tree shows NaN there."""
    cols = ["jobs", "wall_s", "cpu_s", "startup_total_s"]

    def mean(runs: list[Run]) -> pd.DataFrame:
        # as floats: a rule that no hook record covers leaves cpu_s of object dtype after the join
        frames = [r.table.set_index("rule").reindex(columns=cols).astype("float64") for r in runs]
        return pd.concat(frames).groupby(level=0).mean()

    b, a = mean(before), mean(after)
    table = b.add_suffix("_before").join(a.add_suffix("_after"), how="outer")
    for c in cols[1:]:
        table[f"{c}_diff"] = table[f"{c}_after"] - table[f"{c}_before"]
    order = table[["wall_s_before", "wall_s_after"]].max(axis=1).sort_values(ascending=False)
    return table.loc[order.index].rename_axis("rule").reset_index()


def format_compare(table: pd.DataFrame) -> str:
    """The side-by-side table as text, with a total line."""
    has_startup = table["startup_total_s_before"].notna().any()
    head = (
        f"{'rule':<34}{'jobs b':>7}{'jobs a':>7}{'wall b':>8}{'wall a':>8}{'diff':>8}"
        f"{'cpu b':>8}{'cpu a':>8}{'diff':>8}"
        + (f"{'start b':>9}{'start a':>9}{'diff':>8}" if has_startup else "")
    )
    lines = [head, "-" * len(head)]

    def fmt(x: float, width: int, digits: int = 1, sign: bool = False) -> str:
        if pd.isna(x):
            return f"{'-':>{width}}"
        return f"{x:>+{width}.{digits}f}" if sign else f"{x:>{width}.{digits}f}"

    def line(name: str, r: pd.Series) -> str:
        text = (
            f"{name:<34}{fmt(r['jobs_before'], 7, 0)}{fmt(r['jobs_after'], 7, 0)}"
            f"{fmt(r['wall_s_before'], 8)}{fmt(r['wall_s_after'], 8)}"
            f"{fmt(r['wall_s_diff'], 8, sign=True)}{fmt(r['cpu_s_before'], 8)}"
            f"{fmt(r['cpu_s_after'], 8)}{fmt(r['cpu_s_diff'], 8, sign=True)}"
        )
        if has_startup:
            text += (
                f"{fmt(r['startup_total_s_before'], 9)}{fmt(r['startup_total_s_after'], 9)}"
                f"{fmt(r['startup_total_s_diff'], 8, sign=True)}"
            )
        return text

    for _, r in table.iterrows():
        lines.append(line(r["rule"], r))
    lines.append("-" * len(head))
    total = table.drop(columns="rule").sum(min_count=1)
    for c in ("wall_s", "cpu_s", "startup_total_s"):
        total[f"{c}_diff"] = total[f"{c}_after"] - total[f"{c}_before"]
    lines.append(line(f"total ({len(table)} rules)", total))
    return "\n".join(lines)


def print_compare(
    before: list[Run], after: list[Run], labels: tuple[str, str], args: argparse.Namespace
) -> None:
    """Both trees side by side: every run's totals, the per-rule means, the mean totals and the
    differences."""
    print(f"\nbefore: {labels[0]}\nafter:  {labels[1]}")
    print(f"config in effect (before): {before[0].config}")
    print(f"config in effect (after):  {after[0].config}\n")
    print("runs, in the order they ran:")
    for b, a in zip(before, after, strict=True):
        for run in (b, a):
            report = f", report {run.report.wall:.1f} s wall" if run.report else ""
            print(
                f"  {run.label:<10} build {run.build.wall:6.1f} s wall, {run.build.cpu:6.1f} s CPU, "
                f"{run.n_jobs} jobs{report}"
            )
    n = len(before)
    print(
        f"\nper rule, mean of {n} run(s) per tree (b = before, a = after; wall = summed over the "
        "rule's jobs; cpu exact from the runner hook; start = startup CPU x jobs):\n"
    )
    print(format_compare(compare_table(before, after)))

    def mean(runs: list[Run], attr: str) -> float:
        return sum(getattr(r.build, attr) for r in runs) / len(runs)

    print()
    for attr, name in (("wall", "wall"), ("cpu", "CPU (every process)")):
        b, a = mean(before, attr), mean(after, attr)
        print(
            f"build {name:<20} before {b:7.1f} s   after {a:7.1f} s   diff {a - b:+7.1f} s "
            f"({a / b - 1:+.1%})"
        )
    if before[0].report and after[0].report:
        b = sum(r.report.wall for r in before) / n
        a = sum(r.report.wall for r in after) / n
        print(f"{'report wall':<27}before {b:7.1f} s   after {a:7.1f} s   diff {a - b:+7.1f} s")
    print(
        f"(mean of {n} build(s) per tree on {args.cores} cores, run alternately in one invocation)"
    )


def dry_run(
    label: str, workdir: Path, tree: Path, args: argparse.Namespace, extra: list[str]
) -> None:
    """Instrument a copy of `tree` and run `snakemake -n` there; print the job count."""
    prepare(workdir, tree, args)
    cmd = [*SNAKEMAKE, "-n", "--cores", str(args.cores), "all", PROBE_OUTPUT, *CONFIG_ARGS, *extra]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    (workdir / "dry_run.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode:
        sys.exit(f"{label}: snakemake -n failed; see {workdir / 'dry_run.log'}")
    stats = re.search(r"^total\s+(\d+)$", proc.stdout, flags=re.M)  # Snakemake's "Job stats"
    n_jobs = stats.group(1) if stats else "no"
    print(f"{label}: dry run of {workdir}: {n_jobs} jobs to run")


def main() -> None:
    args, extra, ap = parse_args()
    if args.keep:
        root = Path(args.keep).resolve()
        if root.exists():
            ap.error(f"--keep {root} exists; give a new directory")
        root.mkdir(parents=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="dualpilot-rebuild-"))
    try:
        if args.compare:
            compare(root, args, extra)
        else:
            single(root, args, extra)
    finally:
        if not args.keep:
            shutil.rmtree(root)


def header(args: argparse.Namespace) -> None:
    import snakemake

    print(
        f"python {platform.python_version()}, snakemake {snakemake.__version__}, "
        f"cpu_count {os.cpu_count()}, cores {args.cores}"
    )
    print(f"caller's environment: { {v: os.environ.get(v, 'unset') for v in THREAD_VARS} }")
    print(f"load average (1, 5, 15 min) at start: {load()}")


def single(root: Path, args: argparse.Namespace, extra: list[str]) -> None:
    """One build of this checkout (the behaviour without --compare), in `root`."""
    workdir = root
    if args.dry_run:
        dry_run("this checkout", workdir, REPO, args, extra)
        return
    print(
        f"workflow copy: {workdir}" + (f" (dualpilot/ from {args.package})" if args.package else "")
    )
    header(args)
    run = build_once("build", workdir, REPO, args, extra)
    print(f"load average at the end of the build: {load()}")
    print_single(run, args, extra)
    print(f"\nload average (1, 5, 15 min) at the end: {load()}")
    if args.csv:
        run.table.to_csv(args.csv, index=False)


def compare(root: Path, args: argparse.Namespace, extra: list[str]) -> None:
    """Builds of git REF's tree (before) and this checkout's (after), alternating, compared."""
    before_tree = root / "tree_before"
    commit = materialise(args.compare, before_tree)
    labels = (f"{args.compare} = {commit} (git archive)", f"this checkout, {checkout_label()}")
    trees = {"before": before_tree, "after": REPO}
    if args.dry_run:
        for name, tree in trees.items():
            dry_run(f"{name} ({labels[name == 'after']})", root / name, tree, args, extra)
        return
    print(f"before: {labels[0]}\nafter:  {labels[1]}\nruns under {root}")
    header(args)
    runs: dict[str, list[Run]] = {"before": [], "after": []}
    for i in range(1, args.repeat + 1):
        for name, tree in trees.items():
            label = f"{name}#{i}"
            print(f"{label}: building ... (load average {load()})", flush=True)
            run = build_once(label, root / f"{name}_{i}", tree, args, extra)
            runs[name].append(run)
            print(f"{label}: {run.build.wall:.1f} s wall, {run.build.cpu:.1f} s CPU", flush=True)
            if not args.keep:
                shutil.rmtree(run.workdir / "results", ignore_errors=True)
    print_compare(runs["before"], runs["after"], labels, args)
    print(f"\nload average (1, 5, 15 min) at the end: {load()}")
    if args.csv:
        compare_table(runs["before"], runs["after"]).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
