"""The one way a rule's script runs its main function.

Every script in workflow/scripts/ ends with

    if __name__ == "__main__" or "snakemake" in globals():
        run(main, globals())

`run` then:
- under Snakemake's `script:` directive, calls `main(inputs, outputs, params)` with the rule's
  `snakemake.input`, `snakemake.output` and `snakemake.params` (config reaches scripts only this way);
- from the command line, parses `--input name=path`, `--output name=path` and `--params params.yaml`
  so a user can run one step outside Snakemake (see `python workflow/scripts/<rule>.py --help`);
- sends `logging` to the rule's log file (and to stderr), caps BLAS threads at the rule's `threads`
  (threadpoolctl),
  and turns an `InputError` into a short message on stderr and exit code 1 instead of a traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from threadpoolctl import threadpool_limits

from dualpilot.core.errors import InputError, SpecificationError

log = logging.getLogger("dualpilot")


class Named(SimpleNamespace):
    """Attribute and item access to named files or parameters, like Snakemake's namedlists."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def keys(self):
        return self.__dict__.keys()


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)


def _pairs(items: list[str], what: str) -> Named:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--{what} expects name=path, got {item!r}")
        out[name] = value
    return Named(**out)


def _from_command_line(doc: str | None) -> tuple[Named, Named, Named, str | None, int]:
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--input", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--output", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--params", metavar="YAML", help="a YAML file mapping each param name to its value")
    parser.add_argument("--log", metavar="PATH")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    params = {}
    if args.params:
        import yaml

        with open(args.params, encoding="utf-8") as fh:
            params = yaml.safe_load(fh) or {}
    return (
        _pairs(args.input, "input"),
        _pairs(args.output, "output"),
        Named(**params),
        args.log,
        args.threads,
    )


def run(main: Callable[[Any, Any, Any], None], namespace: dict[str, Any]) -> None:
    """Run `main(inputs, outputs, params)` from Snakemake or from the command line."""
    smk = namespace.get("snakemake")
    if smk is not None:
        inputs, outputs, params = smk.input, smk.output, smk.params
        log_file = smk.log[0] if len(smk.log) else None
        threads = int(smk.threads)
    else:
        inputs, outputs, params, log_file, threads = _from_command_line(namespace.get("__doc__"))
    # One BLAS/OpenMP thread per core the rule asked for, so jobs side by side do not oversubscribe.
    # numpy is loaded by now, so only a runtime limit works (Snakemake also exports OMP/OPENBLAS/
    # MKL_NUM_THREADS = threads to its jobs; from the command line this is the only limit).
    threadpool_limits(threads)
    _setup_logging(log_file)
    try:
        main(inputs, outputs, params)
    except InputError as err:
        log.error("%s", err.render())
        print(f"\nERROR: {err.render()}\n", file=sys.stderr)
        sys.exit(1)
    except SpecificationError as err:
        log.error("%s", err)
        print(f"\nERROR: {err}\n", file=sys.stderr)
        sys.exit(1)
    # Move every object to the collector's permanent generation, so that the interpreter's exit skips
    # a last collection over everything pyfixest, scipy and matplotlib imported (~0.3 s CPU a job).
    gc.freeze()
