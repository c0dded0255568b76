"""Descriptive statistics of every variable, overall and by pilot group (rule describe_panel); rule
render_baseline formats them as a three-line table."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import baseline as analyses
    from dualpilot.data.panel import read_panel

    spec = params.descriptives
    stats = analyses.descriptives(
        read_panel(inputs.panel), spec["variables"], spec["by"], group_order=spec["group_order"]
    )
    stats.to_csv(outputs.csv, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
