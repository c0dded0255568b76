"""The dual effect by years since the dual start, and a linear duration interaction (rule
estimate_duration)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    from dualpilot import analyses
    from dualpilot.panel import read_panel

    bins = [tuple(b) for b in params.bins]
    tidy = analyses.duration(
        read_panel(inputs.panel), params.controls, bins=bins, options=params.estimation
    )
    tidy.to_csv(outputs.estimates, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
