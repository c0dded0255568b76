"""Descriptive statistics of every variable, overall and by pilot group (rule describe_panel)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    from dualpilot import analyses, tables
    from dualpilot.panel import read_panel

    spec = params.descriptives
    stats = analyses.descriptives(
        read_panel(inputs.panel), spec["variables"], spec["by"], group_order=spec["group_order"]
    )
    stats.to_csv(outputs.csv, index=False)
    language = params.tables["language"]
    table = tables.descriptive_table(
        stats,
        tables.load_labels(inputs.labels),
        language,
        title={"zh": "描述性统计", "en": "Descriptive statistics"}[language],
        digits=params.tables["digits"],
    )
    with open(outputs.tex, "w", encoding="utf-8") as fh:
        fh.write(tables.to_latex(table, label="tab:descriptives"))
    with open(outputs.md, "w", encoding="utf-8") as fh:
        fh.write(tables.to_markdown(table))


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
