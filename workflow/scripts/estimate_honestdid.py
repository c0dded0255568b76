"""HonestDiD sensitivity of the TWFE event study (rule estimate_honestdid).

Re-fits the event study of the baseline stage to get the coefficients' vcov, checks that its coefficients
equal results/estimates/event_study.csv, and writes robust confidence sets for the first post-period and the
average post-period effect under relative-magnitude and smoothness restrictions, with their figure.
"""

import logging

from dualpilot.runner import run

log = logging.getLogger("dualpilot.estimate_honestdid")


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import plots, robustness
    from dualpilot.panel import read_panel

    event_study = params.event_study
    fit, terms = robustness.event_study_fit(
        read_panel(inputs.panel),
        params.controls,
        window=event_study["window"],
        base=event_study["base"],
        control_group=event_study["control_group"],
        adjust_single_pilots=event_study["adjust_single_pilots"],
        options=params.estimation,
    )
    robustness.check_event_study(fit, terms, pd.read_csv(inputs.event_study))
    opts = params.honestdid
    lo, hi = (int(v) for v in event_study["window"])
    exclude = [f"rel_{lo}", f"rel_{hi}"] if opts["exclude_endpoints"] else []
    result = robustness.honest_sensitivity(
        fit,
        terms,
        base=event_study["base"],
        exclude_terms=exclude,
        Mbar_grid=opts["Mbar"],
        M_grid=opts["M"],
        alpha=opts["alpha"],
        seed=opts["seed"],
        n_draws=opts["n_draws"],
    )
    result.to_csv(outputs.estimates, index=False)
    fig = robustness.honestdid_figure(result, alpha=opts["alpha"], language=params.language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])
    log.info("HonestDiD confidence sets:\n%s", result.to_string(index=False))


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
