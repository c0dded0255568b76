"""Heterogeneity-robust staggered DID estimates of the dual pilot (rule estimate_staggered).

Callaway-Sant'Anna with never-treated and with not-yet-treated controls, Sun-Abraham and the imputation
estimator (Borusyak-Jaravel-Spiess), each aggregated to an overall ATT, an event study and cohort effects,
in the project's tidy estimate format, and the vcov of the imputation event study (HonestDiD reads it).
Single-pilot states are handled as in the TWFE event study (config `event_study: adjust_single_pilots`).
"""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_staggered")


def main(inputs, outputs, params):
    from dualpilot.analyses import staggered_did
    from dualpilot.data.panel import read_panel
    from dualpilot.data.programmes import Pair

    options = dict(params.options)
    estimation = params.estimation
    estimates, vcov = staggered_did.staggered_estimates_with_vcov(
        read_panel(inputs.panel),
        params.controls if options.pop("use_controls") else (),
        adjust_single_pilots=params.adjust_single_pilots,
        pair=Pair.of(params.dual),
        outcome=estimation["outcome"],
        unit=estimation["unit"],
        time=estimation["time"],
        cluster=estimation["cluster"],
        **options,
    )
    estimates.to_csv(outputs.estimates, index=False)
    vcov.to_csv(outputs.vcov, index_label="term")
    overall = estimates[estimates["term"] == "ATT"]
    log.info(
        "overall ATT: %s",
        "; ".join(
            f"{row.model} {row.estimate:.4f} (SE {row.std_error:.4f})"
            for row in overall.itertuples()
        ),
    )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
