"""Treatment coding of the dual pilot of two programmes (by default Smart City x Low-Carbon City; any pair of
the config's `programmes:`, `dualpilot.data.programmes`) on the city-year panel.

Rules (docs/treatment-coding.md):

- a ``prefecture`` entry treats the master city with its code, from its batch's policy year;
- a ``province`` entry treats every master city of that province, if ``province_pilot_treats_cities``;
- a ``county`` or ``district`` entry treats the prefecture it lies in, if ``subcity_pilot_treats_city``;
  an entry with an empty city_code (a county-level unit directly under a province or the XPCC) treats
  no city;
- a code that is not in the city master (a 地区/自治州/盟, e.g. 大兴安岭地区 232700) treats no city;
- a city's start year is the earliest year over all entries that treat it;
- a start year after ``last_year`` (the end of the study window) counts as never treated.

Ignored entries are logged at INFO level and listed by `pilot_assignments`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from dualpilot.core.errors import require_columns
from dualpilot.data.programmes import DEFAULT_PAIR, DUAL_POST, DUAL_YEAR, Pair

log = logging.getLogger(__name__)

#: Groups and treatment columns of the default pair (sc, lc); another pair's come from `Pair`
#: (dualpilot.data.programmes).
GROUPS = DEFAULT_PAIR.groups
TREATMENT_COLUMNS = DEFAULT_PAIR.treatment_columns
#: Programme names of the default pair, for `treatment_summary`'s programme column.
DEFAULT_NAMES = ("smart_city", "low_carbon")
_PILOT_REQUIRED = ("batch", "name", "level", "province", "city_code")
_MASTER_REQUIRED = ("city_code", "province")


def pilot_assignments(
    pilots: pd.DataFrame,
    master: pd.DataFrame,
    batch_years: Mapping[int, int],
    province_rule: bool,
    subcity_rule: bool,
) -> pd.DataFrame:
    """Which master city each pilot entry treats, and from which year, with the rule that applied.

    One row per (entry, treated city); an entry that treats no city gets one row with an empty
    city_code and the reason. Columns: batch, name, level, year, city_code, rule (self / province /
    subcity / ignored), reason. `province_rule` is ``province_pilot_treats_cities``; `subcity_rule` is
    ``subcity_pilot_treats_city``. Raises ValueError on a batch without a year or a province entry
    naming a province that has no city in the master.
    """
    require_columns(pilots, _PILOT_REQUIRED, "pilot list")
    require_columns(master, _MASTER_REQUIRED, "city master")
    batches = set(pilots["batch"].astype(int))
    unknown = sorted(batches - set(batch_years))
    if unknown:
        raise ValueError(f"no policy year configured for batch(es) {unknown}: {dict(batch_years)}")
    codes = set(master["city_code"])
    by_province = master.groupby("province")["city_code"].apply(sorted).to_dict()
    rows: list[dict[str, object]] = []

    def add(entry: pd.Series, year: int, code: str, rule: str, reason: str) -> None:
        rows.append(
            {
                "batch": int(entry["batch"]),
                "name": entry["name"],
                "level": entry["level"],
                "year": year,
                "city_code": code,
                "rule": rule,
                "reason": reason,
            }
        )

    for _, e in pilots.iterrows():
        year = int(batch_years[int(e["batch"])])
        level, code = e["level"], e["city_code"]
        if level == "province":
            if e["province"] not in by_province:
                raise ValueError(
                    f"province pilot {e['name']!r} names province {e['province']!r}, which has no "
                    f"city in the master"
                )
            if province_rule:
                for c in by_province[e["province"]]:
                    add(e, year, c, "province", "city of a pilot province")
            else:
                add(e, year, "", "ignored", "province pilots do not treat cities (option off)")
        elif level == "prefecture":
            if code in codes:
                add(e, year, code, "self", "listed prefecture-level city")
            else:
                add(e, year, "", "ignored", f"code {code} is not a city of the master")
        elif level in ("county", "district"):
            if not subcity_rule:
                add(e, year, "", "ignored", "sub-city pilots do not treat their city (option off)")
            elif code == "":
                add(e, year, "", "ignored", "lies in no prefecture-level unit")
            elif code in codes:
                add(e, year, code, "subcity", f"{level} pilot inside the city")
            else:
                add(e, year, "", "ignored", f"code {code} is not a city of the master")
        else:
            raise ValueError(f"unknown level {level!r} for pilot {e['name']!r}")
    out = pd.DataFrame(
        rows, columns=["batch", "name", "level", "year", "city_code", "rule", "reason"]
    )
    for r in out[out["rule"] == "ignored"].itertuples(index=False):
        log.info("pilot %s (batch %s, %s) treats no city: %s", r.name, r.batch, r.level, r.reason)
    return out


def pilot_start_years(
    pilots: pd.DataFrame,
    master: pd.DataFrame,
    batch_years: Mapping[int, int],
    province_rule: bool,
    subcity_rule: bool,
) -> pd.Series:
    """First treatment year of every treated master city: the minimum over all entries treating it.

    Returns an int Series indexed by city_code (str, sorted), named ``start_year``; untreated cities
    are absent. See `pilot_assignments` for the rules and errors.
    """
    a = pilot_assignments(pilots, master, batch_years, province_rule, subcity_rule)
    a = a[a["rule"] != "ignored"]
    out = a.groupby("city_code")["year"].min().astype(int).sort_index()
    out.name = "start_year"
    out.index.name = "city_code"
    return out


def code_treatment(
    panel: pd.DataFrame,
    smart_city: pd.DataFrame,
    low_carbon: pd.DataFrame,
    master: pd.DataFrame,
    *,
    sc_batch_years: Mapping[int, int],
    lc_batch_years: Mapping[int, int],
    province_pilot_treats_cities: bool,
    subcity_pilot_treats_city: bool,
    last_year: int,
) -> pd.DataFrame:
    """`code_dual` for the default pair (sc: smart city, lc: low carbon): see there."""
    return code_dual(
        panel,
        {"sc": smart_city, "lc": low_carbon},
        master,
        pair=DEFAULT_PAIR,
        batch_years={"sc": sc_batch_years, "lc": lc_batch_years},
        province_pilot_treats_cities=province_pilot_treats_cities,
        subcity_pilot_treats_city=subcity_pilot_treats_city,
        last_year=last_year,
    )


def code_dual(
    panel: pd.DataFrame,
    pilots: Mapping[str, pd.DataFrame],
    master: pd.DataFrame,
    *,
    pair: Pair,
    batch_years: Mapping[str, Mapping[int, int]],
    province_pilot_treats_cities: bool,
    subcity_pilot_treats_city: bool,
    last_year: int,
) -> pd.DataFrame:
    """Return a copy of `panel` (rows in order) with the treatment columns of `pair` added.

    `pilots` and `batch_years` map each programme key of the pair (a, b) to its pilot list and its batch
    years. Added: a_year, b_year (float, NaN = never treated within the window: no entry, or a start after
    `last_year`); dual_year = max(a_year, b_year) when both exist, else NaN; a_post, b_post, dual_post
    (int 0/1: year >= start year); a_only_post = a_post and not dual_post, b_only_post = b_post and not
    dual_post (with dual_post these make each city-year exactly one of none, a only, b only, dual);
    years_since_dual = year - dual_year (NaN if never dual); group (none / a_only / b_only / dual: the
    city's state at the end of the window).

    Raises ValueError if the panel lacks city_code/year, already holds a treatment column, holds a
    city not in the master, or a year after `last_year`, or if a programme of the pair has no list.
    """
    require_columns(panel, ("city_code", "year"), "panel")
    require_columns(master, _MASTER_REQUIRED, "city master")
    missing = [k for k in pair.keys if k not in pilots or k not in batch_years]
    if missing:
        raise ValueError(f"no pilot list or batch years given for programme(s) {missing}")
    clash = [c for c in pair.treatment_columns if c in panel.columns]
    if clash:
        raise ValueError(f"panel already has treatment column(s) {clash}")
    foreign = sorted(set(panel["city_code"]) - set(master["city_code"]))
    if foreign:
        raise ValueError(f"panel cities not in the city master: {foreign[:20]}")
    years = panel["year"].astype(int)
    if (years > last_year).any():
        raise ValueError(
            f"panel has years after last_year={last_year}: {sorted(set(years[years > last_year]))}"
        )

    def start(key: str) -> pd.Series:
        s = pilot_start_years(
            pilots[key],
            master,
            batch_years[key],
            province_pilot_treats_cities,
            subcity_pilot_treats_city,
        )
        s = s[s <= last_year].astype(float)
        return panel["city_code"].map(s).astype(float)

    out = panel.copy()
    a, b = start(pair.first), start(pair.second)
    dual = np.fmax(a, b).where(a.notna() & b.notna())
    y = years.astype(float)
    a_post = (y >= a).astype(int)  # comparisons with NaN are False
    b_post = (y >= b).astype(int)
    dual_post = (y >= dual).astype(int)
    a_only, b_only = pair.only_groups
    group = np.select(
        [a.notna() & b.notna(), a.notna(), b.notna()], ["dual", a_only, b_only], "none"
    )
    a_year, b_year = pair.year_columns
    a_post_col, b_post_col = pair.post_columns
    a_only_post, b_only_post = pair.only_post_columns
    return out.assign(
        **{
            a_year: a,
            b_year: b,
            DUAL_YEAR: dual,
            a_post_col: a_post,
            b_post_col: b_post,
            DUAL_POST: dual_post,
            a_only_post: a_post * (1 - dual_post),
            b_only_post: b_post * (1 - dual_post),
            "years_since_dual": y - dual,
            "group": pd.Series(group, index=out.index, dtype="str"),
        }
    )


def treatment_summary(
    panel: pd.DataFrame,
    *,
    pair: Pair = DEFAULT_PAIR,
    names: tuple[str, str] = DEFAULT_NAMES,
) -> pd.DataFrame:
    """Cities per programme cohort and end-of-window group, from a panel coded by `code_dual` for `pair`.

    Columns: programme (the `names` of the pair's programmes, e.g. smart_city / low_carbon, and dual),
    cohort (Int64 start year, <NA> = never), group, n_cities. Within each programme the rows cover every
    city exactly once. Raises ValueError if a city's treatment columns vary across its years.
    """
    year_of = dict(zip((*names, "dual"), (*pair.year_columns, DUAL_YEAR), strict=True))
    cols = ["city_code", *year_of.values(), "group"]
    require_columns(panel, tuple(cols), "panel")
    cities = panel[cols].drop_duplicates()
    dup = cities["city_code"][cities["city_code"].duplicated()]
    if not dup.empty:
        raise ValueError(f"treatment columns vary within city: {sorted(set(dup))[:20]}")
    parts = []
    for programme, col in year_of.items():
        g = (
            cities.assign(cohort=cities[col].astype("Int64"))
            .groupby(["cohort", "group"], dropna=False)
            .size()
            .rename("n_cities")
            .reset_index()
        )
        parts.append(g.assign(programme=programme))
    out = pd.concat(parts, ignore_index=True)[["programme", "cohort", "group", "n_cities"]]
    out["group"] = pd.Categorical(out["group"], categories=pair.groups, ordered=True)
    out = out.sort_values(["programme", "cohort", "group"], na_position="last", kind="stable")
    out["group"] = out["group"].astype("str")
    out["n_cities"] = out["n_cities"].astype(int)
    return out.reset_index(drop=True)


def smart_city_coverage(pilots: pd.DataFrame, batches: pd.DataFrame) -> pd.DataFrame:
    """Entries of a smart-city list per batch against the official counts (smart_city_batches.csv).

    Columns: batch, listed, listed_prefecture, official_total (new pilots plus extensions when the
    table has an ``extensions`` column), official_prefecture_level (<NA> if not reported), complete
    (listed >= official_total).
    """
    require_columns(pilots, ("batch", "level"), "smart-city list")
    require_columns(batches, ("batch", "total", "prefecture_level"), "smart-city batch table")
    b = batches.set_index("batch")
    ext = b["extensions"].astype(int) if "extensions" in b.columns else 0
    listed = pilots.groupby("batch").size().reindex(b.index, fill_value=0)
    pref = pilots[pilots["level"] == "prefecture"].groupby("batch").size()
    out = pd.DataFrame(
        {
            "batch": b.index.astype(int),
            "listed": listed.to_numpy(dtype=int),
            "listed_prefecture": pref.reindex(b.index, fill_value=0).to_numpy(dtype=int),
            "official_total": (b["total"].astype(int) + ext).to_numpy(dtype=int),
            "official_prefecture_level": b["prefecture_level"].astype("Int64").array,
        }
    )
    out["complete"] = out["listed"] >= out["official_total"]
    return out


def coverage_warning(
    coverage: pd.DataFrame,
    label: str = "smart-city",
    file: str = "smart_city_pilots.csv",
) -> str | None:
    """A warning text when `smart_city_coverage` shows an incomplete list, else None. `label` names the
    programme, `file` the list's file name."""
    short = coverage[~coverage["complete"]]
    if short.empty:
        return None
    parts = [
        f"batch {r.batch}: {r.listed} of {r.official_total} entries"
        + (
            f" ({r.listed_prefecture} of {r.official_prefecture_level} prefecture-level cities)"
            if not pd.isna(r.official_prefecture_level)
            else ""
        )
        for r in short.itertuples(index=False)
    ]
    return (
        f"The {label} pilot list is INCOMPLETE ("
        + "; ".join(parts)
        + f"). Cities missing from it are coded as never treated by the {label} programme. Supply the "
        f"official list as <raw_dir>/policy/{file}."
    )


def list_batch_counts(pilots: pd.DataFrame) -> pd.DataFrame:
    """Entries and prefecture-level entries per batch of a pilot list, shaped like the official table
    (columns batch, total, prefecture_level), so that `smart_city_coverage` can compare a supplied list
    with it (for the low-carbon list, whose shipped version is complete)."""
    require_columns(pilots, ("batch", "level"), "pilot list")
    total = pilots.groupby("batch").size()
    pref = pilots[pilots["level"] == "prefecture"].groupby("batch").size()
    return pd.DataFrame(
        {
            "batch": total.index.astype(int),
            "total": total.to_numpy(dtype=int),
            "prefecture_level": pref.reindex(total.index, fill_value=0).to_numpy(dtype=int),
        }
    )


def batch_counts_report(label: str, coverage: pd.DataFrame, reference: str) -> str:
    """One line per batch of `smart_city_coverage` output: the supplied list's entries (prefecture-level
    ones in brackets) next to the `reference` counts (e.g. "official" or "shipped list")."""
    parts = []
    for r in coverage.itertuples(index=False):
        ref_pref = (
            "" if pd.isna(r.official_prefecture_level) else f" ({r.official_prefecture_level})"
        )
        parts.append(
            f"batch {r.batch}: {r.listed} ({r.listed_prefecture}) vs {r.official_total}{ref_pref}"
        )
    return (
        f"{label} pilot list, entries (prefecture-level) per batch vs the {reference} counts: "
        + "; ".join(parts)
    )


def rules_from_config(policy: Mapping) -> dict:
    """The province and sub-city rules of `code_dual` (its keyword arguments less `pair`, `batch_years` and
    `last_year`) from the config's `policy:` block."""
    return {
        "province_pilot_treats_cities": bool(policy["province_pilot_treats_cities"]),
        "subcity_pilot_treats_city": bool(policy["subcity_pilot_treats_city"]),
    }
