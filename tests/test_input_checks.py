"""Issue 11, items 5 and 6: user-supplied pilot lists against the city master, cross-field config checks,
and I/O failures as InputErrors naming the file.

Permission errors: the tests run as root, for whom a chmod 000 file is still readable, so a permission
failure is simulated by monkeypatching the read to raise PermissionError (as the OS would for an
ordinary user); a directory in place of a file and a broken symlink are real.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
import pytest
import yaml

from demo_mutations import (
    CONFIG,
    build_fails,
    build_panel_outputs,
    mutable_copy,
    nothing_written,
)
from dualpilot.core.errors import InputError
from dualpilot.data import reference
from dualpilot.workflow.config_checks import (
    ConfigError,
    check_config,
    config_problems,
    config_warnings,
)
from workflow_helpers import copy_workflow, snakemake

REPO = Path(__file__).resolve().parents[1]
RES = REPO / "resources"
MASTER = reference.load_city_master(RES / "cities/city_master.csv")
CROSSWALK = reference.load_name_crosswalk(RES / "cities/name_crosswalk.csv")
SC_YEARS = dict(enumerate(CONFIG["programmes"]["sc"]["batch_years"], start=1))
LC_YEARS = dict(enumerate(CONFIG["programmes"]["lc"]["batch_years"], start=1))
HEADER = "batch,name,level,province,city_code,source\n"


# ---------------------------------------------------------------------------------------------------------
# Cross-field config checks
# ---------------------------------------------------------------------------------------------------------


def _with(changes: dict[str, object]) -> dict:
    config = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return config


def test_default_config_is_consistent() -> None:
    assert config_problems(CONFIG) == []
    assert config_warnings(CONFIG) == []
    check_config(CONFIG)  # no exception


BAD_CONFIGS = [
    ({"years.start": 2024, "years.end": 2006}, "years.start = 2024 is after years.end = 2006"),
    ({"event_study.window": [8, -6]}, "event_study.window = [8, -6]"),
    ({"event_study.base": -9}, "event_study.base = -9 lies outside event_study.window"),
    ({"event_study.base": 0}, "event_study.base = 0: the reference year must be before"),
    ({"duration.bins": [[0, 3], [2, 5]]}, "duration.bins[1] = [2, 5] overlaps"),
    ({"duration.bins": [[3, 1]]}, "duration.bins[0] = [3, 1]"),
    ({"placebo.mixed.time_scope": [2015, 2010]}, "placebo.mixed.time_scope = [2015, 2010]"),
    ({"placebo.time_random.shift_range": [5, 1]}, "placebo.time_random.shift_range = [5, 1]"),
    ({"placebo.shards": 20, "placebo.draws": 10}, "placebo.shards = 20 exceeds placebo.draws = 10"),
    ({"heterogeneity.shards": 8, "heterogeneity.draws": 4}, "heterogeneity.shards = 8 exceeds"),
    ({"heterogeneity.shards": 2, "heterogeneity.draws": 0}, "no permutation test: use 1 shard"),
    (
        {"psm.method": "kernel", "psm.replacement": False},
        "psm.method = kernel needs psm.replacement",
    ),
    ({"programmes.lc.batch_years": [2012, 2010, 2017]}, "programmes.lc.batch_years"),
]
#: Year settings of single analyses outside the window: a warning (the panel alone may still be built).
OUT_OF_WINDOW = [
    ({"psm.baseline_end": 2000}, "psm.baseline_end = 2000 lies outside the study window"),
    (
        {"psm.baseline_end": 2011},
        "psm.baseline_end = 2011 is not before the first policy year 2010",
    ),
    ({"demo.effects.baseline_end": 2030}, "demo.effects.baseline_end = 2030 lies outside"),
    (
        {"heterogeneity.baseline_before": 2006},
        "heterogeneity.baseline_before = 2006 leaves no year",
    ),
    (
        {"heterogeneity.baseline_before": 2013},
        "heterogeneity.baseline_before = 2013 is after the first",
    ),
    ({"spatial.map_years": [2006, 2030]}, "spatial.map_years[1] = 2030 lies outside"),
    ({"spatial.pilot_map_year": 2001}, "spatial.pilot_map_year = 2001 lies outside"),
    ({"spatial.hotspot_years": [2005]}, "spatial.hotspot_years[0] = 2005 lies outside"),
    ({"placebo.mixed.time_scope": [2000, 2010]}, "placebo.mixed.time_scope[0] = 2000 lies outside"),
    (
        {"demo.effects.baseline_end": 2012},
        "demo.effects.baseline_end = 2012 is not before the first",
    ),
    (
        {"robustness.grid.specs.12.trends.baseline_end": 1999},
        "robustness.grid.specs[12].trends.baseline_end = 1999 lies outside",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_contradicting_keys_are_named(changes: dict, message: str) -> None:
    config = _with(changes)
    problems = config_problems(config)
    assert any(message in p for p in problems), problems
    with pytest.raises(ConfigError, match="inconsistent"):
        check_config(config)


@pytest.mark.parametrize(("changes", "message"), OUT_OF_WINDOW, ids=[m for _, m in OUT_OF_WINDOW])
def test_analysis_years_outside_the_window_are_warnings_naming_the_key(
    changes: dict, message: str
) -> None:
    config = _with(changes)
    assert config_problems(config) == []
    assert any(message in w for w in config_warnings(config)), config_warnings(config)


def test_narrower_window_warns_about_map_years_and_the_batch_after_it_only() -> None:
    config = _with({"years.start": 2009, "years.end": 2016})
    assert config_problems(config) == []
    assert config_warnings(config) == [
        "programmes.lc.batch_years has 2017, outside the study window years.start..years.end = "
        "2009..2016: its cities count as never treated by that batch"
    ] + [
        f"spatial.map_years[{i}] = {y} lies outside the study window years.start..years.end = 2009..2016"
        for i, y in ((0, 2006), (2, 2018), (3, 2023))
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = config_problems(
        _with({"years.start": 2030, "placebo.shards": 2000, "event_study.base": 3})
    )
    assert len(problems) == 3, problems


def test_snakemake_dry_run_stops_with_the_keys_named(tmp_path: Path) -> None:
    """A bad combination stops `snakemake -n` before any job, with the keys named and no traceback."""
    work = copy_workflow(tmp_path / "w")
    (work / "bad.yaml").write_text(
        yaml.safe_dump(
            {"years": {"start": 2024, "end": 2006}, "placebo": {"shards": 50, "draws": 10}}
        )
    )
    proc = snakemake(work, "panel", "-n", "--cores", "1", "--configfile", "bad.yaml", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "years.start = 2024 is after years.end = 2006" in text, text[-3000:]
    assert "placebo.shards = 50 exceeds placebo.draws = 10" in text
    assert "Traceback" not in text
    assert not (work / "results").exists()
    # a narrower window: the panel can be built; the map years outside it are named in a warning
    (work / "narrow.yaml").write_text(yaml.safe_dump({"years": {"start": 2009, "end": 2016}}))
    proc = snakemake(work, "panel", "-n", "--cores", "1", "--configfile", "narrow.yaml")
    assert (
        "WARNING (configuration): spatial.map_years[0] = 2006 lies outside"
        in proc.stdout + proc.stderr
    )


# ---------------------------------------------------------------------------------------------------------
# Pilot lists supplied by the user
# ---------------------------------------------------------------------------------------------------------


def _list(tmp_path: Path, *rows: str, name: str = "smart_city_pilots.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + ",src\n" for r in rows), encoding="utf-8")
    return path


def _load(path: Path, years=SC_YEARS) -> pd.DataFrame:
    return reference.load_checked_pilot_list(
        path, master=MASTER, crosswalk=CROSSWALK, batch_years=years
    )


@pytest.mark.parametrize(
    "name", ["smart_city_pilots.csv", "low_carbon_pilots.csv"], ids=["smart_city", "low_carbon"]
)
def test_shipped_lists_pass(name: str) -> None:
    years = SC_YEARS if name.startswith("smart") else LC_YEARS
    assert len(_load(RES / "policy" / name, years)) > 0


def test_right_city_under_another_name_is_accepted(tmp_path: Path) -> None:
    path = _list(
        tmp_path,
        "1,襄樊市,prefecture,湖北省,420600",  # historical name (2006-2009) of 襄阳
        "1,石家庄,prefecture,河北省,130100",  # short name
        "1,毫州市,prefecture,安徽省,341600",  # alias (OCR variant of 亳州)
        "1,北京市东城区,district,北京市,110000",
        "2,河北省石家庄市正定县,county,河北省,130100",
        "2,北京经济技术开发区,district,北京市,110000",  # no city name in it: province checked
        "2,大兴安岭地区,prefecture,黑龙江省,232700",  # a 地区, not a city of the master
        "3,昌吉市,county,新疆维吾尔自治区,652300",  # inside an autonomous prefecture
        "3,第一师阿拉尔市,county,新疆维吾尔自治区,",  # directly under the XPCC: no code
        "3,广东省,province,广东省,",
    )
    assert len(_load(path)) == 10


BAD_ENTRIES = [
    ("1,石家庄市,prefecture,河北省,130200", "city_code", "'石家庄市' is 石家庄市 (130100)"),
    (
        "1,某某市,prefecture,河北省,139900",
        "city_code",
        "city_code 139900 is not in the city master",
    ),
    ("1,济源市,county,河南省,419001", "city_code", "city_code 419001 is not in the city master"),
    (
        "2,巢湖市,prefecture,安徽省,341400",
        "city_code",
        "exists in the city master only in 2006-2010",
    ),
    ("1,毕节市,prefecture,贵州省,520500", "city_code", "only in 2011-2023, not in 2010"),
    (
        "1,不存在市,prefecture,河北省,130100",
        "name",
        "'不存在市' is not a name of 石家庄市 (130100)",
    ),
    (
        "1,北京市东城区,district,北京市,120000",
        "city_code",
        "'北京市东城区' lies in 北京市 (110000), but city_code is 120000",
    ),
    (
        "1,朔州市平鲁区,district,河北省,140600",
        "city_code",
        "140600 is 朔州市 in 山西省, not in 河北省",
    ),
    ("1,霍山县,county,河北省,341500", "city_code", "341500 is 六安市 in 安徽省, not in 河北省"),
    (
        "1,石家庄市正定县,county,河北省,",
        "city_code",
        "lies in 石家庄市 (130100), but city_code is empty",
    ),
    ("1,大兴安岭地区,prefecture,吉林省,232700", "city_code", "a 地区/自治州/盟 outside 吉林省"),
    ("1,广东省,province,广西壮族自治区,", "name", "a province entry names its province"),
]


@pytest.mark.parametrize(
    ("row", "column", "message"), BAD_ENTRIES, ids=[m for *_, m in BAD_ENTRIES]
)
def test_wrong_entry_is_an_error_naming_file_line_and_column(
    tmp_path: Path, row: str, column: str, message: str
) -> None:
    path = _list(tmp_path, "1,太原市,prefecture,山西省,140100", row, name="low_carbon_pilots.csv")
    with pytest.raises(InputError) as err:
        _load(path, LC_YEARS)  # batch 1: 2010, batch 2: 2012
    text = str(err.value)
    assert f"{path}, line 3, column {column!r}: " in text, text
    assert message in text, text
    assert {p.line for p in err.value.problems} == {3}, text  # the good entry on line 2 passes


def test_wrong_user_list_stops_the_build_with_no_panel(
    pristine_demo_raw: Path, tmp_path: Path
) -> None:
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    policy = raw / "policy" / "low_carbon_pilots.csv"
    lines = (
        (RES / "policy/low_carbon_pilots.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    )
    i = next(i for i, line in enumerate(lines) if line.startswith("2,石家庄市,"))
    lines[i] = lines[i].replace(",130100,", ",130200,")  # 石家庄市 with 唐山's code
    policy.write_text("".join(lines), encoding="utf-8")
    results = tmp_path / "results"
    with pytest.raises(InputError) as err:
        build_panel_outputs(raw, results)
    text = str(err.value)
    assert f"{policy}, line {i + 1}, column 'city_code'" in text, text
    assert "石家庄市 (130100)" in text and "130200" in text
    assert nothing_written(results)


def test_batch_counts_are_logged_next_to_the_official_ones(
    pristine_demo_raw: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    (raw / "policy").mkdir(exist_ok=True)
    (raw / "policy" / "low_carbon_pilots.csv").write_bytes(
        (RES / "policy/low_carbon_pilots.csv").read_bytes()
    )
    caplog.set_level(logging.INFO, logger="dualpilot")
    build_panel_outputs(raw, tmp_path / "results")
    sc_listed = reference.load_pilot_list(raw / "policy" / "smart_city_pilots.csv")
    n1 = int((sc_listed["batch"] == 1).sum())
    p1 = int(((sc_listed["batch"] == 1) & (sc_listed["level"] == "prefecture")).sum())
    messages = [r.getMessage() for r in caplog.records]
    sc = next(m for m in messages if m.startswith("smart_city pilot list, entries"))
    assert f"vs the official counts: batch 1: {n1} ({p1}) vs 90 (37); batch 2: " in sc, sc
    assert "batch 3: " in sc and "vs 97" in sc  # 84 new pilots + 13 extensions
    lc = next(m for m in messages if m.startswith("low_carbon pilot list, entries"))
    shipped = reference.load_pilot_list(RES / "policy/low_carbon_pilots.csv")
    per_batch = [
        f"batch {b}: {len(g)} ({(g['level'] == 'prefecture').sum()})"
        for b, g in shipped.groupby("batch")
    ]
    assert per_batch[0] == "batch 1: 13 (8)"  # 5 provinces and 8 cities (发改气候〔2010〕1587号)
    expected = "; ".join(f"{x} vs {x.split(': ')[1]}" for x in per_batch)
    assert lc.endswith(f"vs the shipped list's counts: {expected}"), lc


# ---------------------------------------------------------------------------------------------------------
# I/O failures: an InputError naming the file, never a bare OSError; no panel written
# ---------------------------------------------------------------------------------------------------------


def _fails(raw: Path, results: Path, file: Path, reason: str) -> str:
    text = str(build_fails(raw, results))
    assert f"{file}: {reason}" in text, text
    return text


def _deny(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, target: Path) -> None:
    """Make `owner.name(path, ...)` raise for `target` the PermissionError an ordinary user would get
    (root reads a chmod 000 file, and the tests run as root)."""
    original = getattr(owner, name)

    def denied(path, *args, **kwargs):
        if Path(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(owner, name, denied)


def _as_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.csv").write_text("x\n")


#: (file or folder of the raw directory, how it is damaged, what the error says after its path).
#: `directory`: a folder in its place; `broken_link`: a symlink to nothing; `read_bytes`, `iterdir`,
#: `read_csv`: that call raises PermissionError for it (simulated: the tests run as root).
UNREADABLE = [
    ("employment/ccsy_2012.csv", "directory", "is a directory, not a file"),
    ("employment/ccsy_2015.xlsx", "directory", "is a directory, not a file"),
    ("economy/ccsy_2013.xlsx", "broken_link", "broken symbolic link (it points to"),
    ("employment/ccsy_2016.csv", "read_bytes", "permission denied"),
    ("economy", "iterdir", "permission denied"),
    ("patents.csv", "directory", "is a directory, not a file"),
    # a user pilot list that is no readable file is never replaced by the shipped one
    ("policy/smart_city_pilots.csv", "directory", "is a directory, not a file"),
    ("policy/smart_city_pilots.csv", "read_csv", "permission denied"),
]


@pytest.mark.parametrize(
    ("name", "damage", "reason"), UNREADABLE, ids=[f"{n}-{d}" for n, d, _ in UNREADABLE]
)
def test_unreadable_input_is_an_error_naming_it(
    pristine_demo_raw: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    damage: str,
    reason: str,
) -> None:
    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    target = raw / name
    if damage == "directory":
        _as_directory(target)
    elif damage == "broken_link":
        target.unlink()
        target.symlink_to(tmp_path / "nowhere")
    else:
        _deny(monkeypatch, reference.pd if damage == "read_csv" else Path, damage, target)
    text = _fails(raw, tmp_path / "results", target, reason)
    assert "missing edition" not in text  # it is there, only unreadable


def test_raw_file_that_vanishes_while_read(
    pristine_demo_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dualpilot.data import panel

    raw = mutable_copy(pristine_demo_raw, tmp_path / "raw")
    target = raw / "employment" / "ccsy_2018.csv"
    find = panel.find_raw_files

    def find_then_delete(*args, **kwargs):
        out = find(*args, **kwargs)
        target.unlink()  # listed, then gone before it is read
        return out

    monkeypatch.setattr(panel, "find_raw_files", find_then_delete)
    _fails(raw, tmp_path / "results", target, "file not found (missing, or removed while")


def test_resources_that_cannot_be_read(tmp_path: Path) -> None:
    from dualpilot.data import yearbook

    folder = tmp_path / "city_master.csv"
    folder.mkdir()
    with pytest.raises(InputError, match=f"{folder}: is a directory, not a file"):
        reference.load_city_master(folder)
    link = tmp_path / "header_aliases.csv"
    link.symlink_to(tmp_path / "gone.csv")
    with pytest.raises(InputError, match="header_aliases.csv: broken symbolic link"):
        yearbook.load_aliases(link)
    with pytest.raises(InputError, match=f"{folder}: is a directory, not a file"):
        yearbook.load_aliases(folder)


def test_demo_pilot_list_passes_the_checks_in_a_narrower_window(tmp_path: Path) -> None:
    """The demo's synthetic smart-city list names only cities that exist in their batch's year, also when
    the window holds cities that do not exist then (巢湖 in 2009-2016, abolished 2011)."""
    from demo_mutations import write_demo_raw

    raw = write_demo_raw(tmp_path / "raw", years=(2009, 2016))
    assert len(_load(raw / "policy" / "smart_city_pilots.csv")) > 0
