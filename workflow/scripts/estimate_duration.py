"""The dual effect by years since the dual start, and a linear duration interaction (rule
estimate_duration)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import baseline as analyses
    from dualpilot.data.panel import read_panel

    bins = [tuple(b) for b in params.bins]
    tidy = analyses.duration(
        read_panel(inputs.panel), params.controls, bins=bins, options=params.estimation
    )
    tidy.to_csv(outputs.estimates, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
