"""Goodman-Bacon decomposition of the TWFE dual-pilot coefficient (rule estimate_bacon).

Writes every 2x2 comparison (type, treated and control timing groups, window, estimate, weight), the summary
by comparison type, and the weight-against-estimate scatter with the TWFE coefficient as a line.
"""

import logging

from dualpilot.runner import run

log = logging.getLogger("dualpilot.estimate_bacon")


def main(inputs, outputs, params):
    from dualpilot import plots, robustness
    from dualpilot.panel import read_panel

    panel = read_panel(inputs.panel)
    estimation = params.estimation
    result = robustness.bacon(
        panel,
        outcome=estimation["outcome"],
        treatment_col=params.treatment,
        unit=estimation["unit"],
        time=estimation["time"],
    )
    result.decomposition.to_csv(outputs.decomposition, index=False)
    result.summary.to_csv(outputs.summary, index=False)
    fig = robustness.bacon_figure(result, language=params.language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])
    log.info("TWFE %s = %.4f; by type:\n%s", params.treatment, result.twfe, result.summary)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
