# Dual pilots (Smart City x Low-Carbon City) and digital-industry agglomeration: the whole study.
# Thin on purpose: version, config, validation (in common.smk), includes, and the default target.
# Run `snakemake --cores 2` for everything on the demo data; see README.md for targets.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/panel.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/psm.smk"
include: "workflow/rules/placebo.smk"
include: "workflow/rules/mechanisms.smk"
include: "workflow/rules/robustness.smk"
include: "workflow/rules/maps.smk"
# after the stages: the demo's recovery table reads their estimates (rules.<rule>.output)
include: "workflow/rules/demo.smk"


rule all:
    default_target: True
    input:
        rules.panel.input,
        rules.baseline.input,
        rules.psm.input,
        rules.placebo.input,
        rules.mechanisms_heterogeneity.input,
        rules.robustness.input,
        rules.maps.input,
        rules.demo_recovery.input,
