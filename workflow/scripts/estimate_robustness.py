"""The robustness grid (rule estimate_robustness): baseline model (2) under each specification of the
config's grid (sample, outcome, treatment coding, clustering and bootstrap, lag, trends), as tidy estimates
and a description of each specification; rule render_robustness draws its three-line table.

Treatment recodings use the pilot lists that rule build_panel uses (the user's <raw_dir>/policy/ files if
present, else the shipped ones); recoding under the configured policy must reproduce the panel's coding.
"""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_robustness")


def main(inputs, outputs, params):
    from dualpilot.analyses import policy_recoding, spec_grid
    from dualpilot.data import programmes, reference
    from dualpilot.data.panel import read_panel

    panel = read_panel(inputs.panel)
    master = reference.load_city_master(inputs.city_master)
    pair_programmes = programmes.dual_programmes(params.programmes, params.dual)
    pair, names = programmes.pair_and_names(params.programmes, params.dual)
    lists = policy_recoding.load_pilot_lists(
        params.raw_dir,
        {p.name: inputs.get(f"list_{p.key}") for p in pair_programmes},
        set(master["province"]),
        files={p.name: p.pilot_list for p in pair_programmes},
    )
    recode = policy_recoding.PolicyRecoder(
        lists,
        master,
        policy_recoding.recoding_policy(pair_programmes, params.policy),
        int(params.years[1]),
        pair=pair,
        names=names,
    )
    policy_recoding.check_coding(panel, recode(panel, {}), pair)
    grid, specs = spec_grid.run_grid(
        panel,
        spec_grid.parse_grid(params.specs),
        controls=params.controls,
        options=params.estimation,
        bootstrap=params.bootstrap,
        recode=recode,
    )
    grid.to_csv(outputs.estimates, index=False)
    specs.to_csv(outputs.specs, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
