"""The project's one tidy estimate format (results/estimates/<analysis>.csv), defined once.

Every analysis writes one row per (model, term) with these columns; tables and figures are rendered from
these files only. Test rows share the format: ``wald: ...`` (F statistic in t_stat), ``lincom: ...``
(estimate and standard error), ``wildboot: ...``, ``rwolf: ...`` and ``bdiff: ...`` (p-value in p_value).
"""

TIDY_COLUMNS: tuple[str, ...] = (
    "model",
    "term",
    "estimate",
    "std_error",
    "t_stat",
    "p_value",
    "conf_low",
    "conf_high",
    "n_obs",
    "n_clusters",
    "r2_within",
    "fixed_effects",
    "controls",
    "sample",
    "vcov",
)

#: Columns that describe a model rather than a term: equal on every regular row of one model.
MODEL_COLUMNS: tuple[str, ...] = TIDY_COLUMNS[-7:]
