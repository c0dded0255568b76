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
        (f"policy.{programme}.batch_years", y)
        for programme in ("smart_city", "low_carbon")
        for y in (_get(config, f"policy.{programme}.batch_years") or [])
    ]
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


def config_problems(
    config: Mapping[str, Any], header_aliases: str | Path = HEADER_ALIASES
) -> list[str]:
    """Every contradiction between keys of a schema-valid `config`, as messages naming the keys.

    Checked: years.start <= years.end; the policy batch years of each programme in batch order; the
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
    for programme in ("smart_city", "low_carbon"):
        batch_years = _get(config, f"policy.{programme}.batch_years") or []
        if list(batch_years) != sorted(batch_years):
            out.append(
                f"policy.{programme}.batch_years = {list(batch_years)}: batch n+1 cannot start before "
                "batch n (the years must be in increasing order)"
            )
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
    demo.effects.baseline_end, psm.baseline_end (also: before the first policy year),
    heterogeneity.baseline_before (a window year before it; not after the first policy year),
    spatial.map_years, spatial.pilot_map_year, spatial.hotspot_years, placebo.mixed.time_scope and
    each robustness grid spec's trends.baseline_end. Empty when years.start > years.end (an error)."""
    start, end = _get(config, "years.start"), _get(config, "years.end")
    if start is None or end is None or start > end:
        return []
    return _window_warnings(config, start, end)


def check_config(config: Mapping[str, Any], header_aliases: str | Path = HEADER_ALIASES) -> None:
    """Raise `ConfigError` listing every problem of `config_problems`, if there is any."""
    problems = config_problems(config, header_aliases)
    if problems:
        raise ConfigError(problems)
