"""Derive the shipped reference resources from the shared reference data.

Run from the repository root::

    python resources/build/build_resources.py --shared ../shared

It (re)writes, deterministically:

- ``resources/cities/city_master.csv``      one row per 地级市/直辖市 of any data year 2006-2023;
- ``resources/cities/name_crosswalk.csv``   every name a yearbook may print -> 6-digit city code;
- ``resources/policy/low_carbon_pilots.csv`` the 87 entities of the three NDRC low-carbon notices;
- ``resources/policy/smart_city_pilots.csv`` the confirmed (partial) MOHURD smart-city entries;
- ``resources/policy/smart_city_batches.csv`` official counts per smart-city batch;
- ``resources/macro/usd_cny.csv``            annual average CNY per USD (NBS communiqués).

Inputs (under ``<shared>/data``): ``admin_codes/prefecture_units_by_year_2006_2024.csv`` (derived from
yescallop/areacodes, CC0 1.0), ``admin_codes/provinces_regions.csv``,
``admin_codes/fiersity_crosswalk/`` (FIERsity, china-prefecture-crosswalk, CC BY 4.0),
``policy_lists/*.csv`` and ``macro/usd_cny_annual_average.csv``. See resources/README.md.

The script only uses pandas and the package's ``normalise_name`` (so the crosswalk is checked with the
same normalisation the workflow uses); it fails loudly on anything unexpected instead of guessing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from dualpilot.data.reference import normalise_name  # noqa: E402

WINDOW = (2006, 2023)
CITY_TYPES = ("地级市", "直辖市")
REGION_EN = {"东部": "east", "中部": "central", "西部": "west", "东北": "northeast"}

YESCALLOP = "yescallop/areacodes (CC0 1.0) via prefecture_units_by_year_2006_2024.csv"
FIERSITY = "FIERsity, china-prefecture-crosswalk (CC BY 4.0) aliases.csv"

# The 27 capitals of the provinces and autonomous regions (municipalities excluded), per the Ministry of
# Civil Affairs' list of administrative divisions (行政区划, www.mca.gov.cn). Checked against the master.
PROVINCIAL_CAPITALS: dict[str, str] = {
    "130100": "石家庄市",
    "140100": "太原市",
    "150100": "呼和浩特市",
    "210100": "沈阳市",
    "220100": "长春市",
    "230100": "哈尔滨市",
    "320100": "南京市",
    "330100": "杭州市",
    "340100": "合肥市",
    "350100": "福州市",
    "360100": "南昌市",
    "370100": "济南市",
    "410100": "郑州市",
    "420100": "武汉市",
    "430100": "长沙市",
    "440100": "广州市",
    "450100": "南宁市",
    "460100": "海口市",
    "510100": "成都市",
    "520100": "贵阳市",
    "530100": "昆明市",
    "540100": "拉萨市",
    "610100": "西安市",
    "620100": "兰州市",
    "630100": "西宁市",
    "640100": "银川市",
    "650100": "乌鲁木齐市",
}

# Conventions that override the year-by-year source (documented in resources/README.md).
LAST_YEAR_OVERRIDE: dict[str, tuple[int, str]] = {
    "371200": (
        2018,
        "莱芜: merged into 济南 (approved 2018-12-26, 国函〔2018〕163号); yescallop drops it from its "
        "2018 list, FIERsity keeps it to the end of 2018 and CCSY 2019 (data 2018) may still print it, "
        "so last_year = 2018; 济南 is not adjusted (boundary break in 2019)",
    ),
}
NOTES: dict[str, str] = {
    "341400": "巢湖: abolished 2011 (last_year 2010); its area went to 合肥/芜湖/马鞍山, no adjustment",
    "420600": "襄樊市 renamed 襄阳市 in 2010 (same code)",
    "530800": "思茅市 renamed 普洱市 in 2007 (same code)",
    "370100": "济南: absorbed 莱芜 (approved 2018-12-26); not adjusted, boundary break in 2019",
    "340100": "合肥: received part of former 巢湖 in 2011; not adjusted",
    "340200": "芜湖: received part of former 巢湖 in 2011; not adjusted",
    "340500": "马鞍山: received part of former 巢湖 in 2011; not adjusted",
}
UPGRADE_NOTE = "upgraded to 地级市 in {year} (formerly {former}); first_year = {year}"
# Upgraded units whose predecessor was not a prefecture-level 地区 (no name stem to match).
FORMER_NOT_PREFECTURE: dict[str, str] = {
    "460300": "西沙、南沙、中沙群岛办事处 (county-level)",
    "460400": "county-level city 儋州市 469003",
}
SHORT_SUFFIXES = ("市",)  # 地级市/直辖市 names; former 地区 names get their own short form below


def _read(path: Path, **kw: object) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"missing shared input: {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", **kw)


def _units(shared: Path) -> pd.DataFrame:
    units = _read(shared / "data/admin_codes/prefecture_units_by_year_2006_2024.csv")
    units["year"] = units["year"].astype(int)
    return units


def _former_prefecture(units: pd.DataFrame, code: str, province: str, name: str, first: int):
    """The 地区 that became the 地级市 `name` in `first` (same province, same name stem), if any."""
    stem = name.removesuffix("市")
    cand = units[
        (units["province_code"] == province)
        & (units["unit_type"] != "地级市")
        & (units["name"].map(lambda n: n.startswith(stem) and n != name))
        & (units["year"] == first - 1)
    ]
    cand = cand[cand["code"] != code]
    if len(cand) > 1:
        raise ValueError(f"ambiguous predecessor of {code} {name}: {sorted(cand['name'])}")
    return None if cand.empty else cand.iloc[0]


def build_city_master(shared: Path) -> pd.DataFrame:
    """One row per 地级市/直辖市 present in any data year of the window (status at 31 Dec)."""
    units = _units(shared)
    prov = _read(shared / "data/admin_codes/provinces_regions.csv")
    inwin = units[units["unit_type"].isin(CITY_TYPES) & units["year"].between(*WINDOW)]
    rows = []
    for code, g in inwin.sort_values("year").groupby("code", sort=True):
        last = g.iloc[-1]
        years = g["year"].tolist()
        first_year, last_year = min(years), max(years)
        if years != list(range(first_year, last_year + 1)):
            raise ValueError(f"{code}: gap in the years it is a city: {years}")
        notes = []
        if code in LAST_YEAR_OVERRIDE:
            last_year, why = LAST_YEAR_OVERRIDE[code]
            notes.append(why)
        if code in NOTES:
            notes.append(NOTES[code])
        if first_year > WINDOW[0]:
            former = _former_prefecture(
                units, code, last["province_code"], last["name"], first_year
            )
            if former is not None:
                what = f"{former['name']} {former['code']}"
            elif code in FORMER_NOT_PREFECTURE:
                what = FORMER_NOT_PREFECTURE[code]
            else:
                raise ValueError(f"{code}: upgraded in {first_year} but its predecessor is unknown")
            notes.append(UPGRADE_NOTE.format(year=first_year, former=what))
        p = prov[prov["province_code"] == last["province_code"]]
        if len(p) != 1:
            raise ValueError(
                f"{code}: province {last['province_code']} not in provinces_regions.csv"
            )
        p = p.iloc[0]
        is_muni = int(last["unit_type"] == "直辖市")
        rows.append(
            {
                "city_code": code,
                "city_name": last["name"],
                "province_code": last["province_code"],
                "province": p["province_name"],
                "region4": REGION_EN[p["region_nbs4"]],
                "region3": REGION_EN[p["region3_convention"]],
                "unit_type": last["unit_type"],
                "is_municipality": is_muni,
                "is_provincial_capital": int(code in PROVINCIAL_CAPITALS),
                "first_year": first_year,
                "last_year": last_year,
                "note": "; ".join(notes),
            }
        )
    master = pd.DataFrame(rows)
    for code, name in PROVINCIAL_CAPITALS.items():
        hit = master.loc[master["city_code"] == code, "city_name"]
        if hit.tolist() != [name]:
            raise ValueError(f"capital {code} {name} not found in the master: {hit.tolist()}")
    return master


def _fiersity_entity_codes(
    shared: Path, master: pd.DataFrame, units: pd.DataFrame
) -> dict[str, str]:
    """Map FIERsity entity ids to master codes by (year, province, name) matches in the window."""
    roster = _read(
        shared / "data/admin_codes/fiersity_crosswalk/legal_roster_year_end_1987_2026.csv"
    )
    roster["year"] = roster["year"].astype(int)
    roster = roster[roster["year"].between(*WINDOW) & (roster["status"] == "active")]
    keyed = units[units["code"].isin(master["city_code"])][
        ["year", "code", "name", "province_name"]
    ]
    m = roster.merge(
        keyed,
        left_on=["year", "legal_name_zh", "province_name_zh"],
        right_on=["year", "name", "province_name"],
    )
    pairs = m[["entity_id", "code"]].drop_duplicates()
    dup = pairs[pairs["entity_id"].duplicated(keep=False) | pairs["code"].duplicated(keep=False)]
    if not dup.empty:
        raise ValueError(f"FIERsity entity <-> code mapping is not one-to-one:\n{dup}")
    return dict(zip(pairs["entity_id"], pairs["code"], strict=True))


def build_name_crosswalk(shared: Path, master: pd.DataFrame) -> pd.DataFrame:
    """Every name a CCSY of editions 2007-2024 may print for a master city, mapped to its code."""
    units = _units(shared)
    rows: list[dict[str, object]] = []

    def add(name: str, code: str, kind: str, first: int | None, last: int | None, src: str) -> None:
        rows.append(
            {
                "name": name,
                "city_code": code,
                "kind": kind,
                "first_year": first,
                "last_year": last,
                "source": src,
            }
        )

    in_master = units[units["code"].isin(master["city_code"]) & units["unit_type"].isin(CITY_TYPES)]
    for rec in master.itertuples(index=False):
        g = in_master[(in_master["code"] == rec.city_code) & in_master["year"].between(*WINDOW)]
        spans = g.groupby("name")["year"].agg(["min", "max"]).sort_values("min")
        for i, (name, span) in enumerate(spans.iterrows()):
            # The last official name is 'official'; earlier official names (襄樊市, 思茅市) 'historical'.
            kind = "official" if i == len(spans) - 1 else "historical"
            last = rec.last_year if kind == "official" else int(span["max"])
            add(str(name), rec.city_code, kind, int(span["min"]), last, YESCALLOP)
            add(
                str(name).removesuffix("市"),
                rec.city_code,
                "short",
                None,
                None,
                "derived: suffix 市 removed",
            )
        if rec.first_year > WINDOW[0]:
            former = _former_prefecture(
                units, rec.city_code, rec.province_code, rec.city_name, rec.first_year
            )
            if former is not None:
                fyears = units.loc[units["code"] == former["code"], "year"]
                src = f"{YESCALLOP}; former {former['unit_type']} {former['code']}"
                add(
                    former["name"],
                    rec.city_code,
                    "historical",
                    int(fyears.min()),
                    int(fyears.max()),
                    src,
                )
    # Aliases from FIERsity that belong to master cities.
    ent = _fiersity_entity_codes(shared, master, units)
    aliases = _read(shared / "data/admin_codes/fiersity_crosswalk/aliases.csv")
    for a in aliases.itertuples(index=False):
        if a.entity_id in ent:
            add(a.alias, ent[a.entity_id], "alias", None, None, f"{FIERSITY} ({a.alias_type})")
    xw = pd.DataFrame(rows)
    # Keep the first row per (name, code): official/historical rows precede short and alias rows.
    xw = xw.drop_duplicates(["name", "city_code"], keep="first")
    xw["first_year"] = xw["first_year"].astype("Int64")
    xw["last_year"] = xw["last_year"].astype("Int64")
    norm = xw.assign(norm=xw["name"].map(normalise_name)).drop_duplicates(["norm", "city_code"])
    clash = norm[norm["norm"].duplicated(keep=False)]
    if not clash.empty:
        raise ValueError(f"normalised names map to two codes:\n{clash}")
    order = {"official": 0, "historical": 1, "short": 2, "alias": 3}
    xw = xw.sort_values(
        ["city_code", "kind", "name"], key=lambda s: s.map(order) if s.name == "kind" else s
    )
    return xw.reset_index(drop=True)


# --- policy lists -------------------------------------------------------------------------------

POLICY_COLUMNS = ["batch", "name", "level", "province", "city_code", "source"]

# Level labels of the shared lists -> the contract's four levels.
LC_LEVELS: dict[str, str] = {
    "province": "province",
    "municipality": "prefecture",
    "prefecture-level city": "prefecture",
    "prefecture-level 地区 (not a 地级市)": "prefecture",
    "county-level city": "county",
    "county": "county",
    "county-level city directly under Henan province (code 419001)": "county",
    "county (directly under Hainan province, 469030)": "county",
    "XPCC county-level city (659002)": "county",
    "district only": "district",
}
SC_LEVELS: dict[str, str] = {
    "prefecture-level city": "prefecture",
    "district": "district",
    "district/new area": "district",
    "development zone": "district",
    "industrial park": "district",
    "county-level area": "county",
    "county": "county",
    "county (扩大范围)": "county",
    "county (扩大范围 of 阜阳市)": "county",
}
# The source's batch "1or2" (Anhui batches 1 and 2 reported together) is coded as batch 2: the entity is a
# confirmed pilot, so dropping it would put a treated city among the never-treated for the whole window,
# while batch 2 at worst starts its treatment one year late (2013 instead of 2012 with the defaults).
SC_BATCH_1OR2 = "2"
SC_BATCH_1OR2_NOTE = (
    "batch reported as '1 or 2' (Anhui batches 1+2 combined in the source); coded as batch 2, "
    "see resources/README.md"
)
XPCC = "新疆生产建设兵团"


def _latest_prefecture_codes(shared: Path) -> set[str]:
    units = _units(shared)
    return set(units.loc[units["year"] == units["year"].max(), "code"])


def _map_levels(values: pd.Series, mapping: dict[str, str], what: str) -> pd.Series:
    unknown = sorted(set(values) - set(mapping))
    if unknown:
        raise ValueError(f"{what}: unmapped level labels {unknown}")
    return values.map(mapping)


def build_low_carbon(shared: Path) -> pd.DataFrame:
    """The 87 entities of the three NDRC low-carbon notices in the contract's policy format."""
    src = _read(shared / "data/policy_lists/lowcarbon_pilots_official.csv")
    if len(src) != 87:
        raise ValueError(f"expected 87 low-carbon entities, found {len(src)}")
    out = pd.DataFrame(
        {
            "batch": src["batch"],
            "name": src["entity_as_listed"],
            "level": _map_levels(src["entity_level"], LC_LEVELS, "low-carbon list"),
            "province": src["province"].replace({XPCC: "新疆维吾尔自治区"}),
            "city_code": src["prefecture_code_2017"],
        }
    )
    notes = src["entity_level"] + "; " + src["note"].where(src["note"] != "", "")
    out["source"] = (
        "NDRC "
        + src["notice"]
        + " ("
        + src["notice_date"]
        + "); "
        + src["source"]
        + " | level as listed: "
        + notes.str.rstrip("; ")
    )
    out.loc[src["province"] == XPCC, "source"] += f" | province of the notice: {XPCC}"
    bad = set(out["city_code"]) - {""} - _latest_prefecture_codes(shared)
    if bad:
        raise ValueError(f"low-carbon codes that are not current prefecture units: {sorted(bad)}")
    return out[POLICY_COLUMNS]


def build_smart_city(shared: Path, master: pd.DataFrame) -> pd.DataFrame:
    """The confirmed smart-city entries (an INCOMPLETE list) in the contract's policy format."""
    src = _read(shared / "data/policy_lists/smartcity_entries_PARTIAL.csv")
    by_name = master.set_index("city_name")
    missing = sorted(set(src["prefecture"]) - set(by_name.index))
    if missing:
        raise ValueError(f"smart-city prefectures not in the city master: {missing}")
    level = _map_levels(src["entity_level"], SC_LEVELS, "smart-city list")
    is_1or2 = src["batch"] == "1or2"
    batch = src["batch"].where(~is_1or2, SC_BATCH_1OR2)
    if not batch.isin(["1", "2", "3"]).all():
        raise ValueError(f"unexpected smart-city batches: {sorted(set(batch))}")
    source = "MOHURD smart-city pilot, reported at " + src["source"] + " (" + src["note"] + ")"
    source = source.where(~is_1or2, source + " | " + SC_BATCH_1OR2_NOTE)
    out = pd.DataFrame(
        {
            "batch": batch,
            "name": src["entity_as_reported"],
            "level": level,
            "province": src["prefecture"].map(by_name["province"]),
            "city_code": src["prefecture"].map(by_name["city_code"]),
            "source": source + " | level as reported: " + src["entity_level"],
        }
    )
    return out[POLICY_COLUMNS]


def build_smart_city_batches(shared: Path) -> pd.DataFrame:
    """Official counts per smart-city batch (MOHURD), to report how incomplete the shipped list is."""
    meta = _read(shared / "data/policy_lists/smartcity_batches_meta.csv")
    meta = meta[meta["kind"] == "batch"].set_index("batch")
    # Counts transcribed from `count_and_composition`; checked against that text below.
    counts = {
        "1": ("2013-01-29", 90, 0, 37),
        "2": ("2013-08-05", 103, 9, None),
        "3": ("2015-04-07", 84, 13, None),
    }
    rows = []
    for batch, (announced, total, ext, pref) in counts.items():
        m = meta.loc[batch]
        text = m["count_and_composition"]
        for value in [total, ext, pref]:
            if value and str(value) not in text:
                raise ValueError(f"batch {batch}: {value} not in {text!r}")
        if announced not in m["dates"]:
            raise ValueError(f"batch {batch}: {announced} not in {m['dates']!r}")
        rows.append(
            {
                "batch": int(batch),
                "label": m["label"],
                "announced": announced,
                "total": total,
                "extensions": ext,
                "prefecture_level": pref,
                "composition": text,
                "source": f"{m['issuer']}: {m['source']}",
            }
        )
    out = pd.DataFrame(rows)
    out["prefecture_level"] = out["prefecture_level"].astype("Int64")
    return out


def build_usd_cny(shared: Path) -> pd.DataFrame:
    """Annual average CNY per USD, 2006-2023, from the NBS Statistical Communiqués."""
    src = _read(shared / "data/macro/usd_cny_annual_average.csv")
    out = pd.DataFrame({"year": src["year"].astype(int), "cny_per_usd": src["cny_per_usd"]})
    if out["year"].tolist() != list(range(WINDOW[0], WINDOW[1] + 1)):
        raise ValueError(f"usd_cny years are not {WINDOW}: {out['year'].tolist()}")
    return out


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write UTF-8 (no BOM), LF line ends, no index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    print(f"wrote {path} ({len(df)} rows)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, required=True, help="the shared reference folder")
    ap.add_argument(
        "--out", type=Path, default=REPO / "resources", help="resources folder to write"
    )
    args = ap.parse_args(argv)
    shared: Path = args.shared
    master = build_city_master(shared)
    write_csv(master, args.out / "cities/city_master.csv")
    write_csv(build_name_crosswalk(shared, master), args.out / "cities/name_crosswalk.csv")
    write_csv(build_low_carbon(shared), args.out / "policy/low_carbon_pilots.csv")
    write_csv(build_smart_city(shared, master), args.out / "policy/smart_city_pilots.csv")
    write_csv(build_smart_city_batches(shared), args.out / "policy/smart_city_batches.csv")
    write_csv(build_usd_cny(shared), args.out / "macro/usd_cny.csv")


if __name__ == "__main__":
    main()
