"""Heterogeneity tables: split-sample estimates by group, and the permutation tests of the gaps (rule
tabulate_heterogeneity)."""

from dualpilot.runner import run

TEST_HEADERS = {
    "comparison": {"zh": "比较", "en": "Comparison"},
    "gap": {"zh": "系数差异", "en": "Gap"},
    "p_bdiff": {"zh": "经验 p 值（bdiff）", "en": "Empirical p (bdiff)"},
    "p_two_sided": {"zh": "双侧经验 p 值", "en": "Two-sided empirical p"},
}


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import heterogeneity, tables

    tidy = pd.read_csv(inputs.estimates)
    settings, language = params.tables, params.tables["language"]
    labels = tables.load_labels(inputs.labels)
    splits = [m for m in tidy["model"].unique() if ": " in m and m.split(": ")[1] in params.groups]
    split_table = tables.regression_table(
        tidy,
        terms=["dual_post"],
        models=splits,
        language=language,
        title={"zh": "异质性分析：分组回归", "en": "Heterogeneity: split samples"}[language],
        stars=settings["stars"],
        digits=settings["digits"],
        labels=labels,
    )
    test_table = tables.frame_table(
        heterogeneity.gap_tests(tidy),
        columns=TEST_HEADERS,
        language=language,
        group="dimension",
        title={"zh": "组间系数差异检验", "en": "Permutation tests of the gaps"}[language],
        digits=settings["digits"],
        labels=labels,
    )
    for table, tex, md, label in (
        (split_table, outputs.tex, outputs.md, "tab:heterogeneity"),
        (test_table, outputs.tests_tex, outputs.tests_md, "tab:heterogeneity_tests"),
    ):
        with open(tex, "w", encoding="utf-8") as fh:
            fh.write(tables.to_latex(table, label=label))
        with open(md, "w", encoding="utf-8") as fh:
            fh.write(tables.to_markdown(table))


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
