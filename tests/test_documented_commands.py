"""Every command in README.md and docs/*.md works as written (issue 12, item 7).

The test reads the fenced shell blocks (```bash, ```sh, ```shell, ```console: only the `$ ` lines of a console
block) and the inline code spans that start with `snakemake` of README.md and docs/*.md. Continuation lines
(`\\`) are joined, comments dropped, `&&`/`;` chains split into commands, env-var prefixes (`A=1 cmd`) and
earlier `export`s of the same block kept as the command's environment. Then, for each command:

- `snakemake ...` (also `.venv/bin/snakemake`, `python -m snakemake`) runs as a dry run (`-n` added) in a
  temporary copy of the workflow, with `/path/to/extracts` replaced by a folder of demo extracts and
  `<name>` placeholders by `name`. Commands that come to the same dry run share one; runs go through a
  pool of two processes. Before running, two mistakes are named: `--profile` (the README explains
  why only `--workflow-profile` works) and a `--config` item that is not a flat `key=value` (a nested value
  arrives as a string and fails validation; a target after `--config` is read as a config item). What a dry
  run cannot do is left out and said: `--report <file>` (a report needs a finished build; the rest of the
  command is dry-run, tests/test_report.py builds one) and `--sdm conda` when conda is not installed
  (tests/test_envs.py checks the environments); each test prints what it left out (`pytest -rA`). A pipe
  into `dot` runs when graphviz is installed.
- `python workflow/scripts/<rule>.py ...` runs for real in the copy, after the demo panel is built there.
- `python bench/<script>.py ...`: `--help` works and lists every option the command uses (benchmarks are
  never run by tests: they take minutes).
- `pip install`: the requirement files exist and every `name==version` equals the repository's pin;
  `python -m venv`: not run (it creates an environment); `python -m pytest <paths>`: the paths exist and the
  markers of `-m` are registered (the suite is not run from inside itself); `export`: every variable is read by the workflow's files;
  `apt-get install`: the packages are the ones .ci/run installs; `.ci/slurm/*.sh`: exists and is executable,
  not run (it starts a SLURM cluster as root; tests/test_slurm.py does, on request).

Any other command fails the test: a new kind of documented command needs a check here. So does a command the
extraction would miss (a snakemake command in a fenced block without a shell language, a command in an
indented code block). A failure names the document, the line and the command as written.

Overlays: nested keys are overridden with `--configfile` overlay files, shipped in config/examples/; each is
used by a documented command, a YAML block that names one shows its settings, and a test shows why (a
nested `--config` value fails validation, an overlay merges key by key, a target after `--config` fails).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from workflow_helpers import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
INLINE_SNAKEMAKE = re.compile(r"`((?:[^\s`]*/)?snakemake(?:\s[^`]*)?)`")
INDENTED_COMMAND = re.compile(
    r"^( {4,}|\t)(\$ )?((\S*/)?(snakemake|python[\d.]*)|\.venv/bin/\S+)\s"
)
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: Placeholders of the docs and what a test puts in their place (`<name>` becomes `name`).
RAW_PLACEHOLDER = "/path/to/extracts"
ANGLE_PLACEHOLDER = re.compile(r"<([A-Za-z_][\w-]*)>")
SEPARATORS = {"&&", "||", ";", "|"}
REDIRECTIONS = {">", ">>", "<", "2>"}


@dataclass(frozen=True)
class Command:
    """One documented command: where it is, how it reads, and its words after parsing."""

    doc: str  # path relative to the repository
    line: int  # line of the command's first line
    text: str  # as written (continuations joined, prompt and comment removed)
    argv: tuple[str, ...]  # words without the env-var prefix
    env: tuple[tuple[str, str], ...] = ()  # prefix assignments and earlier exports of the block
    pipe_to: tuple[str, ...] = ()  # the command its output is piped into, if any
    inline: bool = False  # an inline code span rather than a fenced block

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def describe(self) -> str:
        return f"{self.where}: `{self.text}`"


# ---------------------------------------------------------------------------------------------- extraction


def fenced_blocks(text: str):
    """Yield (language, line number of the block's first content line, content lines) of each fence."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3).lower()
        start, body = i + 2, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        yield lang, start, body
        i += 1


def _logical_lines(lang: str, start: int, body: list[str]):
    """(line number, text) of each shell line of a block: continuations joined, console output dropped."""
    pending, first = "", None
    for number, raw in enumerate(body, start):
        line = raw.rstrip()
        if first is None:
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            first = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield first, (pending + line).strip()
        pending, first = "", None
    if first is not None:
        yield first, pending.strip()


def _words(text: str) -> list[str]:
    lexer = shlex.shlex(ANGLE_PLACEHOLDER.sub(r"\1", text), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words = []
    for word in lexer:
        if word.startswith("#"):
            break
        words.append(word)
    return words


def _as_written(text: str) -> str:
    """The command without its trailing comment, for messages."""
    return re.sub(r"\s+#\s.*$", "", text).strip()


def split_commands(doc: str, line: int, text: str, env: dict[str, str], inline: bool = False):
    """The commands of one shell line. `export`s update `env` (the block's environment) and are commands
    too; a pipe's consumer rides on its producer (`pipe_to`); redirections are dropped."""
    pieces: list[list[str]] = [[]]
    ops: list[str] = []
    words = iter(_words(text))
    for word in words:
        if word in SEPARATORS:
            pieces.append([])
            ops.append(word)
        elif word in REDIRECTIONS:
            next(words, None)
        else:
            pieces[-1].append(word)
    commands = []
    for i, argv in enumerate(pieces):
        if not argv or (i > 0 and ops[i - 1] == "|"):
            continue
        prefix = {}
        while argv and ENV_ASSIGNMENT.match(argv[0]):
            name, _, value = argv.pop(0).partition("=")
            prefix[name] = value
        if argv and argv[0] == "export":
            env.update(dict(a.split("=", 1) for a in argv[1:] if "=" in a))
        pipe_to = tuple(pieces[i + 1]) if i < len(ops) and ops[i] == "|" else ()
        commands.append(
            Command(
                doc=doc,
                line=line,
                text=_as_written(text),
                argv=tuple(argv),
                env=tuple({**env, **prefix}.items()),
                pipe_to=pipe_to,
                inline=inline,
            )
        )
    return commands


def extract_commands(doc: str, text: str) -> list[Command]:
    """Every command of the shell blocks and every inline `snakemake ...` span of one Markdown text."""
    commands: list[Command] = []
    for lang, start, body in fenced_blocks(text):
        if lang not in SHELL_LANGS:
            continue
        env: dict[str, str] = {}
        for number, line in _logical_lines(lang, start, body):
            commands += split_commands(doc, number, line, env)
    fenced_lines = _fenced_line_numbers(text)
    for number, line in enumerate(text.splitlines(), 1):
        if number in fenced_lines:
            continue
        for span in INLINE_SNAKEMAKE.findall(line):
            if "..." not in span and "<" not in span:
                commands += split_commands(doc, number, span, {}, inline=True)
    return commands


def _fenced_line_numbers(text: str) -> set[int]:
    """Line numbers (from 1) of every fence line and fenced line."""
    numbers: set[int] = set()
    for _, start, body in fenced_blocks(text):
        numbers.update(range(start - 1, start + len(body) + 1))
    return numbers


def unlabelled_command_blocks(doc: str, text: str) -> list[str]:
    """Commands the extraction would miss: a snakemake command in a fenced block without a shell
    language, or a command in an indented code block."""
    found = []
    for lang, start, body in fenced_blocks(text):
        if lang in SHELL_LANGS or lang not in ("", "text"):
            continue
        for offset, line in enumerate(body):
            if re.match(r"^\s*(\$ )?(\S*/)?snakemake\s", line):
                found.append(f"{doc}:{start + offset}: `{line.strip()}` (label the block ```bash)")
    fenced = _fenced_line_numbers(text)
    for number, line in enumerate(text.splitlines(), 1):
        if number not in fenced and INDENTED_COMMAND.match(line):
            found.append(
                f"{doc}:{number}: `{line.strip()}` (indented code: make it a ```bash block)"
            )
    return found


def documented_commands() -> list[Command]:
    commands = []
    for path in DOCS:
        commands += extract_commands(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"))
    return commands


# ---------------------------------------------------------------------------------------- classification


def _is_python(word: str) -> bool:
    return re.fullmatch(r"(\S*/)?python(3(\.\d+)?)?", word) is not None


def snakemake_args(argv: tuple[str, ...]) -> tuple[str, ...] | None:
    """The arguments of a snakemake invocation, or None when `argv` is not one."""
    if argv and re.fullmatch(r"(\S*/)?snakemake", argv[0]):
        return argv[1:]
    if len(argv) >= 3 and _is_python(argv[0]) and argv[1:3] == ("-m", "snakemake"):
        return argv[3:]
    return None


def kind(command: Command) -> str | None:
    """What sort of command this is (None: unknown to this test)."""
    argv = command.argv
    if snakemake_args(argv) is not None:
        return "snakemake"
    if not argv:
        return None
    head = argv[0]
    if head == "export":
        return "export"
    if _is_python(head) and len(argv) > 1:
        if argv[1:3] == ("-m", "venv"):
            return "venv"
        if argv[1:3] == ("-m", "pytest"):
            return "pytest"
        if argv[1:3] == ("-m", "pip"):
            return "pip"
        if argv[1].startswith("bench/") and argv[1].endswith(".py"):
            return "bench"
        if argv[1].startswith("workflow/scripts/") and argv[1].endswith(".py"):
            return "script"
    if re.fullmatch(r"(\S*/)?pip3?", head):
        return "pip"
    if head == "apt-get":
        return "apt"
    if head.startswith(".ci/") and head.endswith(".sh"):
        return "ci_script"
    return None


def static_problems(args: tuple[str, ...]) -> list[str]:
    """Mistakes a snakemake command line shows without running: --profile, non-flat --config items."""
    problems = []
    if "--profile" in args:
        problems.append(
            "--profile: Snakemake 9 still loads profiles/default as the workflow profile, which overrides "
            "it key by key; use --workflow-profile"
        )
    in_config = False
    for word in args:
        if word == "--config":
            in_config = True
        elif word.startswith("-"):
            in_config = False
        elif in_config:
            key, sep, value = word.partition("=")
            if not sep:
                problems.append(
                    f"{word!r} after --config is read as a config item, not a target: put targets "
                    "before --config"
                )
                in_config = False
            elif value.lstrip()[:1] in ("{", "["):
                problems.append(
                    f"--config {word!r}: Snakemake passes nested values as strings, so validation fails; "
                    "override nested keys with a --configfile overlay"
                )
    return problems


def dry_run_args(args: tuple[str, ...], raw_dir: Path) -> tuple[list[str], list[str]]:
    """The arguments of the dry run of a documented snakemake command, and what was left out and why."""
    out, notes = [], []
    conda = shutil.which("conda") or shutil.which("mamba")
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i].replace(RAW_PLACEHOLDER, str(raw_dir))
        if word == "--report":
            follows = words[i + 1] if i + 1 < len(words) else ""
            report = follows if re.search(r"\.(html|zip)$", follows) else "report.html"
            notes.append(
                f"--report {report}: a report needs a finished build (tests/test_report.py)"
            )
            i += 2 if report == follows else 1
            continue
        if (
            not conda
            and word in ("--sdm", "--software-deployment-method")
            and words[i + 1 : i + 2] == ["conda"]
        ):
            notes.append("--sdm conda: conda is not installed (tests/test_envs.py checks envs/)")
            i += 2
            continue
        if not conda and word == "--conda-create-envs-only":
            notes.append("--conda-create-envs-only: conda is not installed")
            i += 1
            continue
        out.append(word)
        i += 1
    return ["-n", *out], notes


# ----------------------------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """A dry run: its arguments, exit code and output, and what became of a pipe into another tool."""

    args: tuple[str, ...]
    returncode: int
    output: str
    piped: subprocess.CompletedProcess | None = None
    notes: list[str] = field(default_factory=list)


def _dry_run(args: tuple[str, ...], env: dict[str, str], pipe_to: tuple[str, ...], workdir: Path):
    copy_workflow(workdir)
    try:
        proc = snakemake(workdir, *args, check=False, timeout=300, env=env)
    except subprocess.TimeoutExpired as err:
        return Outcome(args, -1, f"no answer in {err.timeout} s")
    outcome = Outcome(args, proc.returncode, proc.stdout + proc.stderr)
    if pipe_to and shutil.which(pipe_to[0]):
        outcome.piped = subprocess.run(
            list(pipe_to), input=proc.stdout, capture_output=True, text=True, cwd=workdir
        )
    elif pipe_to:
        outcome.notes.append(f"| {' '.join(pipe_to)}: {pipe_to[0]} is not installed")
    return outcome


COMMANDS = documented_commands()


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory, pristine_demo_raw: Path) -> dict[Command, Outcome]:
    """The dry run of every documented snakemake command, with what was left out of it. Commands that
    come to the same dry run share one; runs go two at a time, each in its own copy of the workflow."""
    base = tmp_path_factory.mktemp("documented")
    planned: dict[Command, tuple] = {}
    for c in COMMANDS:
        if kind(c) == "snakemake" and not static_problems(snakemake_args(c.argv)):
            args, notes = dry_run_args(snakemake_args(c.argv), pristine_demo_raw)
            planned[c] = ((tuple(args), c.env, c.pipe_to), notes)
    unique = list(dict.fromkeys(key for key, _ in planned.values()))
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(
            lambda i: _dry_run(unique[i][0], dict(unique[i][1]), unique[i][2], base / f"run{i}"),
            range(len(unique)),
        )
        outcomes = dict(zip(unique, runs, strict=True))
    return {
        c: Outcome(**{**vars(outcomes[key]), "notes": notes + outcomes[key].notes})
        for c, (key, notes) in planned.items()
    }


def _failure(command: Command, message: str) -> str:
    return f"{command.describe()}\n  {message}"


def _check_snakemake(command: Command, dry_runs) -> None:
    problems = static_problems(snakemake_args(command.argv))
    assert not problems, _failure(command, "; ".join(problems))
    outcome = dry_runs[command]
    for note in outcome.notes:
        print(f"{command.where}: not part of the dry run: {note}")
    assert outcome.returncode == 0, _failure(
        command,
        f"dry run `snakemake {' '.join(outcome.args)}` failed ({outcome.returncode}):\n"
        f"{outcome.output[-3000:]}",
    )
    if outcome.piped is not None:
        assert outcome.piped.returncode == 0, _failure(command, outcome.piped.stderr[-2000:])


def _check_script(command: Command, tmp_path: Path, raw_dir: Path) -> None:
    from demo_mutations import build_panel_outputs

    work = copy_workflow(tmp_path / "wf")
    build_panel_outputs(raw_dir, work / "results")
    argv = [sys.executable] + [a.replace("/tmp/", f"{tmp_path}/") for a in command.argv[1:]]
    proc = subprocess.run(
        argv, cwd=work, env={**os.environ, **dict(command.env)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, _failure(
        command, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    )
    for option, value in zip(argv, argv[1:], strict=False):
        name, _, path = value.partition("=")
        if option == "--output":
            assert (work / path).exists(), _failure(
                command, f"output {name} = {path} was not written"
            )


def _check_bench(command: Command) -> None:
    script = REPO / command.argv[1]
    assert script.is_file(), _failure(command, f"{command.argv[1]} does not exist")
    proc = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, _failure(command, f"--help failed:\n{proc.stderr[-2000:]}")
    own = command.argv[2 : command.argv.index("--")] if "--" in command.argv else command.argv[2:]
    unknown = [
        w.split("=")[0] for w in own if w.startswith("--") and w.split("=")[0] not in proc.stdout
    ]
    assert not unknown, _failure(command, f"options not in `{command.argv[1]} --help`: {unknown}")


def _pins() -> dict[str, str]:
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (REPO / name).read_text(encoding="utf-8").splitlines():
            package, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                pins[package.lower()] = version
    return pins


def _check_pip(command: Command) -> None:
    words = list(command.argv)
    assert "install" in words, _failure(command, "only `pip install` is checked")
    pins = _pins()
    for i, word in enumerate(words):
        if word == "-r":
            assert (REPO / words[i + 1]).is_file(), _failure(
                command, f"{words[i + 1]} does not exist"
            )
        elif "==" in word:
            package, version = word.split("==")
            assert pins.get(package.lower()) == version, _failure(
                command, f"{word}: the repository pins {package}=={pins.get(package.lower())}"
            )


def _check_pytest(command: Command) -> None:
    """The paths exist and every marker of `-m` is registered (pyproject.toml)."""
    markers = {m.split(":")[0] for m in _pyproject()["tool"]["pytest"]["ini_options"]["markers"]}
    words = command.argv[3:]
    values = {i + 1 for i, w in enumerate(words) if w in ("-m", "-k", "-o", "-p")}
    for i, word in enumerate(words):
        if i in values and words[i - 1] == "-m":
            unknown = set(re.findall(r"\w+", word)) - {"and", "or", "not"} - markers
            assert not unknown, _failure(command, f"-m {word!r}: unregistered markers {unknown}")
        elif i not in values and not word.startswith("-"):
            assert (REPO / word.split("::")[0]).exists(), _failure(
                command, f"{word} does not exist"
            )


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _check_export(command: Command) -> None:
    names = [w.split("=")[0] for w in command.argv[1:]]
    sources = [p for d in ("profiles", "workflow") for p in (REPO / d).rglob("*") if p.is_file()]
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sources)
    unread = [n for n in names if n not in text]
    assert not unread, _failure(command, f"no file of profiles/ or workflow/ reads {unread}")


def _check_apt(command: Command) -> None:
    packages = [w for w in command.argv[1:] if not w.startswith("-") and w != "install"]
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    missing = [p for p in packages if p not in ci]
    assert not missing, _failure(command, f"{missing} are not installed by .ci/run")


def _check_ci_script(command: Command) -> None:
    script = REPO / command.argv[0]
    assert script.is_file() and os.access(script, os.X_OK), _failure(
        command, f"{command.argv[0]} is not an executable file"
    )


def _note_venv(command: Command) -> None:
    print(f"{command.where}: not run: `{command.text}` creates a virtual environment")


#: The check of each kind of command that needs no fixture.
CHECKS = {
    "bench": _check_bench,
    "pip": _check_pip,
    "pytest": _check_pytest,
    "export": _check_export,
    "apt": _check_apt,
    "ci_script": _check_ci_script,
    "venv": _note_venv,
}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.where}:{' '.join(c.argv)[:60]}")
def test_documented_command(command: Command, request, tmp_path: Path):
    what = kind(command)
    assert what is not None, _failure(
        command, "unknown kind of command: add a check to tests/test_documented_commands.py"
    )
    if what == "snakemake":
        _check_snakemake(command, request.getfixturevalue("dry_runs"))
    elif what == "script":
        _check_script(command, tmp_path, request.getfixturevalue("pristine_demo_raw"))
    else:
        CHECKS[what](command)


# ------------------------------------------------------------------------------ the extraction is sound


SAMPLE = """\
Text with `snakemake --cores 2 baseline` inline and `snakemake ... placebo` (elided, skipped).

```bash
# a comment line
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/snakemake --cores all
export DUALPILOT_SLURM_ACCOUNT=<account>
OMP_NUM_THREADS=1 snakemake -c2 placebo \\
    --config raw_dir=/path/to/extracts   # trailing comment
snakemake --dag | dot -Tsvg > dag.svg
```

```console
$ .venv/bin/snakemake -n
Building DAG of jobs...
```

```
snakemake --cores 2
```

    python bench/scale.py
"""


def test_extraction_handles_every_documented_form():
    commands = extract_commands("X.md", SAMPLE)
    found = [(c.line, c.argv, dict(c.env), c.pipe_to, c.inline) for c in commands]
    assert found == [
        (5, ("python3", "-m", "venv", ".venv"), {}, (), False),
        (5, (".venv/bin/pip", "install", "-r", "requirements.txt"), {}, (), False),
        (5, (".venv/bin/snakemake", "--cores", "all"), {}, (), False),
        (
            6,
            ("export", "DUALPILOT_SLURM_ACCOUNT=account"),
            {"DUALPILOT_SLURM_ACCOUNT": "account"},
            (),
            False,
        ),
        (
            7,
            ("snakemake", "-c2", "placebo", "--config", "raw_dir=/path/to/extracts"),
            {"DUALPILOT_SLURM_ACCOUNT": "account", "OMP_NUM_THREADS": "1"},
            (),
            False,
        ),
        (
            9,
            ("snakemake", "--dag"),
            {"DUALPILOT_SLURM_ACCOUNT": "account"},
            ("dot", "-Tsvg"),
            False,
        ),
        (13, (".venv/bin/snakemake", "-n"), {}, (), False),
        (1, ("snakemake", "--cores", "2", "baseline"), {}, (), True),
    ]
    assert commands[4].text.endswith("raw_dir=/path/to/extracts")
    assert [kind(c) for c in commands] == ["venv", "pip", "snakemake", "export"] + ["snakemake"] * 4
    assert unlabelled_command_blocks("X.md", SAMPLE) == [
        "X.md:18: `snakemake --cores 2` (label the block ```bash)",
        "X.md:21: `python bench/scale.py` (indented code: make it a ```bash block)",
    ]


def test_static_checks_name_the_known_mistakes():
    assert static_problems(("--cores", "2", "results/x", "--config", "raw_dir=/d")) == []
    (target,) = static_problems(("--cores", "2", "--config", "raw_dir=/d", "results/x"))
    assert "put targets before --config" in target
    (nested,) = static_problems(("placebo", "--config", "placebo={draws: 5000}"))
    assert "--configfile overlay" in nested
    (profile,) = static_problems(("--profile", "profiles/slurm", "placebo"))
    assert "--workflow-profile" in profile


def test_the_docs_hold_commands_and_no_hidden_ones():
    """The extraction finds the README's commands; no snakemake command hides in an unlabelled block."""
    readme = [c for c in COMMANDS if c.doc == "README.md" and kind(c) == "snakemake"]
    assert len(readme) >= 5, readme
    hidden = [
        found
        for path in DOCS
        for found in unlabelled_command_blocks(
            str(path.relative_to(REPO)), path.read_text(encoding="utf-8")
        )
    ]
    assert not hidden, "\n".join(hidden)


# -------------------------------------------------------------------- overlays: the way to nested keys

EXAMPLES = REPO / "config/examples"


def test_nested_keys_need_an_overlay_file(tmp_path: Path, pristine_demo_raw: Path):
    """README: a target after --config fails; a nested `--config` value fails validation; the same key in
    a --configfile overlay merges key by key (the schema requires every key of `placebo:`, so an overlay
    that replaced the block instead would fail validation too)."""
    work = copy_workflow(tmp_path)
    raw = f"raw_dir={pristine_demo_raw}"
    swallowed = snakemake(work, "-n", "--config", raw, "results/panel/panel.parquet", check=False)
    assert swallowed.returncode != 0
    assert "Unparsable value: 'results/panel/panel.parquet'" in swallowed.stdout + swallowed.stderr
    snakemake(work, "-n", "results/panel/panel.parquet", "--config", raw)
    nested = snakemake(work, "placebo", "-n", "--config", "placebo={shards: 1}", check=False)
    assert nested.returncode != 0 and "shards" in nested.stdout + nested.stderr
    overlay = snakemake(work, "placebo", "-n", "--configfile", "config/examples/one_shard.yaml")
    config = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
    counts = re.search(r"^placebo_shard\s+(\d+)$", overlay.stdout, re.M)
    assert counts and int(counts.group(1)) == len(config["placebo"]["kinds"]), overlay.stdout[
        -3000:
    ]


def test_overlay_examples_are_shown_and_used_in_the_docs():
    """Each config/examples/*.yaml is used by a documented command, and a YAML block that names one (in its
    first line or the four lines before the block) shows the same settings."""
    used = {w for c in COMMANDS for w in c.argv if w.startswith("config/examples/")}
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert examples
    for example in examples:
        name = str(example.relative_to(REPO))
        assert name in used, f"{name} is used by no documented command"
    shown = 0
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for lang, start, body in fenced_blocks(text):
            context = "\n".join(lines[max(start - 6, 0) : start - 1] + body[:1])
            named = re.findall(r"config/examples/[\w.-]+\.yaml", context)
            if lang != "yaml" or not named:
                continue
            settings = yaml.safe_load((REPO / named[-1]).read_text(encoding="utf-8"))
            assert yaml.safe_load("\n".join(body)) == settings, (
                f"{path.relative_to(REPO)}:{start}: the block differs from {named[-1]}"
            )
            shown += 1
    assert shown, "no document shows an overlay example"
