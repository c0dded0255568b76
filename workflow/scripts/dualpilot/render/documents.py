"""What the render rules share: writing one formatted table in every format, and the three-line table of
an analysis whose presentation is a row of resources/labels/tables.csv.

Estimation rules write tidy estimates only (results/estimates/*.csv and what later steps need); one render
rule per stage (render_<stage>) draws every table and figure of that stage from those files, so a change
of the `tables:` or `figures:` settings re-runs render jobs only (docs/tables-and-figures.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dualpilot.core.errors import InputError, Problem
from dualpilot.data.programmes import DEFAULT_PAIR, Pair
from dualpilot.engines import estimation
from dualpilot.render import tables


def write_table(table: tables.Table, outputs: Any, name: str) -> None:
    """Write `table` to the outputs `<name>_tex` (booktabs, labelled tab:<name>), `<name>_md` and
    `<name>_html` (a self-contained page) of a render rule (`table_outputs` in workflow/rules/common.smk
    names them so)."""
    for key, body in (
        ("tex", tables.to_latex(table, label=f"tab:{name}")),
        ("md", tables.to_markdown(table)),
        ("html", tables.to_html(table)),
    ):
        path = Path(outputs[f"{name}_{key}"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def analysis_table(
    tidy: pd.DataFrame,
    analysis: str,
    *,
    specs_path: str,
    labels: tables.Labels,
    settings: Mapping[str, Any],
) -> tables.Table:
    """The regression table of `analysis`: title, note and terms from its row of `specs_path`
    (resources/labels/tables.csv), in the language, stars and digits of `settings` (the `tables:` block)."""
    specs = tables.load_table_specs(specs_path)
    if analysis not in specs:
        raise InputError(
            Problem(str(specs_path), f"no row for analysis {analysis!r}", column="analysis"),
            "a table has no presentation",
        )
    spec = specs[analysis]
    language = settings["language"]
    tidy, extra_rows, boot_note = bootstrap_inference(
        tidy, labels=labels, language=language, digits=settings["digits"]
    )
    notes = [n for n in (spec.note[language], boot_note, labels.outcome_note(language)) if n]
    return tables.regression_table(
        tidy,
        terms=spec.terms,
        language=language,
        title=spec.title[language],
        note=("" if language == "zh" else " ").join(notes) or None,
        stars=settings["stars"],
        digits=settings["digits"],
        extra_rows=extra_rows or None,
        labels=labels,
    )


def bootstrap_inference(
    tidy: pd.DataFrame, *, labels: tables.Labels, language: str, digits: int
) -> tuple[pd.DataFrame, dict[str, list[str]], str]:
    """Take the wild bootstrap rows ("wildboot: <term>", `estimation.bootstrap_row`) out of a tidy
    frame and show them as rows of their own under the specification rows, one cell per model: the
    bootstrap p-value (`tables.format_p`), the interval by test inversion when it was computed, and
    the number of the bootstrap's clusters; the note says what the bootstrap was (cluster, weights,
    draws, seed). Row and note texts are the ``inference:*`` entries of the label file, with the
    cluster's ``cluster:<name>`` label. A frame without such rows comes back unchanged, with no rows
    and an empty note. Raises ValueError if the models' bootstraps differ in anything but their
    clusters' number, or a model has several."""
    is_boot = tidy["term"].astype(str).str.startswith(estimation.BOOTSTRAP_PREFIX)
    if not is_boot.any():
        return tidy, {}, ""
    boot, rest = tidy[is_boot], tidy[~is_boot]
    if boot["model"].duplicated().any():
        raise ValueError("a model has several wild bootstrap rows; one table shows one per model")
    described = [estimation.parse_bootstrap_label(v) for v in boot["vcov"]]
    if any(d != described[0] for d in described):
        raise ValueError(f"the columns' wild bootstraps differ: {sorted(set(boot['vcov']))}")
    info = described[0]
    cluster = labels.get(f"cluster:{info['cluster']}", language)
    by_model = boot.set_index("model")
    models = list(dict.fromkeys(rest["model"].astype(str)))

    def cells(fmt: Any) -> list[str]:
        return [fmt(by_model.loc[m]) if m in by_model.index else "" for m in models]

    def text(key: str) -> str:
        return labels.get(f"inference:{key}", language)

    rows = {
        text("wildboot_p").format(cluster=cluster): cells(
            lambda r: tables.format_p(r["p_value"], digits)
        )
    }
    if info["level"] is not None:
        interval = text("wildboot_ci").format(level=f"{info['level']:g}")
        rows[interval] = cells(
            lambda r: (
                f"[{tables.format_number(r['conf_low'], digits)}, "
                f"{tables.format_number(r['conf_high'], digits)}]"
            )
        )
    rows[text("wildboot_clusters").format(cluster=cluster)] = cells(
        lambda r: tables.format_count(r["n_clusters"])
    )
    sep = "" if language == "zh" else " "
    draws = f"{info['draws']:,}" + (sep + text("wildboot_full") if info["full"] else "")
    note = text("wildboot_note").format(
        kind=info["kind"][:3],
        cluster=cluster,
        weights=info["weights"],
        draws=draws,
        seed=info["seed"],
    )
    if info["level"] is not None:
        note += sep + text("wildboot_ci_note")
    return rest, rows, note


def write_analysis_table(
    inputs: Any, outputs: Any, analysis: str, *, labels: tables.Labels, settings: Mapping[str, Any]
) -> pd.DataFrame:
    """Read the tidy estimates `inputs[analysis]`, render `analysis_table` (with `inputs.specs`) and
    write it with `write_table`; return the estimates (a render rule may draw a figure from them)."""
    tidy = pd.read_csv(inputs[analysis])
    table = analysis_table(
        tidy, analysis, specs_path=inputs.specs, labels=labels, settings=settings
    )
    write_table(table, outputs, analysis)
    return tidy


def treatment_summary_columns(pair: Pair = DEFAULT_PAIR) -> tuple[str, ...]:
    """Columns of the treatment summary table, headed by their column:<name> entries of the label file:
    cohort, the pair's groups (none, a_only, b_only, dual), total."""
    return ("cohort", *pair.groups, "total")


#: Columns of the treatment summary table of the default pair.
TREATMENT_SUMMARY_COLUMNS: tuple[str, ...] = treatment_summary_columns()


def treatment_summary_table(
    summary: pd.DataFrame,
    labels: tables.Labels,
    language: str,
    *,
    pair: Pair = DEFAULT_PAIR,
    names: tuple[str, str] = ("smart_city", "low_carbon"),
) -> tables.Table:
    """Cities by programme (one panel each) and start cohort (rows), split by their group in the last panel
    year (columns), from the rows of `treatment.treatment_summary` (results/tables/treatment_summary.csv)
    for `pair`, whose programmes are named `names`. Programmes, the never-treated cohort and the groups are
    printed through the label file."""
    from dualpilot.core.errors import require_columns

    GROUPS = pair.groups
    lang = tables.check_language(language)
    require_columns(summary, ("programme", "cohort", "group", "n_cities"), "treatment summary")
    rows = []
    present = set(summary["programme"])
    for programme in [p for p in (*names, "dual") if p in present]:
        sub = summary[summary["programme"] == programme]
        for cohort in dict.fromkeys(sub["cohort"]):
            at = sub["cohort"].isna() if pd.isna(cohort) else sub["cohort"] == cohort
            n = sub[at.fillna(False)].groupby("group")["n_cities"].sum()
            counts = {group: int(n.get(group, 0)) for group in GROUPS}
            never = labels.get("cohort:never", lang)
            rows.append(
                {
                    "programme": programme,
                    "cohort": never if pd.isna(cohort) else str(int(cohort)),
                    # counts as text, so that they print without decimals
                    **{group: str(count) for group, count in counts.items()},
                    "total": str(sum(counts.values())),
                }
            )
    title = {
        "zh": "试点分组与开始年份的城市数",
        "en": "Cities by pilot programme, start year and group",
    }
    note = {
        "zh": "各列为城市在样本最后一年的组别；每个试点项目的各行覆盖全部城市各一次。",
        "en": "Each column counts the cities in that group in the last panel year; within a programme the "
        "rows cover every city once.",
    }
    return tables.frame_table(
        pd.DataFrame(rows),
        columns=treatment_summary_columns(pair),
        language=lang,
        group="programme",
        title=title[lang],
        note=note[lang],
        labels=labels,
    )
