"""The baseline TWFE DiD, columns (1)-(3) (rule estimate_baseline)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import baseline as analyses
    from dualpilot.data.panel import read_panel

    tidy = analyses.baseline(
        read_panel(inputs.panel),
        params.controls,
        options=params.estimation,
        bootstrap=params.bootstrap,
    )
    tidy.to_csv(outputs.estimates, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
