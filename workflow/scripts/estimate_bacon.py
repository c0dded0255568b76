"""Goodman-Bacon decomposition of the TWFE dual-pilot coefficient (rule estimate_bacon).

Writes every 2x2 comparison (type, treated and control timing groups, window, estimate, weight) and the
summary by comparison type; rule render_robustness draws the weight-against-estimate scatter.
"""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_bacon")


def main(inputs, outputs, params):
    from dualpilot.analyses import bacon
    from dualpilot.data.panel import read_panel

    estimation = params.estimation
    result = bacon.bacon(
        read_panel(inputs.panel),
        outcome=estimation["outcome"],
        treatment_col=params.treatment,
        unit=estimation["unit"],
        time=estimation["time"],
    )
    result.decomposition.to_csv(outputs.decomposition, index=False)
    result.summary.to_csv(outputs.summary, index=False)
    log.info(
        "TWFE %s = %.4f = weighted sum of %d 2x2 comparisons",
        params.treatment,
        result.twfe,
        len(result.decomposition),
    )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
