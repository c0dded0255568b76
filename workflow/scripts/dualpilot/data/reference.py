"""Reference resources: city master, name crosswalk, exchange rates and pilot lists.

Every loader validates its file and reports all defects at once through `dualpilot.core.errors.InputError`,
each `Problem` naming the file, the line (the header is line 1, the first data row line 2) and the column.
Codes are kept as 6-character strings throughout. Files are read as UTF-8 (a BOM is accepted).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import pandas as pd

from dualpilot.core.errors import Problem, io_problem, raise_if

_WS = re.compile(r"\s+")
_CODE = re.compile(r"^[1-9]\d{5}$")

CITY_MASTER_COLUMNS = (
    "city_code",
    "city_name",
    "province_code",
    "province",
    "region4",
    "region3",
    "unit_type",
    "is_municipality",
    "is_provincial_capital",
    "first_year",
    "last_year",
    "note",
)
CROSSWALK_COLUMNS = ("name", "city_code", "kind", "first_year", "last_year", "source")
CROSSWALK_KINDS = frozenset({"official", "short", "historical", "alias"})
PILOT_COLUMNS = ("batch", "name", "level", "province", "city_code", "source")
PILOT_LEVELS = frozenset({"province", "prefecture", "county", "district"})
PILOT_BATCHES = frozenset({1, 2, 3})
SMART_CITY_BATCH_COLUMNS = ("batch", "label", "announced", "total", "prefecture_level", "source")
REGION4 = frozenset({"east", "central", "west", "northeast"})
REGION3 = frozenset({"east", "central", "west"})
UNIT_TYPES = frozenset({"地级市", "直辖市"})


def normalise_name(s: str) -> str:
    """Return the one normalisation of a place name used everywhere in the workflow.

    Unicode NFKC (full-width forms to their ordinary equivalents), then every whitespace character
    removed (ASCII spaces, tabs, U+3000 ideographic space, ...), then one trailing ``市`` stripped.
    ``"北　京"``, ``"北 京 市"`` and ``"北京市"`` all become ``"北京"``; ``"吉林省"`` stays ``"吉林省"``.
    """
    if not isinstance(s, str):
        raise TypeError(f"normalise_name expects a str, got {type(s).__name__}: {s!r}")
    out = _WS.sub("", unicodedata.normalize("NFKC", s))
    return out.removesuffix("市")


def _line(i: int) -> int:
    """Spreadsheet line of the data row at 0-based position `i` (the header is line 1)."""
    return i + 2


def _read_csv(path: str | Path, required: Iterable[str]) -> tuple[pd.DataFrame, str]:
    """Read a UTF-8 CSV as strings (no NA conversion), checking that the `required` columns exist."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise_if([io_problem(path)], f"cannot read {path.name}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except OSError as exc:  # permission denied, vanished since the check, ...
        raise_if([io_problem(path, exc)], f"cannot read {path.name}")
    except UnicodeDecodeError as exc:
        raise_if([Problem(name, f"not UTF-8 text ({exc.reason})")], f"cannot read {path.name}")
    except pd.errors.ParserError as exc:
        raise_if([Problem(name, f"not a readable CSV: {exc}")], f"cannot read {path.name}")
    except pd.errors.EmptyDataError:
        raise_if([Problem(name, "file is empty")], f"cannot read {path.name}")
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    raise_if(
        [Problem(name, "required column is missing", line=1, column=c) for c in missing],
        f"invalid {path.name}",
    )
    df = df.apply(lambda col: col.str.strip())
    return df, name


def _int_problems(
    df: pd.DataFrame,
    column: str,
    file: str,
    *,
    allowed: Collection[int] | None = None,
    lo: int | None = None,
    hi: int | None = None,
    optional: bool = False,
) -> list[Problem]:
    """Problems for cells of `column` that are not integers (in `allowed` / [lo, hi] when given)."""
    out = []
    for i, v in enumerate(df[column]):
        if v == "" and optional:
            continue
        if not re.fullmatch(r"-?\d+", v):
            out.append(Problem(file, f"not an integer: {v!r}", _line(i), column))
            continue
        x = int(v)
        if allowed is not None and x not in allowed:
            out.append(Problem(file, f"{x} is not one of {sorted(allowed)}", _line(i), column))
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            out.append(Problem(file, f"{x} is outside [{lo}, {hi}]", _line(i), column))
    return out


def _code_problems(df: pd.DataFrame, column: str, file: str, *, optional: bool) -> list[Problem]:
    """Problems for cells of `column` that are not 6-digit codes (empty allowed when `optional`)."""
    return [
        Problem(file, f"not a 6-digit code: {v!r}", _line(i), column)
        for i, v in enumerate(df[column])
        if not (_CODE.match(v) or (optional and v == ""))
    ]


def _set_problems(
    df: pd.DataFrame, column: str, file: str, allowed: Collection[str]
) -> list[Problem]:
    return [
        Problem(file, f"{v!r} is not one of {sorted(allowed)}", _line(i), column)
        for i, v in enumerate(df[column])
        if v not in allowed
    ]


def _duplicate_problems(df: pd.DataFrame, columns: list[str], file: str) -> list[Problem]:
    dup = df.duplicated(columns, keep="first").to_numpy()
    return [
        Problem(file, f"duplicate of an earlier row on {columns}", _line(i), columns[0])
        for i in range(len(df))
        if dup[i]
    ]


def load_city_master(path: str | Path) -> pd.DataFrame:
    """Load and validate resources/cities/city_master.csv.

    Returns one row per city with codes as 6-character strings, the 0/1 flags and years as ints, in the
    file's column order. Raises InputError listing every defect (bad codes, duplicate codes, unknown
    regions or unit types, first_year > last_year, ...).
    """
    df, file = _read_csv(path, CITY_MASTER_COLUMNS)
    problems = _code_problems(df, "city_code", file, optional=False)
    problems += _code_problems(df, "province_code", file, optional=False)
    problems += _duplicate_problems(df, ["city_code"], file)
    problems += _duplicate_problems(df, ["city_name"], file)
    problems += _set_problems(df, "region4", file, REGION4)
    problems += _set_problems(df, "region3", file, REGION3)
    problems += _set_problems(df, "unit_type", file, UNIT_TYPES)
    for col in ("is_municipality", "is_provincial_capital"):
        problems += _int_problems(df, col, file, allowed={0, 1})
    for col in ("first_year", "last_year"):
        problems += _int_problems(df, col, file, lo=1949, hi=2100)
    problems += [
        Problem(file, "city_name is empty", _line(i), "city_name")
        for i, v in enumerate(df["city_name"])
        if v == ""
    ]
    raise_if(problems, "invalid city master")
    out = df[list(CITY_MASTER_COLUMNS)].copy()
    for col in ("is_municipality", "is_provincial_capital", "first_year", "last_year"):
        out[col] = out[col].astype(int)
    problems = [
        Problem(
            file, f"first_year {r.first_year} > last_year {r.last_year}", _line(i), "first_year"
        )
        for i, r in enumerate(out.itertuples(index=False))
        if r.first_year > r.last_year
    ]
    problems += [
        Problem(
            file,
            "is_municipality must be 1 exactly when unit_type is 直辖市",
            _line(i),
            "is_municipality",
        )
        for i, r in enumerate(out.itertuples(index=False))
        if r.is_municipality != int(r.unit_type == "直辖市")
    ]
    raise_if(problems, "invalid city master")
    return out


def load_name_crosswalk(
    path: str | Path, *, valid_codes: Collection[str] | None = None
) -> dict[str, str]:
    """Load resources/cities/name_crosswalk.csv as {normalised name: city_code}.

    Names are normalised with `normalise_name`. Raises InputError when a normalised name maps to two
    different codes (naming both lines), when a code is malformed, when `kind` is unknown, or, if
    `valid_codes` (e.g. the master's codes) is given, when a code is not among them.
    """
    df, file = _read_csv(path, CROSSWALK_COLUMNS)
    problems = _code_problems(df, "city_code", file, optional=False)
    problems += _set_problems(df, "kind", file, CROSSWALK_KINDS)
    for col in ("first_year", "last_year"):
        problems += _int_problems(df, col, file, lo=1949, hi=2100, optional=True)
    if valid_codes is not None:
        valid = set(valid_codes)
        problems += [
            Problem(file, f"code {v} is not in the city master", _line(i), "city_code")
            for i, v in enumerate(df["city_code"])
            if _CODE.match(v) and v not in valid
        ]
    mapping: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for i, (name, code) in enumerate(zip(df["name"], df["city_code"], strict=True)):
        key = normalise_name(name)
        if key == "":
            problems.append(Problem(file, "name is empty after normalisation", _line(i), "name"))
            continue
        if key in mapping and mapping[key] != code:
            problems.append(
                Problem(
                    file,
                    f"{name!r} normalises to {key!r}, which line {first_line[key]} maps to "
                    f"{mapping[key]}, not {code}",
                    _line(i),
                    "name",
                )
            )
            continue
        mapping.setdefault(key, code)
        first_line.setdefault(key, _line(i))
    raise_if(problems, "invalid name crosswalk")
    return mapping


def load_usd_cny(path: str | Path) -> pd.Series:
    """Load resources/macro/usd_cny.csv as a float Series of CNY per USD indexed by int year.

    Raises InputError on a non-numeric or non-positive rate, a bad or duplicated year.
    """
    df, file = _read_csv(path, ("year", "cny_per_usd"))
    problems = _int_problems(df, "year", file, lo=1949, hi=2100)
    problems += _duplicate_problems(df, ["year"], file)
    rate = pd.to_numeric(df["cny_per_usd"], errors="coerce")
    problems += [
        Problem(file, f"not a positive number: {v!r}", _line(i), "cny_per_usd")
        for i, (v, x) in enumerate(zip(df["cny_per_usd"], rate, strict=True))
        if not (x > 0)
    ]
    raise_if(problems, "invalid exchange-rate table")
    out = pd.Series(rate.to_numpy(dtype=float), index=df["year"].astype(int), name="cny_per_usd")
    out.index.name = "year"
    return out.sort_index()


def load_pilot_list(path: str | Path, *, provinces: Collection[str] | None = None) -> pd.DataFrame:
    """Load and validate a pilot list in the raw-data contract's ``policy/`` format.

    Columns batch, name, level, province, city_code, source. Rules: batch in {1, 2, 3}; level in
    province/prefecture/county/district; name and province non-empty (and, if `provinces` is given, a
    province among them); city_code empty for a province entry, a 6-digit code for a prefecture entry,
    a 6-digit code or empty for a county or district entry (empty: it lies in no prefecture, e.g. a
    county-level city directly under a province); no duplicated (batch, name). Returns the rows with
    `batch` as int and the other columns as str, plus `line` (the row's line in the file).
    """
    df, file = _read_csv(path, PILOT_COLUMNS)
    problems = _int_problems(df, "batch", file, allowed=PILOT_BATCHES)
    problems += _set_problems(df, "level", file, PILOT_LEVELS)
    problems += _code_problems(df, "city_code", file, optional=True)
    problems += _duplicate_problems(df, ["batch", "name"], file)
    for col in ("name", "province"):
        problems += [
            Problem(file, f"{col} is empty", _line(i), col)
            for i, v in enumerate(df[col])
            if v == ""
        ]
    if provinces is not None:
        known = set(provinces)
        problems += [
            Problem(file, f"unknown province {v!r}", _line(i), "province")
            for i, v in enumerate(df["province"])
            if v != "" and v not in known
        ]
    for i, (level, code) in enumerate(zip(df["level"], df["city_code"], strict=True)):
        if level == "province" and code != "":
            problems.append(
                Problem(file, "a province entry must leave city_code empty", _line(i), "city_code")
            )
        if level == "prefecture" and code == "":
            problems.append(
                Problem(file, "a prefecture entry needs its city_code", _line(i), "city_code")
            )
    raise_if(problems, f"invalid pilot list {Path(path).name}")
    out = df[list(PILOT_COLUMNS)].copy()
    out["batch"] = out["batch"].astype(int)
    out["line"] = range(2, len(out) + 2)
    return out


def load_smart_city_batches(path: str | Path) -> pd.DataFrame:
    """Load resources/policy/smart_city_batches.csv (official counts per MOHURD batch).

    Returns batch and total as int, prefecture_level as nullable Int64 (empty = not reported).
    """
    df, file = _read_csv(path, SMART_CITY_BATCH_COLUMNS)
    problems = _int_problems(df, "batch", file, allowed=PILOT_BATCHES)
    problems += _duplicate_problems(df, ["batch"], file)
    problems += _int_problems(df, "total", file, lo=0, hi=100_000)
    problems += _int_problems(df, "prefecture_level", file, lo=0, hi=100_000, optional=True)
    raise_if(problems, "invalid smart-city batch table")
    out = df.copy()
    out["batch"] = out["batch"].astype(int)
    out["total"] = out["total"].astype(int)
    out["prefecture_level"] = pd.to_numeric(out["prefecture_level"]).astype("Int64")
    return out


#: The pilot lists of the default programme pair (config programmes: sc, lc).
POLICY_FILES = ("smart_city_pilots.csv", "low_carbon_pilots.csv")


def choose_policy_file(
    raw_dir: str | Path, name: str, shipped: str | Path | None
) -> tuple[Path, bool]:
    """The pilot list to use: `<raw_dir>/policy/<name>` when the user (or the demo) brings one, else the
    list shipped in resources/policy/ (`shipped`; None when no list of that name is shipped). Returns
    (path, True if the shipped list is used). Raises InputError naming both places when neither exists."""
    if Path(name).name != name or not name.endswith(".csv"):
        raise ValueError(f"a pilot list is named by a plain file name ending in .csv, not {name!r}")
    own = Path(raw_dir) / "policy" / name
    if own.is_file():
        return own, False
    if own.exists() or own.is_symlink():  # a directory or a broken link: never fall back silently
        raise_if([io_problem(own)], f"cannot read the pilot list {name}")
    if shipped is None or not Path(shipped).is_file():
        where = f"{own}" + ("" if shipped is None else f" or {shipped}")
        raise_if(
            [Problem(str(own), f"pilot list {name} not found in {where}")], "missing pilot list"
        )
    return Path(shipped), True


# ---------------------------------------------------------------------------------------------------------
# Pilot lists against the city master and the name crosswalk
# ---------------------------------------------------------------------------------------------------------

#: Suffixes of prefecture-level units that are not cities (地区, 自治州, 盟), as printed in a name.
_NON_CITY_PREFECTURE_SUFFIXES = ("地区", "州", "盟")


def is_non_city_prefecture_code(code: str) -> bool:
    """True for the GB/T 2260 code of a prefecture-level 地区, 自治州 or 盟 (digits 3-4 in 21..50, last two
    00, e.g. 大兴安岭地区 232700, 昌吉回族自治州 652300). The city master holds cities only, so such a code
    is legitimately absent from it: the entry treats no city."""
    return bool(_CODE.match(code)) and 21 <= int(code[2:4]) <= 50 and code.endswith("00")


def _squeezed(name: str) -> str:
    """NFKC and no whitespace, but (unlike `normalise_name`) the trailing 市 kept."""
    return _WS.sub("", unicodedata.normalize("NFKC", name))


def embedded_prefecture(
    name: str, crosswalk: Mapping[str, str], provinces: Iterable[str] = ()
) -> tuple[str, str] | None:
    """The master city a sub-city pilot's name begins with, as (prefix, city_code), or None.

    `北京市东城区` -> ("北京市", "110000"); `河北省石家庄市正定县` -> ("石家庄市", "130100") (a leading
    province name is skipped); `北京经济技术开发区`, `霍山县` -> None. A prefix counts only when it is a
    crosswalk name followed by 市 (or a crosswalk name ending in 地区/州/盟, e.g. `毕节地区`) and more text
    follows it; the longest such prefix wins.
    """
    texts = [_squeezed(name)]  # as written, and without a leading province (not for 北京市东城区)
    for province in sorted(provinces, key=len, reverse=True):
        if texts[0].startswith(province) and len(texts[0]) > len(province):
            texts.append(texts[0][len(province) :])
            break
    best: tuple[str, str] | None = None
    for s in texts:
        for key, code in crosswalk.items():
            for prefix in (
                key + "市",
                key if key.endswith(_NON_CITY_PREFECTURE_SUFFIXES) else None,
            ):
                if prefix and len(s) > len(prefix) and s.startswith(prefix):
                    if best is None or len(prefix) > len(best[0]):
                        best = (prefix, code)
        if best is not None:
            return best
    return best


def pilot_list_problems(
    pilots: pd.DataFrame,
    file: str,
    *,
    master: pd.DataFrame,
    crosswalk: Mapping[str, str],
    batch_years: Mapping[int, int],
) -> list[Problem]:
    """Problems of a pilot list (`load_pilot_list` output) against the city master and the crosswalk.

    For every entry with a city_code: the code is a city of the master that exists in the policy year of
    the entry's batch (master first_year..last_year), in the entry's province; or it is the code of a
    地区/自治州/盟 of that province (`is_non_city_prefecture_code`; the entry treats no city). For every
    entry whose name is a name of a master city in the crosswalk (official, short, historical or alias):
    the code is that city's. A prefecture entry's name must be such a name (or the entry must carry a
    地区/自治州/盟 code). A county or district entry whose name begins with a master city's name
    (`embedded_prefecture`, e.g. 北京市东城区) must carry that city's code. A province entry's name is
    its province. Each problem names the file, the line and the column.
    """
    problems: list[Problem] = []
    by_code = master.set_index("city_code")
    province_codes = dict(zip(master["province"], master["province_code"], strict=False))
    provinces = list(province_codes)
    for r in pilots.itertuples(index=False):
        line, name, code, level = int(r.line), r.name, r.city_code, r.level
        year = batch_years.get(int(r.batch))
        if level == "province":
            if _squeezed(name) != _squeezed(r.province):
                problems.append(
                    Problem(
                        file, f"a province entry names its province ({r.province!r})", line, "name"
                    )
                )
            continue
        if code in by_code.index:
            m = by_code.loc[code]
            if year is not None and not m["first_year"] <= year <= m["last_year"]:
                problems.append(
                    Problem(
                        file,
                        f"city_code {code} ({m['city_name']}) exists in the city master only in "
                        f"{m['first_year']}-{m['last_year']}, not in {year}, the policy year of batch "
                        f"{r.batch}",
                        line,
                        "city_code",
                    )
                )
            if m["province"] != r.province:
                problems.append(
                    Problem(
                        file,
                        f"city_code {code} is {m['city_name']} in {m['province']}, not in {r.province}",
                        line,
                        "city_code",
                    )
                )
        elif code != "":
            if not is_non_city_prefecture_code(code):
                problems.append(
                    Problem(
                        file,
                        f"city_code {code} is not in the city master (resources/cities/city_master.csv) "
                        "nor the code of a 地区/自治州/盟; a county-level unit directly under a province or "
                        "the XPCC takes an empty city_code",
                        line,
                        "city_code",
                    )
                )
            elif code[:2] + "0000" != province_codes.get(r.province):
                problems.append(
                    Problem(
                        file,
                        f"city_code {code} is a 地区/自治州/盟 outside {r.province} (its province code is "
                        f"{code[:2]}0000)",
                        line,
                        "city_code",
                    )
                )
        own = crosswalk.get(normalise_name(name))
        if own is not None:
            if own != code:
                problems.append(
                    Problem(
                        file,
                        f"{name!r} is {by_code.loc[own, 'city_name']} ({own}) in the name crosswalk, "
                        f"but city_code is {code or 'empty'}",
                        line,
                        "city_code",
                    )
                )
        elif level == "prefecture" and code in by_code.index:
            problems.append(
                Problem(
                    file,
                    f"{name!r} is not a name of {by_code.loc[code, 'city_name']} ({code}), nor of any city "
                    "in resources/cities/name_crosswalk.csv: correct the name or the code (another name "
                    "of the city goes into the crosswalk)",
                    line,
                    "name",
                )
            )
        elif level in ("county", "district"):
            inside = embedded_prefecture(name, crosswalk, provinces)
            if inside is not None and inside[1] != code:
                problems.append(
                    Problem(
                        file,
                        f"{name!r} lies in {by_code.loc[inside[1], 'city_name']} ({inside[1]}), but "
                        f"city_code is {code or 'empty'}",
                        line,
                        "city_code",
                    )
                )
    return problems


def load_checked_pilot_list(
    path: str | Path,
    *,
    master: pd.DataFrame,
    crosswalk: Mapping[str, str],
    batch_years: Mapping[int, int],
) -> pd.DataFrame:
    """`load_pilot_list` plus `pilot_list_problems`: the list every treatment coding uses. Raises one
    InputError with every problem (file, line, column)."""
    pilots = load_pilot_list(path, provinces=set(master["province"]))
    raise_if(
        pilot_list_problems(
            pilots, str(path), master=master, crosswalk=crosswalk, batch_years=batch_years
        ),
        f"pilot list {Path(path).name} disagrees with the city master",
    )
    return pilots
