"""The two-treatment design (rule estimate_pilot_order): the effects of the pilot states none / smart-city
only / low-carbon only / dual and of the pilot order (which pilot came first), by TWFE and by imputation
from not-yet-treated and never-treated observations, with the synergy and order tests."""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_pilot_order")


def main(inputs, outputs, params):
    from dualpilot.analyses import pilot_order
    from dualpilot.data.panel import read_panel
    from dualpilot.data.programmes import Pair

    estimates = pilot_order.two_treatment_design(
        read_panel(inputs.panel),
        params.controls,
        options=params.estimation,
        pair=Pair.of(params.dual),
    )
    estimates.to_csv(outputs.estimates, index=False)
    log.info(
        "two-treatment design: %d rows of %d models written",
        len(estimates),
        estimates["model"].nunique(),
    )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
