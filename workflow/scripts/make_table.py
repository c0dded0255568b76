"""Render one tidy estimate file as a three-line table in LaTeX and Markdown (rule make_table)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import tables

    analysis = params.analysis
    settings = params.tables
    language = settings["language"]
    spec = tables.load_table_specs(inputs.specs)[analysis]
    table = tables.regression_table(
        pd.read_csv(inputs.estimates),
        terms=spec.terms,
        language=language,
        title=spec.title[language],
        note=spec.note[language],
        stars=settings["stars"],
        digits=settings["digits"],
        labels=tables.load_labels(inputs.labels),
    )
    with open(outputs.tex, "w", encoding="utf-8") as fh:
        fh.write(tables.to_latex(table, label=f"tab:{analysis}"))
    with open(outputs.md, "w", encoding="utf-8") as fh:
        fh.write(tables.to_markdown(table))


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
