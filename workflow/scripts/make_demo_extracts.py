"""Write the demo yearbook extracts and the generator's truth (rule make_demo_extracts)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.data import programmes, reference, treatment
    from dualpilot.demo import extracts as demo

    # The demo's data-generating process is that of the default pair: programmes sc and lc of the config.
    sc, lc = programmes.dual_programmes(params.programmes, ["sc", "lc"])
    policy = {
        "sc_batch_years": sc.batch_map,
        "lc_batch_years": lc.batch_map,
        **treatment.rules_from_config(params.policy),
    }
    settings = params.demo
    smart_city = dict(settings["smart_city"])
    smart_city["prefecture_pilots"] = dict(enumerate(smart_city["prefecture_pilots"], start=1))
    truth = demo.generate_demo(
        outputs.raw,
        master=reference.load_city_master(inputs.city_master),
        crosswalk=pd.read_csv(inputs.name_crosswalk, dtype={"city_code": str}),
        aliases=pd.read_csv(inputs.header_aliases),
        low_carbon=reference.load_pilot_list(inputs.low_carbon),
        usd_cny=reference.load_usd_cny(inputs.usd_cny),
        years=tuple(params.years),
        seed=settings["seed"],
        effects=settings["effects"],
        policy=policy,
        smart_city=smart_city,
        outcome_industry=params.outcome_industry,
    )
    truth.write(outputs.truth, outputs.summary)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
