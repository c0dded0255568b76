"""Cross-field checks of the configuration: settings that are each valid but contradict each other.

workflow/schemas/config.schema.yaml checks every key on its own (types, ranges, required keys);
`config_problems` checks what a JSON schema cannot: pairs and groups of keys. Each problem names the
key(s) as dotted paths (``years.start``, ``placebo.shards``) and the values, so the fix is obvious.
workflow/rules/common.smk calls `check_config` right after `validate`, so a bad combination stops
`snakemake -n` before any job runs (docs/raw-data.md lists the checks).

`config_warnings` lists year settings of single analyses that fall outside the study window (or after the
first policy year): with a narrower `years:` the panel alone is still worth building, so these do not stop
the run; common.smk prints them as warnings, and the analysis that reads the key fails if it runs.

Only the standard library is imported: this module runs inside Snakemake's own process.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The shipped header aliases (resources/yearbook/header_aliases.csv): the industries of the employment
#: tables and their headers by edition, which `outcome_industry` is checked against.
HEADER_ALIASES = (
    Path(__file__).resolve().parents[4] / "resources" / "yearbook" / "header_aliases.csv"
)
#: The employment variable of the alias table that is no industry: an industry's share is taken of it.
TOTAL_EMPLOYMENT = "total_emp"


class ConfigError(ValueError):
    """The configuration contradicts itself; the message lists every problem with its key(s)."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        lines = [f"the configuration is inconsistent ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append(
            "Fix config/config.yaml or your --configfile overlay (nested keys cannot be set with --config)."
        )
        super().__init__("\n".join(lines))


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _in_window(key: str, year: Any, start: int, end: int) -> list[str]:
    if year is None or start <= year <= end:
        return []
    return [f"{key} = {year} lies outside the study window years.start..years.end = {start}..{end}"]


def _range_problems(key: str, pair: Any) -> list[str]:
    if isinstance(pair, Sequence) and len(pair) == 2 and pair[0] > pair[1]:
        return [f"{key} = {list(pair)}: the first value is larger than the second"]
    return []


def _window_warnings(config: Mapping[str, Any], start: int, end: int) -> list[str]:
    out = []
    policy_years = [
        (f"programmes.{key}.batch_years", y)
        for key in _dual_keys(config)
        for y in (_get(config, f"programmes.{key}.batch_years") or [])
    ]
    for key, y in policy_years:
        if not start <= y <= end:
            out.append(
                f"{key} has {y}, outside the study window years.start..years.end = {start}..{end}: "
                + (
                    "its cities count as never treated by that batch"
                    if y > end
                    else "its cities have no year before the pilot"
                )
            )
    first_policy = min(policy_years, key=lambda p: p[1]) if policy_years else None
    for key in ("demo.effects.baseline_end", "psm.baseline_end"):
        year = _get(config, key)
        out += _in_window(key, year, start, end)
        if year is not None and first_policy and year >= first_policy[1]:
            out.append(
                f"{key} = {year} is not before the first policy year {first_policy[1]} "
                f"({first_policy[0]}): baseline characteristics would include treated years"
            )
    before = _get(config, "heterogeneity.baseline_before")
    if before is not None:
        if not start < before <= end + 1:
            out.append(
                f"heterogeneity.baseline_before = {before} leaves no year of the window "
                f"years.start..years.end = {start}..{end} before it (it must lie in {start + 1}..{end + 1})"
            )
        if first_policy and before > first_policy[1]:
            out.append(
                f"heterogeneity.baseline_before = {before} is after the first policy year "
                f"{first_policy[1]} ({first_policy[0]}): groups would be defined on treated years"
            )
    for i, year in enumerate(_get(config, "spatial.map_years") or []):
        out += _in_window(f"spatial.map_years[{i}]", year, start, end)
    out += _in_window("spatial.pilot_map_year", _get(config, "spatial.pilot_map_year"), start, end)
    for i, year in enumerate(_get(config, "spatial.hotspot_years") or []):
        out += _in_window(f"spatial.hotspot_years[{i}]", year, start, end)
    for i, year in enumerate(_get(config, "placebo.mixed.time_scope") or []):
        out += _in_window(f"placebo.mixed.time_scope[{i}]", year, start, end)
    specs = _get(config, "robustness.grid.specs") or []
    for i, spec in enumerate(specs):
        year = _get(spec, "trends.baseline_end") if isinstance(spec, Mapping) else None
        out += _in_window(f"robustness.grid.specs[{i}].trends.baseline_end", year, start, end)
    return out


def _edition(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def outcome_industry_problems(
    config: Mapping[str, Any], header_aliases: str | Path = HEADER_ALIASES
) -> list[str]:
    """Problems of `outcome_industry` against the alias table `header_aliases`: the id must be an industry
    of the employment table (a `variable` of its employment rows other than total_emp; the known ids are
    listed), and some header of it must be accepted in every edition of the window (data years
    years.start..years.end, editions one later), else the editions without one are named."""
    industry = config.get("outcome_industry")
    if industry is None:
        return []
    path = Path(header_aliases)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if (r.get("table") or "").strip() == "employment"]
    except OSError as exc:
        return [f"outcome_industry = {industry!r} cannot be checked: {path}: {exc.strerror or exc}"]
    spans: dict[str, list[tuple[int | None, int | None]]] = {}
    for row in rows:
        variable = (row.get("variable") or "").strip()
        if variable and variable != TOTAL_EMPLOYMENT:
            spans.setdefault(variable, []).append(
                (_edition(row.get("first_edition") or ""), _edition(row.get("last_edition") or ""))
            )
    if industry not in spans:
        return [
            f"outcome_industry = {industry!r} is not an industry of the employment tables in {path}; "
            f"known ids: {', '.join(spans)}"
        ]
    start, end = _get(config, "years.start"), _get(config, "years.end")
    if start is None or end is None or start > end:
        return []
    missing = [
        edition
        for edition in range(start + 1, end + 2)
        if not any(
            (lo is None or lo <= edition) and (hi is None or edition <= hi)
            for lo, hi in spans[industry]
        )
    ]
    if not missing:
        return []
    return [
        f"outcome_industry = {industry!r} has no header in {path} for edition(s) "
        f"{', '.join(str(e) for e in missing)} (data years {_data_years(missing)}, inside years.start.."
        f"years.end = {start}..{end}): add the header that edition prints, with its first_edition and "
        "last_edition, to that file"
    ]


def _data_years(editions: Sequence[int]) -> str:
    """The data years of `editions` (edition E holds data year E - 1), e.g. "2011, 2012"."""
    return ", ".join(str(e - 1) for e in editions)


_RULE_KEYS = ("province_pilot_treats_cities", "subcity_pilot_treats_city")
_PROGRAMME_COLUMN = re.compile(r"^([a-z][a-z0-9]*)_(year|post|only_post|only)$")


def _dual_keys(config: Mapping[str, Any]) -> list[str]:
    """The keys of `dual` that `programmes` defines (the unknown ones are a `programme_problems` error)."""
    programmes = _get(config, "programmes") or {}
    return [k for k in (_get(config, "dual") or []) if k in programmes]


def programme_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems of the programme definitions (`programmes`, `dual`) and of the keys that name their columns.

    Checked: `dual` names two different programmes that `programmes` defines, not with the same pilot list
    and batch years; each programme's batch years
    are increasing without a year twice; programme names are unique; a grid recoding
    (robustness.grid.specs[i].policy) names a programme of the dual pair or a coding rule;
    descriptives.group_order lists groups of the dual pair; descriptives.variables names no treatment
    column of a programme outside the pair. The pilot-list files are checked by `programme_file_problems`.
    """
    out: list[str] = []
    programmes = _get(config, "programmes") or {}
    dual = list(_get(config, "dual") or [])
    unknown = [k for k in dual if k not in programmes]
    if unknown:
        out.append(
            f"dual = {dual} names programme(s) {unknown} that programmes does not define "
            f"(defined: {sorted(programmes)})"
        )
    if len(dual) == 2 and dual[0] == dual[1]:
        out.append(
            f"dual = {dual} names the programme {dual[0]!r} twice: the pair needs two programmes"
        )
    names: dict[str, str] = {}
    for key, block in programmes.items():
        if not isinstance(block, Mapping):
            continue
        batch_years = list(block.get("batch_years") or [])
        if batch_years != sorted(batch_years):
            out.append(
                f"programmes.{key}.batch_years = {batch_years}: batch n+1 cannot start before "
                "batch n (the years must be in increasing order)"
            )
        twice = sorted({y for y in batch_years if batch_years.count(y) > 1})
        if twice:
            out.append(
                f"programmes.{key}.batch_years = {batch_years}: year(s) {twice} given to more than one "
                "batch (each batch has its own policy year)"
            )
        name = block.get("name")
        if name in names:
            out.append(
                f"programmes.{key}.name = {name!r} is also the name of programmes.{names[name]}"
            )
        elif name is not None:
            names[name] = key
    pair = [k for k in dual if k in programmes]
    if len(pair) == 2 and pair[0] != pair[1]:
        a, b = (programmes[k] for k in pair)
        same = ("pilot_list", "batch_years")
        if (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and all(a.get(f) == b.get(f) for f in same)
        ):
            out.append(
                f"dual = {dual}: programmes.{pair[0]} and programmes.{pair[1]} have the same pilot_list "
                f"and batch_years, so the dual pilot would be either programme"
            )
    pair_names = {programmes[k].get("name"): k for k in pair if isinstance(programmes[k], Mapping)}
    for i, spec in enumerate(_get(config, "robustness.grid.specs") or []):
        override = spec.get("policy") if isinstance(spec, Mapping) else None
        for name in override or {}:
            if name not in _RULE_KEYS and name not in pair_names:
                out.append(
                    f"robustness.grid.specs[{i}].policy.{name}: {name!r} is neither the name of a "
                    f"programme of dual = {dual} (names: {sorted(pair_names)}) nor a rule of policy"
                )
    if len(pair) == 2:
        groups = ["none", *(f"{k}_only" for k in pair), "dual"]
        order = _get(config, "descriptives.group_order") or []
        bad = [g for g in order if g not in groups]
        if bad:
            out.append(
                f"descriptives.group_order = {list(order)} lists group(s) {bad} that the dual pair "
                f"{dual} does not have (its groups: {groups})"
            )
        for i, var in enumerate(_get(config, "descriptives.variables") or []):
            m = _PROGRAMME_COLUMN.match(str(var))
            if m and m.group(1) in programmes and m.group(1) not in pair:
                out.append(
                    f"descriptives.variables[{i}] = {var!r} is a column of programme "
                    f"{m.group(1)!r}, which is not in dual = {dual}"
                )
    return out


def programme_file_problems(config: Mapping[str, Any], root: str | Path = ".") -> list[str]:
    """Files of the programme definitions that do not exist, each naming its key and the paths looked at:
    a programme's pilot_list in neither <raw_dir>/policy/ nor resources/policy/ (both relative to `root`,
    the workflow's working directory), or its official_counts not in resources/policy/."""
    out: list[str] = []
    root = Path(root)
    raw_dir = Path(str(_get(config, "raw_dir") or ""))
    raw_policy = (raw_dir if raw_dir.is_absolute() else root / raw_dir) / "policy"
    shipped = root / "resources" / "policy"
    for key, block in (_get(config, "programmes") or {}).items():
        if not isinstance(block, Mapping):
            continue
        name = block.get("pilot_list")
        if name and not (raw_policy / name).exists() and not (shipped / name).exists():
            out.append(
                f"programmes.{key}.pilot_list = {name!r}: no such file in {raw_policy} or {shipped}"
            )
        counts = block.get("official_counts")
        if counts and not (shipped / counts).exists():
            out.append(f"programmes.{key}.official_counts = {counts!r}: no such file in {shipped}")
    return out


def config_problems(
    config: Mapping[str, Any], header_aliases: str | Path = HEADER_ALIASES
) -> list[str]:
    """Every contradiction between keys of a schema-valid `config`, as messages naming the keys.

    Checked: years.start <= years.end; the programme definitions (`programme_problems`); the
    event-study window (start < end, base inside it and before the dual start); duration bins (each
    [low, high] with low <= high, in increasing order without overlap); placebo.mixed.time_scope and
    placebo.time_random.shift_range (first <= second); placebo.shards <= placebo.draws;
    heterogeneity.shards <= heterogeneity.draws (1 when draws is 0); psm.method kernel needs
    psm.replacement true; outcome_industry an industry of `header_aliases` with a header in every edition
    of the window (`outcome_industry_problems`).
    """
    out: list[str] = []
    start, end = _get(config, "years.start"), _get(config, "years.end")
    if start is not None and end is not None and start > end:
        out.append(f"years.start = {start} is after years.end = {end}")
    out += programme_problems(config)
    window, base = _get(config, "event_study.window"), _get(config, "event_study.base")
    if window is not None and len(window) == 2:
        if window[0] >= window[1]:
            out.append(
                f"event_study.window = {list(window)}: the first value must be below the second"
            )
        elif base is not None and not window[0] <= base <= window[1]:
            out.append(
                f"event_study.base = {base} lies outside event_study.window = {list(window)}"
            )
        if base is not None and base >= 0:
            out.append(
                f"event_study.base = {base}: the reference year must be before the dual start (negative)"
            )
    bins = _get(config, "duration.bins") or []
    for i, b in enumerate(bins):
        out += _range_problems(f"duration.bins[{i}]", b)
        if i and b[0] <= bins[i - 1][1]:
            out.append(
                f"duration.bins[{i}] = {list(b)} overlaps or precedes duration.bins[{i - 1}] = "
                f"{list(bins[i - 1])}: bins must be increasing and disjoint"
            )
    out += _range_problems("placebo.mixed.time_scope", _get(config, "placebo.mixed.time_scope"))
    out += _range_problems(
        "placebo.time_random.shift_range", _get(config, "placebo.time_random.shift_range")
    )
    draws, shards = _get(config, "placebo.draws"), _get(config, "placebo.shards")
    if draws is not None and shards is not None and shards > draws:
        out.append(
            f"placebo.shards = {shards} exceeds placebo.draws = {draws}: a shard would have no draw"
        )
    draws, shards = _get(config, "heterogeneity.draws"), _get(config, "heterogeneity.shards")
    if draws is not None and shards is not None and shards > max(draws, 1):
        out.append(
            f"heterogeneity.shards = {shards} exceeds heterogeneity.draws = {draws}"
            + (
                " (no permutation test: use 1 shard)"
                if draws == 0
                else ": a shard would have no draw"
            )
        )
    if _get(config, "psm.method") == "kernel" and _get(config, "psm.replacement") is False:
        out.append(
            "psm.method = kernel needs psm.replacement = true (kernel matching reuses controls)"
        )
    out += outcome_industry_problems(config, header_aliases)
    return out


def config_warnings(config: Mapping[str, Any]) -> list[str]:
    """Year settings of single analyses outside the study window, as messages naming the keys:
    the batch years of the dual pair's programmes, demo.effects.baseline_end, psm.baseline_end (also:
    before the first policy year),
    heterogeneity.baseline_before (a window year before it; not after the first policy year),
    spatial.map_years, spatial.pilot_map_year, spatial.hotspot_years, placebo.mixed.time_scope and
    each robustness grid spec's trends.baseline_end. Empty when years.start > years.end (an error)."""
    start, end = _get(config, "years.start"), _get(config, "years.end")
    if start is None or end is None or start > end:
        return []
    return _window_warnings(config, start, end)


def check_config(
    config: Mapping[str, Any],
    root: str | Path | None = None,
    header_aliases: str | Path = HEADER_ALIASES,
) -> None:
    """Raise `ConfigError` listing every problem of `config_problems` and, when `root` (the working
    directory) is given, of `programme_file_problems`, if there is any."""
    problems = config_problems(config, header_aliases)
    if root is not None:
        problems += programme_file_problems(config, root)
    if problems:
        raise ConfigError(problems)
