"""The mechanism table, the heterogeneity tables (split samples; permutation tests of the gaps) and the
heterogeneity coefficient plot (rule render_mechanisms_heterogeneity), drawn from the tidy estimates."""

from dualpilot.workflow.runner import run

# Columns of the table, headed by their column:<name> entries of resources/labels/terms.csv.
TEST_COLUMNS = (
    "comparison",
    "gap",
    "p_bdiff",
    "p_two_sided",
)


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.render import documents as render
    from dualpilot.render import heterogeneity as heterogeneity_output
    from dualpilot.render import plots, tables

    settings = params.tables
    language = settings["language"]
    labels = tables.load_labels(inputs.labels).for_outcome_industry(params.outcome_industry)
    render.write_analysis_table(inputs, outputs, "mechanisms", labels=labels, settings=settings)

    tidy = pd.read_csv(inputs.heterogeneity)
    splits = [m for m in tidy["model"].unique() if ": " in m and m.split(": ")[1] in params.groups]
    split_table = tables.regression_table(
        tidy,
        terms=[params.treatment],
        models=splits,
        language=language,
        title={"zh": "异质性分析：分组回归", "en": "Heterogeneity: split samples"}[language],
        note=labels.outcome_note(language) or None,  # names the outcome industry when it is not IT
        stars=settings["stars"],
        digits=settings["digits"],
        labels=labels,
    )
    render.write_table(split_table, outputs, "heterogeneity")
    test_table = tables.frame_table(
        heterogeneity_output.gap_tests(tidy),
        columns=TEST_COLUMNS,
        language=language,
        group="dimension",
        label_columns=("comparison",),
        title={"zh": "组间系数差异检验", "en": "Permutation tests of the gaps"}[language],
        digits=settings["digits"],
        labels=labels,
    )
    render.write_table(test_table, outputs, "heterogeneity_tests")
    fig = heterogeneity_output.heterogeneity_plot(tidy, treatment=params.treatment, language=language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
