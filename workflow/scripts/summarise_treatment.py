"""Cities per pilot group and cohort (rule summarise_treatment), as data; rule render_baseline formats\nthe table."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.data import programmes, treatment

    pair, names = programmes.pair_and_names(params.programmes, params.dual)
    summary = treatment.treatment_summary(pd.read_parquet(inputs.panel), pair=pair, names=names)
    summary.to_csv(outputs.csv, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
