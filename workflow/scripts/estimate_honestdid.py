"""HonestDiD sensitivity of the TWFE event study (rule estimate_honestdid).

Re-fits the event study of the baseline stage to get the coefficients' vcov, checks that its coefficients
equal results/estimates/event_study.csv, and writes robust confidence sets for the first post-period and the
average post-period effect under relative-magnitude and smoothness restrictions, with their figure.
"""

import logging

from dualpilot.runner import run

log = logging.getLogger("dualpilot.estimate_honestdid")

HEADERS = {
    "restriction": {"zh": "约束", "en": "Restriction"},
    "method": {"zh": "方法", "en": "Method"},
    "Mbar_or_M": {"zh": "M̄ 或 M", "en": "M̄ or M"},
    "conf_low": {"zh": "置信下限", "en": "Lower bound"},
    "conf_high": {"zh": "置信上限", "en": "Upper bound"},
}


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import plots, robustness, tables
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
    table = tables.frame_table(
        result,
        columns=HEADERS,
        language=params.language,
        group="target",
        title={"zh": "平行趋势敏感性分析（HonestDiD）", "en": "Pre-trend sensitivity (HonestDiD)"}[
            params.language
        ],
        note={
            "zh": f"事件研究以 {event_study['base']} 期为基期；RM 为相对幅度约束，SD 为平滑性约束。",
            "en": f"Event study normalised at {event_study['base']}; RM: relative magnitudes, "
            "SD: smoothness.",
        }[params.language],
    )
    with open(outputs.tex, "w", encoding="utf-8") as fh:
        fh.write(tables.to_latex(table, label="tab:honestdid"))
    with open(outputs.md, "w", encoding="utf-8") as fh:
        fh.write(tables.to_markdown(table))
    fig = robustness.honestdid_figure(result, alpha=opts["alpha"], language=params.language)
    plots.save_figure(fig, outputs.png, outputs.pdf, dpi=params.figures["dpi"])
    log.info("HonestDiD confidence sets:\n%s", result.to_string(index=False))


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
