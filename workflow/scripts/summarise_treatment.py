"""Cities per pilot group and cohort (rule summarise_treatment), as data; rule render_baseline formats
the table. The pair is that of params `programmes` and `dual` (from the command line without --params: the
default pair sc, lc of config/config.yaml, as `treatment.treatment_summary` defaults to)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.data import programmes, treatment

    if params.get("programmes") is None:
        pair, names = programmes.DEFAULT_PAIR, treatment.DEFAULT_NAMES
    else:
        pair, names = programmes.pair_and_names(params.programmes, params.dual)
    summary = treatment.treatment_summary(pd.read_parquet(inputs.panel), pair=pair, names=names)
    summary.to_csv(outputs.csv, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
