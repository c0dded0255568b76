"""Tests of dualpilot.render.tables: regression and descriptive tables, LaTeX and Markdown renderers, labels.

Numbers in the tables are taken from tidy frames, so the checks are on structure and formatting; the
one computation used here, `analyses.descriptives`, is checked against pandas' `describe`, and a table built from a
pyfixest TWFE fit is checked against the fit's own numbers.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from dualpilot.analyses.baseline import descriptives
from dualpilot.core.errors import InputError
from dualpilot.render.tables import (
    DEFAULT_LABELS_PATH,
    TIDY_COLUMNS,
    Labels,
    descriptive_table,
    latex_escape,
    load_labels,
    markdown_escape,
    regression_table,
    significance_stars,
    to_latex,
    to_markdown,
)
from latex_helpers import SKIP_REASON, compile_documented, xelatex_ready

CONTROLS = "ln_gdp_pc+ln_density+industry+gov+open+finance"


def tidy_row(
    model: str, term: str, estimate: float, std_error: float, p_value: float, **kw
) -> dict:
    """One tidy row with model-level defaults (two-way FE, controls, clustered by city)."""
    row = {
        "model": model,
        "term": term,
        "estimate": estimate,
        "std_error": std_error,
        "t_stat": estimate / std_error if std_error else np.nan,
        "p_value": p_value,
        "conf_low": estimate - 1.96 * (std_error or 0),
        "conf_high": estimate + 1.96 * (std_error or 0),
        "n_obs": 5364,
        "n_clusters": 298,
        "r2_within": 0.1234,
        "fixed_effects": "city_code+year",
        "controls": CONTROLS,
        "sample": "full",
        "vcov": "CRV1:city_code",
    }
    row.update(kw)
    return row


@pytest.fixture
def tidy() -> pd.DataFrame:
    """Three models: no controls; controls; province-by-year FE with a dual-vs-single Wald test."""
    pyfe = {"fixed_effects": "city+province^year", "n_obs": 5040, "r2_within": 0.0567}
    return pd.DataFrame(
        [
            tidy_row("(1)", "dual_post", 0.123, 0.045, 0.006, controls=""),
            tidy_row("(2)", "dual_post", 0.101, 0.040, 0.012),
            tidy_row("(2)", "ln_gdp_pc", -0.00004, 0.02, 0.5),
            tidy_row("(3)", "dual_post", 0.09, 0.04, 0.05, **pyfe),
            tidy_row("(3)", "sc_post", 0.03, 0.03, 0.3, **pyfe),
            tidy_row("(3)", "wald:dual_post=sc_post", 4.21, np.nan, 0.0403, **pyfe),
        ]
    )


def latex_rows(tex: str) -> dict[str, list[str]]:
    """Rows of a LaTeX tabular keyed by their first cell; a row with an empty first cell gets the
    key of the row above plus a prime."""
    rows: dict[str, list[str]] = {}
    previous = ""
    for line in tex.splitlines():
        if line.endswith("\\\\") and "&" in line:
            cells = [c.strip() for c in line[:-2].split(" & ")]
            key = cells[0] or (previous + "'")  # a standard-error row: "<term label>'"
            rows[key] = cells[1:]
            previous = cells[0] or previous
    return rows


# --------------------------------------------------------------------------------------------------
# Stars
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (1.0, ""),
        (0.5, ""),
        (0.1, ""),  # exactly at 10 %: not significant (strict <, as Stata's esttab)
        (0.0999999, "*"),
        (0.05, "*"),
        (0.0499999, "**"),
        (0.01, "**"),
        (0.0099999, "***"),
        (0.0, "***"),
        (np.nan, ""),
    ],
)
def test_stars_at_the_boundaries(p: float, expected: str) -> None:
    assert significance_stars(p) == expected


def test_stars_in_the_table_follow_the_thresholds(tidy: pd.DataFrame) -> None:
    rows = latex_rows(to_latex(regression_table(tidy)))
    # p = 0.006 -> ***, 0.012 -> **, 0.05 (boundary) -> *
    assert rows["双试点"] == ["0.123***", "0.101**", "0.090*"]
    assert rows["智慧城市试点"] == ["", "", "0.030"]


def test_custom_star_thresholds_and_their_note(tidy: pd.DataFrame) -> None:
    table = regression_table(tidy, stars=(0.01, 0.05, 0.001), language="en")
    rows = latex_rows(to_latex(table))
    assert rows["Dual pilot"] == ["0.123**", "0.101*", "0.090"]
    assert "*** p<0.001, ** p<0.01, * p<0.05" in table.notes[0]


@pytest.mark.parametrize("bad", [(), (0.1, 0.1), (0.0, 0.05), (1.0,), (-0.1, 0.05)])
def test_invalid_star_thresholds_raise(tidy: pd.DataFrame, bad: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        regression_table(tidy, stars=bad)


def test_p_value_outside_unit_interval_raises() -> None:
    with pytest.raises(ValueError, match="p-value"):
        significance_stars(1.5)


# --------------------------------------------------------------------------------------------------
# LaTeX structure
# --------------------------------------------------------------------------------------------------


def test_latex_is_a_booktabs_three_line_table(tidy: pd.DataFrame) -> None:
    tex = to_latex(regression_table(tidy, title="基准回归"), label="tab:baseline")
    assert tex.count("\\toprule") == 1
    assert tex.count("\\bottomrule") == 1
    assert tex.count("\\midrule") == 3  # under the header, before the test panel, before the specs
    assert "\\hline" not in tex and "\\cline" not in tex and "\\vline" not in tex
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", tex)
    assert spec is not None and spec.group(1) == "lccc"
    assert "|" not in tex
    order = [tex.index(k) for k in ("\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}")]
    assert order == sorted(order)
    assert "\\caption{基准回归}" in tex and "\\label{tab:baseline}" in tex
    assert tex.splitlines()[0] == "\\begin{table}[htbp]"


def test_latex_header_and_standard_errors_in_parentheses(tidy: pd.DataFrame) -> None:
    tex = to_latex(regression_table(tidy))
    lines = tex.splitlines()
    assert " & (1) & (2) & (3) \\\\" in lines
    i = lines.index("双试点 & 0.123*** & 0.101** & 0.090* \\\\")
    assert lines[i + 1] == " & (0.045) & (0.040) & (0.040) \\\\"
    j = lines.index("经济发展水平 &  & 0.000 &  \\\\")  # -0.00004 shows as 0.000, never -0.000
    assert lines[j + 1] == " &  & (0.020) &  \\\\"


def test_fixed_effect_control_and_statistic_rows(tidy: pd.DataFrame) -> None:
    rows = latex_rows(to_latex(regression_table(tidy)))
    assert rows["控制变量"] == ["否", "是", "是"]
    # 'city' and 'city_code' share the label, so they share one row
    assert rows["城市固定效应"] == ["是", "是", "是"]
    assert rows["年份固定效应"] == ["是", "是", "否"]
    assert rows["省份$\\times$年份固定效应"] == ["否", "否", "是"]
    assert rows["观测值"] == ["5,364", "5,364", "5,040"]
    assert rows["组内R\\textsuperscript{2}"] == ["0.123", "0.123", "0.057"]
    assert rows["聚类数"] == ["298", "298", "298"]
    names = list(rows)
    assert names.index("控制变量") < names.index("城市固定效应") < names.index("观测值")


def test_english_rows_and_notes(tidy: pd.DataFrame) -> None:
    table = regression_table(tidy, language="en", note="Sample 2006-2023.")
    rows = latex_rows(to_latex(table))
    assert rows["Controls"] == ["No", "Yes", "Yes"]
    assert rows["City FE"] == ["Yes", "Yes", "Yes"]
    assert rows["Province$\\times$Year FE"] == ["No", "No", "Yes"]
    assert rows["Observations"] == ["5,364", "5,364", "5,040"]
    assert rows["Within R\\textsuperscript{2}"] == ["0.123", "0.123", "0.057"]
    assert rows["Clusters"] == ["298", "298", "298"]
    assert table.notes[0] == (
        "Standard errors clustered by city in parentheses. *** p<0.01, ** p<0.05, * p<0.1. "
        "Tests report the statistic with its p-value in brackets."
    )
    assert table.notes[1] == "Sample 2006-2023."


def test_chinese_note_on_clustering_and_stars(tidy: pd.DataFrame) -> None:
    note = regression_table(tidy).notes[0]
    assert note.startswith("括号内为聚类到城市层面的稳健标准误；")
    assert "***、**、* 分别表示在 1%、5%、10% 的水平上显著" in note
    tex = to_latex(regression_table(tidy))
    assert "注：括号内为聚类到城市层面的稳健标准误" in tex
    assert "1\\%、5\\%、10\\%" in tex


def test_test_rows_form_their_own_panel(tidy: pd.DataFrame) -> None:
    table = regression_table(tidy)
    assert [p.title for p in table.panels] == [None, "检验（统计量 [p 值]）", None]
    (row,) = table.panels[1].rows
    assert row.cells == ("Wald 检验：双试点 = 智慧城市试点", "", "", "4.210 [0.040]")
    tex = to_latex(table)
    assert "\\multicolumn{4}{l}{检验（统计量 [p 值]）} \\\\" in tex


def test_lincom_rows_and_term_selection(tidy: pd.DataFrame) -> None:
    extra = tidy_row("(3)", "lincom:dual_post-sc_post", 0.06, 0.02, 0.003, r2_within=0.0567)
    extra.update(fixed_effects="city+province^year", n_obs=5040)
    frame = pd.concat([tidy, pd.DataFrame([extra])], ignore_index=True)
    table = regression_table(
        frame, terms=["sc_post", "dual_post", "lincom:dual_post-sc_post"], language="en"
    )
    coef_labels = [r.cells[0] for r in table.panels[0].rows if r.kind == "coef"]
    assert coef_labels == ["Smart City pilot", "Dual pilot"]  # the order asked for
    (test,) = table.panels[1].rows
    assert test.cells[0] == "Linear combination: Dual pilot - Smart City pilot"
    assert test.cells[3] == "0.060 [0.003]"


def test_models_selection_and_order(tidy: pd.DataFrame) -> None:
    table = regression_table(tidy, models=["(3)", "(1)"])
    assert table.header == ("", "(3)", "(1)")
    rows = latex_rows(to_latex(table))
    assert rows["双试点"] == ["0.090*", "0.123***"]
    assert "经济发展水平" not in rows  # only model (2) has it


def test_extra_rows_go_before_the_statistics(tidy: pd.DataFrame) -> None:
    table = regression_table(tidy, extra_rows={"被解释变量": ["lq", "lq", "lq"]})
    labels = [r.cells[0] for r in table.panels[-1].rows]
    assert labels.index("被解释变量") == labels.index("观测值") - 1
    with pytest.raises(ValueError, match="extra row"):
        regression_table(tidy, extra_rows={"x": ["a"]})


def test_digits_and_statistics_missing_everywhere_are_left_out(tidy: pd.DataFrame) -> None:
    frame = tidy.assign(r2_within=np.nan)
    table = regression_table(frame, digits=2)
    rows = latex_rows(to_latex(table))
    assert rows["双试点"] == ["0.12***", "0.10**", "0.09*"]
    assert not any(k.startswith("组内") for k in rows)


@pytest.mark.parametrize(
    ("vcov", "zh", "en"),
    [
        ("hetero", "括号内为异方差稳健标准误", "Heteroskedasticity-robust standard errors"),
        ("iid", "括号内为标准误；", "Standard errors in parentheses"),
        ("cluster(province)", "聚类到省份层面", "clustered by province"),
        ("CRV1:city_code+year", "聚类到城市和年份层面", "clustered by city and year"),
        ("wild bootstrap", "括号内为标准误（wild bootstrap）", "Standard errors (wild bootstrap)"),
    ],
)
def test_standard_error_note_follows_vcov(tidy: pd.DataFrame, vcov: str, zh: str, en: str) -> None:
    frame = tidy.assign(vcov=vcov)
    assert zh in regression_table(frame).notes[0]
    assert en in regression_table(frame, language="en").notes[0]


def test_mixed_vcov_note_names_the_columns(tidy: pd.DataFrame) -> None:
    frame = tidy.assign(vcov=np.where(tidy["model"] == "(1)", "hetero", "CRV1:city_code"))
    note = regression_table(frame, language="en").notes[0]
    assert "column(s) 1: robust" in note and "column(s) 2, 3: clustered by city" in note
    zh = regression_table(frame.assign(model=frame["model"].map(MODEL_IDS))).notes[0]
    assert "第 1 列为异方差稳健" in zh and "第 2、3 列为聚类到城市层面" in zh  # positions, not ids


# model ids of the workflow's tidy files (columns of the pilot-order table)
MODEL_IDS = {"(1)": "twfe_states", "(2)": "imputation_states", "(3)": "twfe_order"}


def test_model_ids_are_headed_by_their_labels_and_did2s_is_named(tidy: pd.DataFrame) -> None:
    gmm = "did2s GMM by city_code (Butts-Gardner, no small-sample factor, G=283; t and F with G-1=282 df)"
    frame = tidy.assign(
        model=tidy["model"].map(MODEL_IDS),
        vcov=np.where(tidy["model"] == "(2)", gmm, "CRV1:city_code"),
    )
    table = regression_table(frame)
    assert table.header == ("", "TWFE：试点状态", "插补估计：试点状态", "TWFE：试点顺序")
    note = table.notes[0]
    assert "第 2 列为聚类到城市层面的两阶段 GMM 标准误" in note
    assert "did2s" not in note and "twfe_states" not in note and "city_code" not in note
    en = regression_table(frame, language="en")
    assert en.header[1:] == ("TWFE: pilot states", "Imputation: pilot states", "TWFE: pilot order")
    labels = load_labels()
    # a heterogeneity split "<dimension>: <group>": its own entry, else label(dimension)：label(group)
    assert labels.model("development: high", "zh") == "发展水平高"
    assert labels.model("greening: low", "zh") == labels.get("model:greening: low", "zh")
    assert labels.model("environment: high", "zh") == "环境基础分组（SO2排放强度）：高组"
    assert labels.model("ln_digital_pat", "en") == "Digital innovation"  # a mechanism's outcome
    assert labels.model("(4)", "zh") == "(4)" and labels.has_model("(4)")
    assert not labels.has_model("mystery_model")


def test_wide_tables_shrink_to_the_line_and_long_labels_wrap(tidy: pd.DataFrame) -> None:
    """Every tabular sits in a resizebox that only shrinks (never enlarges) it to the line width; a long
    row label (a test of several terms) wraps in a paragraph column instead of widening the table."""
    tex = to_latex(regression_table(tidy), label="tab:x")
    shrink = "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%"
    lines = tex.splitlines()
    assert lines[lines.index(shrink) + 1] == "\\begin{tabular}{lccc}"
    assert lines[lines.index("\\end{tabular}") + 1] == "}"
    long = "wald:dual_post=sc_only_post,dual_post=lc_only_post,sc_only_post=lc_only_post"
    frame = pd.concat([tidy, pd.DataFrame([tidy_row("(3)", long, 5.0, np.nan, 0.01)])])
    wrapped = to_latex(regression_table(frame))
    assert "\\begin{tabular}{p{0.36\\linewidth}ccc}" in wrapped


def test_p_values_never_read_zero() -> None:
    from dualpilot.render.tables import format_p

    assert format_p(0.0) == "< 0.001" and format_p(0.00099) == "< 0.001"
    assert format_p(0.001) == "0.001" and format_p(0.0404) == "0.040"
    assert format_p(0.00001, digits=4) == "< 0.0001" and format_p(np.nan) == ""
    with pytest.raises(ValueError):
        format_p(1.2)
    frame = pd.DataFrame([tidy_row("(1)", "dual_post", 0.1, 0.01, 1e-20)])
    frame = pd.concat([frame, pd.DataFrame([tidy_row("(1)", "wald:dual_post=0", 100, np.nan, 0.0)])])
    test_row = regression_table(frame).panels[1].rows[0]
    assert test_row.cells[1] == "100.000 [< 0.001]"


# --------------------------------------------------------------------------------------------------
# Markdown and escaping
# --------------------------------------------------------------------------------------------------


def test_markdown_has_the_same_content(tidy: pd.DataFrame) -> None:
    md = to_markdown(regression_table(tidy, title="基准回归"))
    lines = md.splitlines()
    assert lines[0] == "**基准回归**"
    table_lines = [line for line in lines if line.startswith("|")]
    assert table_lines[0] == "|  | (1) | (2) | (3) |"
    assert table_lines[1] == "| :-- | :-: | :-: | :-: |"
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in table_lines)
    assert "| 双试点 | 0.123\\*\\*\\* | 0.101\\*\\* | 0.090\\* |" in lines
    assert "|  | (0.045) | (0.040) | (0.040) |" in lines
    assert "| 省份×年份固定效应 | 否 | 否 | 是 |" in lines
    assert "| 组内R² | 0.123 | 0.123 | 0.057 |" in lines
    assert "| **检验（统计量 \\[p 值\\]）** |  |  |  |" in lines
    assert lines[-1].startswith("注：括号内为聚类到城市层面的稳健标准误")
    # 2 rows per term (3 terms), 1 test panel title + 1 test, 4 spec rows, 3 statistics
    assert len(table_lines) == 2 + 6 + 2 + 4 + 3


def test_latex_escape_covers_special_characters() -> None:
    raw = "a&b%c$d#e_f{g}h~i^j\\k<l>m|n"
    assert latex_escape(raw) == (
        "a\\&b\\%c\\$d\\#e\\_f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j"
        "\\textbackslash{}k\\textless{}l\\textgreater{}m\\textbar{}n"
    )
    assert latex_escape("R² × − – ≥ ≤") == (
        "R\\textsuperscript{2} $\\times$ $-$ -- $\\geq$ $\\leq$"
    )


def test_labels_titles_and_notes_are_escaped_in_both_renderers(tidy: pd.DataFrame) -> None:
    labels = Labels(
        {"dual_post": ("双试点_100%", "Dual & pilot | #1"), "fe:city_code": ("城市", "C")}
    )
    table = regression_table(
        tidy[tidy["model"] == "(2)"].assign(fixed_effects="city_code"),
        terms=["dual_post"],
        language="en",
        title="Table $1$ {x}",
        note="50% of cities_ok",
        labels=labels,
    )
    tex = to_latex(table)
    assert "Dual \\& pilot \\textbar{} \\#1 & 0.101** \\\\" in tex
    assert "\\caption{Table \\$1\\$ \\{x\\}}" in tex
    assert "50\\% of cities\\_ok" in tex
    md = to_markdown(table)
    assert "| Dual & pilot \\| #1 | 0.101\\*\\* |" in md
    assert markdown_escape("a|b*c_d`e") == "a\\|b\\*c\\_d\\`e"


def test_leading_bracket_cannot_become_an_optional_argument() -> None:
    labels = Labels({"dual_post": ("[x]", "[x]"), "fe:city_code": ("a", "a")})
    frame = pd.DataFrame([tidy_row("(1)", "dual_post", 0.1, 0.05, 0.04)])
    tex = to_latex(regression_table(frame, labels=labels), float_env=False)
    assert "{}[x] & 0.100** \\\\" in tex
    assert not tex.startswith("\\begin{table}")


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def test_malformed_frames_raise_clear_errors(tidy: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['vcov'\]"):
        regression_table(tidy.drop(columns="vcov"))
    with pytest.raises(ValueError, match="repeated"):
        regression_table(pd.concat([tidy, tidy.iloc[[0]]]))
    with pytest.raises(ValueError, match="in none of the models"):
        regression_table(tidy, terms=["dual_post", "nope"])
    with pytest.raises(ValueError, match="not in the tidy frame"):
        regression_table(tidy, models=["(9)"])
    with pytest.raises(ValueError, match="differing values of 'n_obs'"):
        bad = tidy.copy()
        bad.loc[2, "n_obs"] = 1
        regression_table(bad)
    with pytest.raises(ValueError, match="lacks a statistic or p_value"):
        regression_table(
            tidy.assign(p_value=np.where(tidy.term.str.startswith("wald"), np.nan, 0.1))
        )
    with pytest.raises(ValueError, match="language"):
        regression_table(tidy, language="fr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vcov column is empty"):
        regression_table(tidy.assign(vcov=np.nan))


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------

PANEL_COLUMNS = (
    "city_code city_name province region region4 year it_emp total_emp lq gdp population area "
    "secondary_share fiscal_exp fdi loans students so2 green_cover digital_patents green_patents "
    "ln_gdp_pc ln_density industry gov open finance ln_digital_pat ln_green_pat human_capital sc_year "
    "lc_year dual_year sc_post lc_post dual_post years_since_dual group"
).split()


def test_shipped_labels_cover_the_panel_and_the_analysis_terms(panel: pd.DataFrame) -> None:
    labels = load_labels()
    assert labels.source == str(DEFAULT_LABELS_PATH)
    for term in [*PANEL_COLUMNS, *panel.columns, "sc_only_post", "lc_only_post"]:
        assert term in labels.entries, term
    assert labels.get("ln_gdp_pc", "zh") == "经济发展水平"
    assert labels.get("dual_post", "en") == "Dual pilot"
    expected_zh = {"ln_density": "人口密度", "industry": "产业结构", "gov": "政府干预"}
    expected_zh |= {"open": "对外开放", "finance": "金融发展"}
    assert {k: labels.get(k, "zh") for k in expected_zh} == expected_zh


def test_generic_labels_for_event_time_duration_and_interactions() -> None:
    labels = load_labels()
    for k in range(-6, 9):
        assert labels.get(f"rel_{k}", "zh") == f"相对时间 {k}"
        assert labels.get(f"rel_{k}", "en") == f"Relative year {k}"
    assert labels.get("rel_m3", "en") == "Relative year -3"
    assert labels.get("rel::-3", "zh") == "相对时间 -3"
    assert labels.get("dur_2", "en") == "Years since start 2"
    assert labels.get("dur_3_5", "zh") == "政策持续期 3–5"
    assert labels.get("dur_6plus", "en") == "Years since start ≥6"
    # a bin up to 99 years (config duration: bins [6, 99]) is open-ended, labelled like dur_6plus
    assert labels.get("dur_6_99", "en") == "Years since start ≥6"
    assert labels.get("dur_6_99", "zh") == "政策持续期 ≥6"
    assert labels.get("dur_0_1", "en") == "Years since start 0–1"
    assert labels.get("dual_post:east", "zh") == "双试点 × 东部"
    assert labels.get("fe:province^year", "zh") == "省份×年份固定效应"
    assert labels.get("fe:city_code^year", "en") == "City code×Year FE"
    assert labels.get("wald:dual_post=sc_post,dual_post=lc_post", "en") == (
        "Wald test: Dual pilot = Smart City pilot; Dual pilot = Low-Carbon City pilot"
    )


def test_unknown_term_shows_its_name_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    labels = load_labels()
    with caplog.at_level(logging.WARNING, logger="dualpilot.render.tables"):
        assert labels.get("mystery_var", "zh") == "mystery_var"
    assert "no label for 'mystery_var'" in caplog.text
    assert not labels.has("mystery_var") and labels.has("rel_3")


def test_label_file_errors_name_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "terms.csv"
    bad.write_text("term,label_zh,label_en\na,甲,A\nb,,B\na,乙,A2\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_labels(bad)
    text = str(err.value)
    assert "line 3, column 'label_zh': empty cell" in text
    assert "line 4, column 'term': term 'a' listed twice" in text
    bad.write_text("term,label_zh\na,甲\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        load_labels(bad)
    with pytest.raises(InputError, match="not found"):
        load_labels(tmp_path / "absent.csv")


# --------------------------------------------------------------------------------------------------
# A table from a real fit (pyfixest), and descriptive statistics
# --------------------------------------------------------------------------------------------------


def test_table_from_a_pyfixest_twfe_fit(panel: pd.DataFrame) -> None:
    data = panel.assign(city_code=panel["city_code"].astype(str))
    fits = {
        "(1)": pf.feols("lq ~ dual_post | city_code + year", data, vcov={"CRV1": "city_code"}),
        "(2)": pf.feols(
            f"lq ~ dual_post + {CONTROLS} | city_code + year", data, vcov={"CRV1": "city_code"}
        ),
    }
    frames = []
    for name, fit in fits.items():
        t = fit.tidy().reset_index()
        frames.append(
            pd.DataFrame(
                {
                    "model": name,
                    "term": t["Coefficient"],
                    "estimate": t["Estimate"],
                    "std_error": t["Std. Error"],
                    "t_stat": t["t value"],
                    "p_value": t["Pr(>|t|)"],
                    "conf_low": t["2.5%"],
                    "conf_high": t["97.5%"],
                    "n_obs": fit._N,
                    "n_clusters": data["city_code"].nunique(),
                    "r2_within": fit._r2_within,
                    "fixed_effects": "city_code+year",
                    "controls": "" if name == "(1)" else CONTROLS,
                    "sample": "full",
                    "vcov": "CRV1:city_code",
                }
            )
        )
    tidy = pd.concat(frames, ignore_index=True)
    assert list(tidy.columns) == list(TIDY_COLUMNS)
    table = regression_table(tidy, terms=["dual_post", "ln_gdp_pc"], language="en")
    rows = latex_rows(to_latex(table))
    for j, fit in enumerate(fits.values()):
        est = fit.coef()["dual_post"]
        p = fit.pvalue()["dual_post"]
        assert rows["Dual pilot"][j] == f"{est:.3f}" + significance_stars(p)
        assert rows["Dual pilot'"][j] == f"({fit.se()['dual_post']:.3f})"
        assert rows["Observations"][j] == f"{fit._N:,}"
        assert rows["Within R\\textsuperscript{2}"][j] == f"{fit._r2_within:.3f}"
        assert rows["Clusters"][j] == str(data["city_code"].nunique())
    assert rows["Economic development"][0] == ""
    assert rows["Controls"] == ["No", "Yes"]
    assert rows["City FE"] == rows["Year FE"] == ["Yes", "Yes"]


def test_descriptives_match_pandas_describe(panel: pd.DataFrame) -> None:
    data = panel.copy()
    data.loc[data.index[::7], "gov"] = np.nan  # missing values are dropped per variable
    variables = ["lq", "gov", "ln_gdp_pc"]
    stats = descriptives(data, variables, by="group", group_order=sorted(data["group"].unique()))
    for group, frame in data.groupby("group", sort=False):
        expected = frame[variables].describe().T
        got = stats[stats["group"] == group].set_index("variable")
        np.testing.assert_array_equal(got["n"], expected["count"])
        for mine, theirs in [("mean", "mean"), ("sd", "std"), ("min", "min"), ("max", "max")]:
            np.testing.assert_allclose(got[mine], expected[theirs], rtol=1e-12, atol=0)
    assert list(stats["group"].unique()) == ["all", *sorted(data["group"].unique())]
    with pytest.raises(ValueError, match="numeric"):
        descriptives(data, ["city_name"])


def test_descriptive_table_structure(panel: pd.DataFrame) -> None:
    stats = descriptives(panel, ["lq", "gov"], by=None)
    table = descriptive_table(stats, load_labels(), "zh", title="描述性统计")
    assert table.header == ("变量", "变量名", "观测值", "均值", "标准差", "最小值", "最大值")
    tex = to_latex(table)
    assert "\\begin{tabular}{llccccc}" in tex
    rows = latex_rows(tex)
    n = len(panel)
    sd = panel["lq"].std()
    assert rows["IT产业就业区位熵"] == [
        "lq",
        f"{n:,}",
        f"{panel['lq'].mean():.3f}",
        f"{sd:.3f}",
        f"{panel['lq'].min():.3f}",
        f"{panel['lq'].max():.3f}",
    ]
    assert rows["变量"] == ["变量名", "观测值", "均值", "标准差", "最小值", "最大值"]

    grouped = descriptive_table(
        descriptives(panel, ["lq"], by="group", group_order=list(panel["group"].unique())),
        None,
        "en",
        show_names=False,
    )
    assert grouped.header == ("Variable", "N", "Mean", "SD", "Min", "Max")
    titles = [p.title for p in grouped.panels]
    names = {"none": "Non-pilot cities", "sc_only": "Smart City only cities"}
    names |= {"lc_only": "Low-Carbon only cities", "dual": "Dual pilot cities"}
    assert titles == ["Full sample", *(names[g] for g in panel["group"].unique())]
    md = to_markdown(grouped)
    assert md.count("**Dual pilot cities**") == 1
    with pytest.raises(ValueError, match="lacks column"):
        descriptive_table(stats.drop(columns="sd"), None, "zh")


# --------------------------------------------------------------------------------------------------
# XeLaTeX compilation (where a TeX installation with xeCJK exists)
# --------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not xelatex_ready(), reason=SKIP_REASON)
def test_latex_compiles_with_xelatex_and_xecjk(tidy: pd.DataFrame, tmp_path: Path) -> None:
    tables = [
        to_latex(regression_table(tidy, title="基准回归"), label="tab:zh"),
        to_latex(regression_table(tidy, language="en", title="A & B_{1} 50% ~ ^ \\ # $")),
    ]
    compile_documented("\n".join(tables), tmp_path)
    assert (tmp_path / "doc.pdf").stat().st_size > 5000


def test_note_reads_the_estimation_modules_vcov_labels(panel: pd.DataFrame) -> None:
    """Columns whose engine labels differ only in G and K share one sentence naming the cluster."""
    from dualpilot.analyses import baseline as analyses

    tidy = analyses.baseline(panel, ["ln_gdp_pc", "gov"])
    assert tidy["vcov"].str.startswith("CRV1 by city_code (").all()
    assert tidy["vcov"].nunique() > 1
    md = to_markdown(regression_table(tidy, language="zh"))
    assert "聚类到城市" in md or "城市层面" in md
    assert "fixest small-sample" not in md


def test_frame_table_labels_only_the_named_columns_and_groups() -> None:
    from dualpilot.render.tables import frame_table

    frame = pd.DataFrame(
        {
            "design": ["pooled", "pooled", "baseline"],
            "covariate": ["gov", "none", "gov"],
            "note": ["none", "gov", "x"],
            "value": [1.23456, np.nan, -2.0],
        }
    )
    columns = {
        "covariate": {"zh": "变量", "en": "Covariate"},
        "note": {"zh": "说明", "en": "Note"},
        "value": {"zh": "数值", "en": "Value"},
    }
    table = frame_table(
        frame, columns=columns, language="en", group="design", label_columns=["covariate"], digits=2
    )
    assert table.header == ("Covariate", "Note", "Value")
    labels = load_labels()
    assert [p.title for p in table.panels] == [
        labels.get("pooled", "en"),
        labels.get("baseline", "en"),
    ]
    first = table.panels[0].rows
    assert first[0].cells == (labels.get("gov", "en"), "none", "1.23")
    assert first[1].cells == (labels.get("none", "en"), "gov", "")
    assert table.panels[1].rows[0].cells[2] == "-2.00"
    with pytest.raises(ValueError):
        frame_table(frame, columns={"missing": {"zh": "x", "en": "x"}})
    # columns given by name are headed by their column:<name> entries of the label file
    named = frame.assign(p_value=[0.0, 0.5, np.nan])
    zh = frame_table(named, columns=["covariate", "value", "p_value"], labels=Labels(
        {"column:covariate": ("变量", "Covariate"), "column:value": ("数值", "Value"),
         "column:p_value": ("p 值", "p")}
    ))  # fmt: skip
    assert zh.header == ("变量", "数值", "p 值")
    assert [row.cells[2] for row in zh.panels[0].rows] == ["< 0.001", "0.500", ""]
    shipped = frame_table(named.rename(columns={"covariate": "comparison"}), columns=["comparison"])
    assert shipped.header == (labels.get("column:comparison", "zh"),) == ("比较",)
