"""Publication tables rendered from tidy estimate files.

Every analysis writes its estimates in one tidy format (results/estimates/<analysis>.csv), one row per
(model, term), with the columns of `TIDY_COLUMNS`. This module turns such frames into a renderer-neutral
`Table` and renders it as LaTeX (`to_latex`, the three-line table of Chinese economics journals: booktabs
rules only, no vertical lines, compilable with XeLaTeX + xeCJK) or GitHub-flavoured Markdown
(`to_markdown`). Nothing here estimates anything: the numbers are taken as they are in the tidy frame.

Conventions (documented in docs/tables-and-figures.md):

- Stars: a coefficient gets one star per threshold in `stars` that its p-value is strictly below, so
  with the default (0.1, 0.05, 0.01) p = 0.05 gets one star and p = 0.0499 two (Stata esttab's rule).
- Standard errors are shown in parentheses under their coefficient; the note says which kind they are,
  read from the tidy `vcov` column (e.g. ``CRV1:city_code`` is "clustered by city").
- Rows whose term starts with ``wald:`` or ``lincom:`` are tests: they go to a separate panel as
  ``statistic [p-value]``, where the statistic is the row's `estimate` (the Wald statistic, or the value
  of the linear combination) and the p-value its `p_value`.
- Model-level rows come from the model-level columns: ``controls`` (empty, NaN, ``none`` or ``no`` means
  no controls, anything else lists them), ``fixed_effects`` (terms joined by ``+``; interactions written
  ``a^b``, ``a:b``, ``a#b`` or ``a*b``), ``n_obs``, ``r2_within`` and ``n_clusters``.
- Labels come from resources/labels/terms.csv (`load_labels`); event-time terms (``rel_-3``,
  ``rel_m3``, pyfixest's ``rel::-3``), duration bins (``dur_2``, ``dur_3_5``, ``dur_6plus``),
  interactions (``a:b``) and tests are labelled generically. A term without any label is shown by its
  name and a warning is logged.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dualpilot.core.errors import require_columns
from dualpilot.core.labels import (
    DEFAULT_LABELS_PATH,
    DEFAULT_OUTCOME_INDUSTRY,
    OUTCOME_NOTE,
    Language,
    check_language,
    outcome_industry_entries,
    read_label_entries,
)
from dualpilot.core.tidy import MODEL_COLUMNS, TIDY_COLUMNS

log = logging.getLogger(__name__)


SPECIAL_PREFIXES: tuple[str, ...] = (
    "wald:",
    "lincom:",
    "wildboot:",
    "rwolf:",
    "bdiff:",
    "bdiff (two-sided):",
)

#: Event-time terms: rel_-3, rel_m3 (formula-safe minus), rel_3, and pyfixest's i() names rel::-3.
EVENT_TERM_PATTERN = r"^rel(?:_|::)(m?-?\d+)$"
#: A duration bin whose upper end is at least this (config duration: bins, e.g. [6, 99]) is open-ended.
OPEN_BIN_END = 99
_DUR_ONE = re.compile(r"^dur_(\d+)$")
_DUR_RANGE = re.compile(r"^dur_(\d+)_(\d+)$")
_DUR_OPEN = re.compile(r"^dur_(\d+)(?:plus|p|\+)$")
_NUMBERED = re.compile(r"\(\d+\)")
_TOKEN = re.compile(r"[A-Za-z_][\w:^.]*|\d+(?:\.\d+)?|[=+\-*/(),]")
_NO_CONTROLS = {"", "none", "no", "false", "0", "否", "nan"}
_FE_SPLIT = re.compile(r"\s*\+\s*")
_FE_INTERACTION = re.compile(r"\s*[\^:#*×]\s*")
_CLUSTER = re.compile(r"^(?:crv1|crv3|cluster|clustered|cl)\s*[:=(\s]\s*([^)]*?)\)?$", re.I)
# The estimation module's own labels: "CRV1 by city_code (fixest small-sample: ...)", "HC1 (...)", "iid (...)".
_ENGINE_CLUSTER = re.compile(r"^CRV[13] by (\S+)")
_ENGINE_OTHER = re.compile(r"^(HC1|iid) \(")
# The state imputation's label: "did2s GMM by city_code (Butts-Gardner, ...)".
_ENGINE_GMM = re.compile(r"^did2s GMM by (\S+)")
_HETERO = {"hetero", "hc0", "hc1", "hc2", "hc3", "robust", "heteroskedastic"}
_IID = {"iid", "standard", "ols", "conventional"}

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "controls": "控制变量",
        "yes": "是",
        "no": "否",
        "n_obs": "观测值",
        "r2_within": "组内R²",
        "n_clusters": "聚类数",
        "tests": "检验（统计量 [p 值]）",
        "wald": "Wald 检验：",
        "lincom": "线性组合：",
        "wildboot": "野自助法 p 值：",
        "rwolf": "Romano-Wolf 调整 p 值：",
        "bdiff": "组间系数差异检验（费舍尔组合检验）：",
        "bdiff (two-sided)": "组间系数差异检验（双侧）：",
        "variable": "变量",
        "symbol": "变量名",
        "n": "观测值",
        "mean": "均值",
        "sd": "标准差",
        "min": "最小值",
        "max": "最大值",
        "note_prefix": "注：",
        "se_cluster": "括号内为聚类到{var}层面的稳健标准误",
        "se_hetero": "括号内为异方差稳健标准误",
        "se_iid": "括号内为标准误",
        "se_other": "括号内为标准误（{raw}）",
        "se_gmm": "括号内为聚类到{var}层面的两阶段 GMM 标准误（Butts-Gardner）",
        "se_mixed": "括号内为标准误，{parts}",
        "se_part": "第 {models} 列为{desc}",
        "column_sep": "、",
        "model_part": "{a}：{b}",
        "cluster_and": "和",
        "stars": "{stars} 分别表示在 {levels} 的水平上显著",
        "tests_note": "检验栏报告统计量，方括号内为 p 值",
        "sentence_sep": "；",
        "end": "。",
        "list_sep": "、",
        "event": "相对时间 {k}",
        "dur_one": "政策持续期 {a}",
        "dur_range": "政策持续期 {a}–{b}",
        "dur_open": "政策持续期 ≥{a}",
        "fe_generic": "{parts}固定效应",
    },
    "en": {
        "controls": "Controls",
        "yes": "Yes",
        "no": "No",
        "n_obs": "Observations",
        "r2_within": "Within R²",
        "n_clusters": "Clusters",
        "tests": "Tests (statistic [p-value])",
        "wald": "Wald test: ",
        "lincom": "Linear combination: ",
        "wildboot": "Wild cluster bootstrap: ",
        "rwolf": "Romano-Wolf adjusted: ",
        "bdiff": "Permutation test of the gap (bdiff): ",
        "bdiff (two-sided)": "Permutation test of the gap (two-sided): ",
        "variable": "Variable",
        "symbol": "Symbol",
        "n": "N",
        "mean": "Mean",
        "sd": "SD",
        "min": "Min",
        "max": "Max",
        "note_prefix": "Notes: ",
        "se_cluster": "Standard errors clustered by {var} in parentheses",
        "se_hetero": "Heteroskedasticity-robust standard errors in parentheses",
        "se_iid": "Standard errors in parentheses",
        "se_other": "Standard errors ({raw}) in parentheses",
        "se_gmm": "Two-stage GMM standard errors (Butts-Gardner) clustered by {var} in parentheses",
        "se_mixed": "Standard errors in parentheses: {parts}",
        "se_part": "column(s) {models}: {desc}",
        "column_sep": ", ",
        "model_part": "{a}: {b}",
        "cluster_and": " and ",
        "stars": "{stars} denote significance at {levels}",
        "tests_note": "Tests report the statistic with its p-value in brackets",
        "sentence_sep": ". ",
        "end": ".",
        "list_sep": ", ",
        "event": "Relative year {k}",
        "dur_one": "Years since start {a}",
        "dur_range": "Years since start {a}–{b}",
        "dur_open": "Years since start ≥{a}",
        "fe_generic": "{parts} FE",
    },
}
#: Short standard-error descriptions used when the models of one table differ.
_SE_SHORT: dict[str, dict[str, str]] = {
    "zh": {
        "cluster": "聚类到{var}层面",
        "gmm": "聚类到{var}层面的两阶段 GMM 标准误",
        "hetero": "异方差稳健",
        "iid": "普通",
        "other": "{raw}",
    },
    "en": {
        "cluster": "clustered by {var}",
        "gmm": "two-stage GMM clustered by {var}",
        "hetero": "robust",
        "iid": "conventional",
        "other": "{raw}",
    },
}


def text(key: str, language: str) -> str:
    """A fixed piece of table or figure text (row names, notes) in `language`."""
    return _TEXT[check_language(language)][key]


def parse_event_time(token: str) -> int:
    """The integer event time written in a term: '-3', 'm3' (minus 3) or '3'."""
    token = token.strip()
    if token.startswith("m"):
        return -int(token[1:])
    return int(token)


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """Display labels of terms and variables in Chinese and English.

    `entries` maps a term (as written in tidy files and the panel) to its (zh, en) labels. Calling
    `get` also labels terms that follow a pattern (event time, duration bins, interactions, tests,
    fixed effects); see the module docstring.
    """

    entries: Mapping[str, tuple[str, str]]
    source: str = "<memory>"

    def get(self, term: str, language: str) -> str:
        """The label of `term` in `language`; the term itself, with a logged warning, if none fits."""
        lang = check_language(language)
        found = self._find(term, lang)
        if found is None:
            log.warning("no label for %r in %s; showing the name itself", term, self.source)
            return term
        return found

    def for_outcome_industry(self, industry: str) -> Labels:
        """These labels with `lq` meaning the location quotient of `industry` (config outcome_industry):
        unchanged for the IT sector (it_emp), the study's; otherwise `lq` takes the label of the entry
        ``lq:<industry>``, and the template ``note:outcome_industry`` filled with that label becomes the
        `outcome_note` that regression tables append to their note
        (`dualpilot.core.labels.outcome_industry_entries`; `InputError` naming the label file when
        either entry is missing)."""
        entries = outcome_industry_entries(dict(self.entries), industry, self.source)
        if industry == DEFAULT_OUTCOME_INDUSTRY:
            return self
        return Labels(entries=entries, source=self.source)

    def outcome_note(self, language: str) -> str:
        """The note naming the outcome industry when it is not the IT sector (`for_outcome_industry`),
        else ""."""
        return self._exact(OUTCOME_NOTE, check_language(language)) or ""

    def has(self, term: str) -> bool:
        """Whether `term` has a label, exact or by pattern."""
        return self._find(term, "en") is not None

    def model(self, model: str, language: str) -> str:
        """The column heading of a model id: the ``model:<id>`` entry; a numbered column such as
        ``(2)`` as it is; a variable (e.g. a mechanism's outcome) by its own entry; ``<a>: <b>`` (e.g.
        the heterogeneity split ``development: high``) as label(a)：label(b). Otherwise the id itself,
        with a logged warning (`has_model` tells)."""
        lang = check_language(language)
        found = self._model(model, lang)
        if found is None:
            log.warning("no label for model %r in %s; showing the id itself", model, self.source)
            return model
        return found

    def has_model(self, model: str) -> bool:
        """Whether the model id `model` has a heading (see `model`)."""
        return self._model(model, "en") is not None

    def _model(self, model: str, lang: Language) -> str | None:
        exact = self._exact(f"model:{model}", lang)
        if exact is not None:
            return exact
        if _NUMBERED.fullmatch(model):
            return model
        exact = self._exact(model, lang)
        if exact is not None:
            return exact
        if ": " in model:
            a, b = model.split(": ", 1)
            left, right = self._find(a, lang), self._find(b, lang)
            if left is not None and right is not None:
                return text("model_part", lang).format(a=left, b=right)
        return None

    def value(self, column: str, value: str, language: str) -> str | None:
        """The label of a cell `value` of a frame column `column`: the entry ``<column>:<value>`` first
        (so a value such as ``none`` can mean different things in different columns), then the value's
        own label, then a difference ``a - b`` of labelled values; None if nothing fits."""
        lang = check_language(language)
        found = self._exact(f"{column}:{value}", lang) or self._find(value, lang)
        if found is None and " - " in value:
            parts = [self._find(p.strip(), lang) for p in value.split(" - ")]
            if all(parts):
                found = " − ".join(p for p in parts if p)
        return found

    def _exact(self, term: str, lang: Language) -> str | None:
        pair = self.entries.get(term)
        if pair is None:
            return None
        return pair[0] if lang == "zh" else pair[1]

    def _find(self, term: str, lang: Language) -> str | None:
        exact = self._exact(term, lang)
        if exact is not None:
            return exact
        for prefix in SPECIAL_PREFIXES:
            if term.startswith(prefix):
                kind = prefix[:-1]
                return text(kind, lang) + self._expression(term[len(prefix) :], lang)
        if term.startswith("fe:"):
            parts = [p for p in _FE_INTERACTION.split(term[3:]) if p]
            names = [self._find(p, lang) for p in parts]
            if any(n is None for n in names):
                return None
            return text("fe_generic", lang).format(parts="×".join(n for n in names if n))
        if term.startswith("cluster:"):
            return self._find(term[len("cluster:") :], lang)
        match = re.match(EVENT_TERM_PATTERN, term)
        if match:
            return text("event", lang).format(k=parse_event_time(match.group(1)))
        if m := _DUR_ONE.match(term):
            return text("dur_one", lang).format(a=m.group(1))
        if m := _DUR_RANGE.match(term):
            if int(m.group(2)) >= OPEN_BIN_END:  # e.g. dur_6_99: six years or more
                return text("dur_open", lang).format(a=m.group(1))
            return text("dur_range", lang).format(a=m.group(1), b=m.group(2))
        if m := _DUR_OPEN.match(term):
            return text("dur_open", lang).format(a=m.group(1))
        if ":" in term and "::" not in term:
            names = [self._find(p, lang) for p in term.split(":")]
            if all(n is not None for n in names):
                return " × ".join(n for n in names if n)
        return None

    def _expression(self, expr: str, lang: Language) -> str:
        """Label the identifiers of a test expression such as 'dual_post=sc_post'."""
        out: list[str] = []
        previous: str | None = None
        for token in _TOKEN.findall(expr):
            if token in {"=", "+"}:
                out.append(f" {token} ")
            elif token == "-":
                unary = previous is None or previous in {"=", "+", "-", "*", "/", "(", ","}
                out.append("-" if unary else " - ")
            elif token == "*":
                out.append("×")
            elif token == ",":
                out.append("; ")
            elif re.match(r"[A-Za-z_]", token):
                out.append(self.get(token, lang))
            else:
                out.append(token)
            previous = token
        return "".join(out)


def load_labels(path: str | Path = DEFAULT_LABELS_PATH) -> Labels:
    """Read a label file (`dualpilot.core.labels.read_label_entries`: InputError naming the file, line and
    column of every problem)."""
    return Labels(entries=read_label_entries(path), source=str(Path(path)))



def with_programme_labels(labels: Labels, programmes: Sequence[Any]) -> Labels:
    """`labels` with the labels of every term derived from `programmes` (`programmes.label_entries`),
    which replace the file's entries for the same terms (the defaults' entries are the same)."""
    from dualpilot.data.programmes import label_entries

    return Labels(entries={**labels.entries, **label_entries(programmes)}, source=labels.source)


def resolve_labels(labels: Labels | Mapping[str, tuple[str, str]] | None) -> Labels:
    """`labels` as a `Labels` object: None loads the shipped file, a mapping is wrapped."""
    if labels is None:
        return load_labels()
    if isinstance(labels, Labels):
        return labels
    return Labels(entries=dict(labels))


# --------------------------------------------------------------------------------------------------
# The renderer-neutral table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One table row: plain Unicode cells (renderers escape them), stub cells first."""

    cells: tuple[str, ...]
    kind: str = "data"  # coef | se | test | spec | extra | stat | data


@dataclass(frozen=True)
class Panel:
    """A block of rows, separated from the next block by a rule; `title` spans the whole row."""

    rows: tuple[Row, ...]
    title: str | None = None


@dataclass(frozen=True)
class Table:
    """A formatted table, independent of the output format.

    `header` has one cell per column; the first `n_stub` columns are row labels (left-aligned), the
    others hold numbers (centred). `notes` are sentences printed under the table after the language's
    note prefix ("注：" or "Notes: ").
    """

    header: tuple[str, ...]
    panels: tuple[Panel, ...]
    language: Language
    n_stub: int = 1
    title: str | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        width = len(self.header)
        for panel in self.panels:
            for row in panel.rows:
                if len(row.cells) != width:
                    raise ValueError(
                        f"row {row.cells!r} has {len(row.cells)} cells; the header has {width}"
                    )


# --------------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------------


def format_number(value: float, digits: int) -> str:
    """`value` with `digits` decimals ('' for NaN), never showing '-0.000'."""
    if pd.isna(value):
        return ""
    out = f"{float(value):.{digits}f}"
    if re.fullmatch(r"-0\.?0*", out):
        out = out[1:]
    return out


def format_p(value: float, digits: int = 3) -> str:
    """A p-value with `digits` decimals, or "< 0.001" (at 3 digits) when it is below 10^-digits, so that
    no p-value reads as 0 ('' for NaN). Raises ValueError outside [0, 1]."""
    if pd.isna(value):
        return ""
    if not 0 <= float(value) <= 1:
        raise ValueError(f"p-value outside [0, 1]: {value!r}")
    floor = 10.0**-digits
    if float(value) < floor:
        return f"< {floor:.{digits}f}"
    return f"{float(value):.{digits}f}"


def format_count(value: float) -> str:
    """An integer count with thousands separators ('' for NaN)."""
    if pd.isna(value):
        return ""
    if float(value) != round(float(value)):
        raise ValueError(f"expected a whole number of observations or clusters, got {value!r}")
    return f"{round(float(value)):,}"


def check_stars(stars: Sequence[float]) -> tuple[float, ...]:
    """Validate significance thresholds and return them sorted from largest to smallest."""
    values = tuple(sorted((float(s) for s in stars), reverse=True))
    if not values:
        raise ValueError("stars must hold at least one threshold")
    if any(not 0 < s < 1 for s in values):
        raise ValueError(f"star thresholds must lie strictly between 0 and 1, got {stars!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"star thresholds must differ, got {stars!r}")
    return values


def significance_stars(p_value: float, stars: Sequence[float] = (0.1, 0.05, 0.01)) -> str:
    """One '*' per threshold that `p_value` is strictly below ('' for NaN or p >= every threshold)."""
    thresholds = check_stars(stars)
    if pd.isna(p_value):
        return ""
    if not 0 <= float(p_value) <= 1:
        raise ValueError(f"p-value outside [0, 1]: {p_value!r}")
    return "*" * sum(float(p_value) < t for t in thresholds)


def _percent(threshold: float) -> str:
    return f"{threshold * 100:g}%"


def star_sentence(stars: tuple[float, ...], language: Language) -> str:
    """The note sentence saying what the stars mean (e.g. "* p<0.1, ** p<0.05, *** p<0.01"), in `language`."""
    ordered = sorted(stars)  # smallest threshold = most stars first
    n = len(ordered)
    if language == "en":
        parts = [f"{'*' * (n - i)} p<{t:g}" for i, t in enumerate(ordered)]
        return ", ".join(parts)
    symbols = text("list_sep", language).join("*" * (n - i) for i in range(n))
    levels = text("list_sep", language).join(_percent(t) for t in ordered)
    return text("stars", language).format(stars=symbols, levels=levels)


def _tokens(value: object) -> list[str]:
    """Split a '+'-joined specification cell into its parts ([] for empty, NaN or 'none')."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return []
    text_value = str(value).strip()
    if text_value.lower() in _NO_CONTROLS:
        return []
    return [t for t in _FE_SPLIT.split(text_value) if t]


def _fe_key(token: str) -> str:
    return "^".join(p for p in _FE_INTERACTION.split(token.strip()) if p)


def _se_kind(vcov: object) -> tuple[str, str]:
    """Classify a tidy `vcov` cell: ('cluster', vars), ('hetero', ''), ('iid', '') or ('other', raw)."""
    if vcov is None or (not isinstance(vcov, str) and pd.isna(vcov)):
        raise ValueError("the vcov column is empty: the note on standard errors needs it")
    raw = str(vcov).strip()
    if m := _ENGINE_CLUSTER.match(raw):
        return "cluster", m.group(1)
    if m := _ENGINE_GMM.match(raw):
        return "gmm", m.group(1)
    if m := _ENGINE_OTHER.match(raw):
        return ("hetero" if m.group(1) == "HC1" else "iid"), ""
    if m := _CLUSTER.match(raw):
        return "cluster", m.group(1).strip()
    if raw.lower() in _HETERO:
        return "hetero", ""
    if raw.lower() in _IID:
        return "iid", ""
    return "other", raw


def _cluster_label(variables: str, labels: Labels, language: Language) -> str:
    parts = [p for p in re.split(r"\s*[+,]\s*|\s+", variables) if p]
    if not parts:
        raise ValueError("a clustered vcov must name its cluster variable, e.g. 'CRV1:city_code'")
    return text("cluster_and", language).join(labels.get(f"cluster:{p}", language) for p in parts)


def _se_sentence(vcovs: Mapping[str, object], labels: Labels, language: Language) -> str:
    """The note on standard errors; when the columns differ, each kind names its columns by position
    (1, 2, ...), never by model id."""
    position = {model: str(i) for i, model in enumerate(vcovs, start=1)}
    described: dict[str, list[str]] = {}
    for model, vcov in vcovs.items():
        kind, detail = _se_kind(vcov)
        var = _cluster_label(detail, labels, language) if kind in ("cluster", "gmm") else ""
        # Models with the same kind of standard error share one sentence (details such as G and K differ).
        key_detail = detail if kind == "other" else ""
        described.setdefault(f"{kind}\x00{var}\x00{key_detail}", []).append(model)
    if len(described) == 1:
        kind, var, detail = next(iter(described)).split("\x00")
        return text(f"se_{kind}", language).format(var=var, raw=detail)
    parts = []
    for key, models in described.items():
        kind, var, detail = key.split("\x00")
        desc = _SE_SHORT[language][kind].format(var=var, raw=detail)
        columns = text("column_sep", language).join(position[m] for m in models)
        parts.append(text("se_part", language).format(models=columns, desc=desc))
    sep = "；" if language == "zh" else "; "
    return text("se_mixed", language).format(parts=sep.join(parts))


def join_sentences(sentences: Iterable[str], language: Language) -> str:
    """Non-empty note sentences joined into one note, with the sentence punctuation of `language`."""
    items = [s for s in sentences if s]
    if not items:
        return ""
    return text("sentence_sep", language).join(items) + text("end", language)


def validate_tidy(tidy: pd.DataFrame, columns: Iterable[str] = TIDY_COLUMNS) -> None:
    """Raise ValueError if `tidy` lacks a column or repeats a (model, term) pair."""
    require_columns(tidy, columns, "the tidy estimate frame")
    dup = tidy.duplicated(["model", "term"], keep=False)
    if dup.any():
        pairs = tidy.loc[dup, ["model", "term"]].drop_duplicates().to_numpy().tolist()
        raise ValueError(f"(model, term) pairs repeated in the tidy frame: {pairs}")


def is_special(term: str) -> bool:
    """Whether `term` is a test row ('wald:...', 'lincom:...' or 'wildboot:...')."""
    return term.startswith(SPECIAL_PREFIXES)


def _model_info(tidy: pd.DataFrame, model: str) -> pd.Series:
    """The model-level columns of `model`, checked to agree across its regular rows."""
    rows = tidy[tidy["model"] == model]
    regular = rows[~rows["term"].map(is_special)]
    source = regular if len(regular) else rows
    for col in MODEL_COLUMNS:
        if source[col].nunique(dropna=False) > 1:
            values = source[col].drop_duplicates().tolist()
            raise ValueError(f"model {model!r} has differing values of {col!r}: {values}")
    return source.iloc[0][list(MODEL_COLUMNS)]


def _ordered_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --------------------------------------------------------------------------------------------------
# Regression table
# --------------------------------------------------------------------------------------------------


def _coefficient_rows(
    cell: pd.DataFrame,
    term: str,
    label: str,
    cols: Sequence[str],
    digits: int,
    thresholds: tuple[float, ...],
) -> list[Row]:
    """The coefficient row (with stars) and the standard-error row (in parentheses) of `term`."""
    coefs, ses = [], []
    for m in cols:
        if (term, m) not in cell.index:
            coefs.append("")
            ses.append("")
            continue
        est, se, p = (cell.loc[(term, m), c] for c in ("estimate", "std_error", "p_value"))
        if pd.isna(est):
            raise ValueError(f"term {term!r} of model {m!r} has no estimate")
        coefs.append(format_number(est, digits) + significance_stars(p, thresholds))
        ses.append(f"({format_number(se, digits)})" if not pd.isna(se) else "")
    return [Row((label, *coefs), kind="coef"), Row(("", *ses), kind="se")]


def _test_row(cell: pd.DataFrame, term: str, label: str, cols: Sequence[str], digits: int) -> Row:
    """A test row: 'statistic [p-value]' per model (blank where the model has no such test)."""
    values = []
    for m in cols:
        if (term, m) not in cell.index:
            values.append("")
            continue
        # Wald rows carry their F statistic in t_stat (estimate empty); lincom and bootstrap rows carry
        # an estimate.
        stat, p = cell.loc[(term, m), "estimate"], cell.loc[(term, m), "p_value"]
        if pd.isna(stat):
            stat = cell.loc[(term, m), "t_stat"]
        if pd.isna(stat) or pd.isna(p):
            raise ValueError(f"test row {term!r} of model {m!r} lacks a statistic or p_value")
        values.append(f"{format_number(stat, digits)} [{format_p(p, digits)}]")
    return Row((label, *values), kind="test")


def _specification_rows(
    info: Mapping[str, pd.Series], cols: Sequence[str], labels: Labels, language: Language
) -> list[Row]:
    """The controls row and one yes/no row per fixed-effect label, in order of first appearance."""
    yes, no = text("yes", language), text("no", language)
    has_controls = [yes if _tokens(info[m]["controls"]) else no for m in cols]
    rows = [Row((text("controls", language), *has_controls), kind="spec")]
    fe_keys = {m: [_fe_key(t) for t in _tokens(info[m]["fixed_effects"])] for m in cols}
    fe_rows: dict[str, list[str]] = {}
    for key in _ordered_unique(k for m in cols for k in fe_keys[m]):
        marks = fe_rows.setdefault(labels.get(f"fe:{key}", language), [no] * len(cols))
        for j, m in enumerate(cols):
            if key in fe_keys[m]:
                marks[j] = yes
    return rows + [Row((name, *marks), kind="spec") for name, marks in fe_rows.items()]


def _statistic_rows(
    info: Mapping[str, pd.Series], cols: Sequence[str], language: Language, digits: int
) -> list[Row]:
    """N, within R² and number of clusters; a statistic no model reports is left out."""
    formats = {
        "n_obs": format_count,
        "r2_within": lambda v: format_number(v, digits),
        "n_clusters": format_count,
    }
    rows = []
    for col, fmt in formats.items():
        values = [info[m][col] for m in cols]
        if all(pd.isna(v) for v in values):
            log.info("no model reports %s; the row is left out", col)
            continue
        rows.append(Row((text(col, language), *(fmt(v) for v in values)), kind="stat"))
    return rows


def regression_table(
    tidy: pd.DataFrame,
    *,
    terms: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    language: Language = "zh",
    title: str | None = None,
    note: str | None = None,
    stars: Sequence[float] = (0.1, 0.05, 0.01),
    digits: int = 3,
    extra_rows: Mapping[str, Sequence[str]] | None = None,
    labels: Labels | Mapping[str, tuple[str, str]] | None = None,
) -> Table:
    """Build a regression table (one column per model) from a tidy estimate frame.

    `terms` selects and orders the rows (regular terms go to the coefficient panel, ``wald:`` and
    ``lincom:`` terms to the test panel); by default every term in order of first appearance. `models`
    selects and orders the columns, which are headed by the tidy `model` values. A term a model lacks
    is left blank. `extra_rows` maps a row label to one cell per model (e.g. the dependent variable);
    those rows follow the fixed-effect rows. `labels` defaults to resources/labels/terms.csv.
    Raises ValueError on a malformed frame, an unknown term or model, or inconsistent model rows.
    """
    lang = check_language(language)
    thresholds = check_stars(stars)
    if digits < 0:
        raise ValueError(f"digits must be >= 0, got {digits}")
    validate_tidy(tidy)
    lab = resolve_labels(labels)
    tidy = tidy.copy()
    tidy["model"] = tidy["model"].astype(str)
    tidy["term"] = tidy["term"].astype(str)

    all_models = _ordered_unique(tidy["model"])
    cols = list(models) if models is not None else all_models
    unknown = [m for m in cols if m not in all_models]
    if unknown:
        raise ValueError(f"model(s) {unknown} not in the tidy frame; it has {all_models}")
    if not cols:
        raise ValueError("no model to tabulate")
    data = tidy[tidy["model"].isin(cols)]
    present = _ordered_unique(data["term"])
    rows_terms = list(terms) if terms is not None else present
    absent = [t for t in rows_terms if t not in present]
    if absent:
        raise ValueError(f"term(s) {absent} are in none of the models {cols}")
    cell = data.set_index(["term", "model"])
    info = {m: _model_info(data, m) for m in cols}

    coef_rows: list[Row] = []
    test_rows: list[Row] = []
    for term in rows_terms:
        label = lab.get(term, lang)
        if is_special(term):
            test_rows.append(_test_row(cell, term, label, cols, digits))
        else:
            coef_rows += _coefficient_rows(cell, term, label, cols, digits, thresholds)
    bottom = _specification_rows(info, cols, lab, lang)
    for name, values in (extra_rows or {}).items():
        if len(values) != len(cols):
            raise ValueError(f"extra row {name!r} has {len(values)} cells for {len(cols)} models")
        bottom.append(Row((name, *map(str, values)), kind="extra"))
    bottom += _statistic_rows(info, cols, lang, digits)

    panels = [Panel(tuple(coef_rows))] if coef_rows else []
    if test_rows:
        panels.append(Panel(tuple(test_rows), title=text("tests", lang)))
    panels.append(Panel(tuple(bottom)))

    sentences = [_se_sentence({m: info[m]["vcov"] for m in cols}, lab, lang)]
    sentences.append(star_sentence(thresholds, lang))
    if test_rows:
        sentences.append(text("tests_note", lang))
    notes = [join_sentences(sentences, lang)]
    if note:
        notes.append(note)
    return Table(
        header=("", *(lab.model(m, lang) for m in cols)),
        panels=tuple(panels),
        language=lang,
        n_stub=1,
        title=title,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------------
# Descriptive statistics
# --------------------------------------------------------------------------------------------------

STATS_COLUMNS: tuple[str, ...] = ("variable", "n", "mean", "sd", "min", "max")


def descriptive_table(
    stats: pd.DataFrame,
    labels: Labels | Mapping[str, tuple[str, str]] | None = None,
    language: Language = "zh",
    *,
    title: str | None = None,
    note: str | None = None,
    digits: int = 3,
    show_names: bool = True,
) -> Table:
    """A descriptive-statistics table from `analyses.descriptives` output (or any frame with its columns).

    One row per variable with N, mean, SD, min and max; with a 'group' column, one panel per group
    (titled by the group's label). `show_names` adds a column with the variable names next to their
    labels, as Chinese journals print them.
    """
    lang = check_language(language)
    require_columns(stats, STATS_COLUMNS, "the statistics frame")
    lab = resolve_labels(labels)
    grouped = "group" in stats.columns
    keys = ["group", "variable"] if grouped else ["variable"]
    if stats.duplicated(keys).any():
        raise ValueError(f"the statistics frame repeats {keys} combinations")
    stub = (
        (text("variable", lang), text("symbol", lang)) if show_names else (text("variable", lang),)
    )
    header = (*stub, *(text(c, lang) for c in ("n", "mean", "sd", "min", "max")))
    blocks = _ordered_unique(stats["group"].astype(str)) if grouped else [None]
    panels = []
    for block in blocks:
        frame = stats if block is None else stats[stats["group"].astype(str) == block]
        rows = []
        for rec in frame.itertuples(index=False):
            name = str(rec.variable)
            first = (lab.get(name, lang), name) if show_names else (lab.get(name, lang),)
            numbers = [format_number(getattr(rec, c), digits) for c in ("mean", "sd", "min", "max")]
            rows.append(Row((*first, format_count(rec.n), *numbers)))
        panel_title = None if block is None else lab.get(block, lang)
        panels.append(Panel(tuple(rows), title=panel_title))
    return Table(
        header=header,
        panels=tuple(panels),
        language=lang,
        n_stub=len(stub),
        title=title,
        notes=(note,) if note else (),
    )


# --------------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------------

_LATEX_ESCAPES: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "²": r"\textsuperscript{2}",
    "×": r"$\times$",
    "−": r"$-$",
    "–": "--",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
}
_MARKDOWN_SPECIAL = set("\\`*_|<>[]")


def latex_escape(value: str) -> str:
    """Escape LaTeX special characters (and map ², ×, −, –, ≥, ≤ to portable commands)."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in value)


def markdown_escape(value: str) -> str:
    """Backslash-escape the characters that GitHub Markdown would read as markup in a table cell."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in value)


def _notes_text(table: Table) -> str:
    return ("" if table.language == "zh" else " ").join(table.notes)


#: Every tabular is wrapped in a \resizebox that shrinks it to the line width when (and only when) it is
#: wider (needs \usepackage{graphicx}); a narrower table keeps its natural size.
_SHRINK_TO_LINE = "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%"
#: A row label wider than this many character widths (a CJK character counts two) makes the label column
#: a paragraph column of `STUB_WIDTH` of the line, so that long test labels wrap instead of widening the
#: table (and shrinking every number with it).
STUB_WRAP = 40
STUB_WIDTH = "0.36\\linewidth"


def _display_width(value: str) -> int:
    """Width of `value` in character cells: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def to_latex(
    table: Table,
    *,
    label: str | None = None,
    float_env: bool = True,
    position: str = "htbp",
) -> str:
    """Render `table` as a booktabs three-line table (no vertical lines, no \\hline).

    Needs ``\\usepackage{booktabs}``; Chinese text needs XeLaTeX with ``\\usepackage{xeCJK}`` (see
    docs/tables-and-figures.md for a minimal preamble). With `float_env` the tabular is wrapped in a
    ``table`` float with the title as caption and `label` as ``\\label``; otherwise only the tabular
    and its notes are returned, for ``\\input`` inside the user's own float. A table wider than the
    line is scaled down to ``\\linewidth`` (``\\resizebox`` from graphicx; a narrower table keeps its
    natural size), and a one-column stub with a label longer than `STUB_WRAP` wraps in a paragraph
    column of `STUB_WIDTH`.
    """
    width = len(table.header)
    spec = "l" * table.n_stub + "c" * (width - table.n_stub)
    stub = [row.cells[0] for panel in table.panels for row in panel.rows]
    if table.n_stub == 1 and max(map(_display_width, stub), default=0) > STUB_WRAP:
        spec = f"p{{{STUB_WIDTH}}}" + spec[1:]
    out: list[str] = []
    if float_env:
        out += [f"\\begin{{table}}[{position}]", "\\centering"]
        if table.title:
            out.append(f"\\caption{{{latex_escape(table.title)}}}")
        if label:
            out.append(f"\\label{{{label}}}")
    out.append(_SHRINK_TO_LINE)
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    out.append(" & ".join(latex_escape(h) for h in table.header) + " \\\\")
    for panel in table.panels:
        out.append("\\midrule")
        if panel.title:
            out.append(f"\\multicolumn{{{width}}}{{l}}{{{latex_escape(panel.title)}}} \\\\")
        for row in panel.rows:
            line = " & ".join(latex_escape(c) for c in row.cells) + " \\\\"
            # \\ and \midrule would read a leading "[" as their optional argument
            out.append("{}" + line if line.startswith("[") else line)
    out += ["\\bottomrule", "\\end{tabular}", "}"]
    if table.notes:
        prefix = latex_escape(text("note_prefix", table.language))
        out += [
            "\\par\\smallskip",
            "\\begin{minipage}{\\linewidth}\\footnotesize",
            prefix + latex_escape(_notes_text(table)),
            "\\end{minipage}",
        ]
    if float_env:
        out.append("\\end{table}")
    return "\n".join(out) + "\n"


def to_markdown(table: Table) -> str:
    """Render `table` as a GitHub-flavoured Markdown table (title in bold above, notes below)."""
    width = len(table.header)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    out: list[str] = []
    if table.title:
        out += [f"**{markdown_escape(table.title)}**", ""]
    out.append(line([markdown_escape(h) for h in table.header]))
    out.append(line([":--"] * table.n_stub + [":-:"] * (width - table.n_stub)))
    for panel in table.panels:
        if panel.title:
            out.append(line([f"**{markdown_escape(panel.title)}**", *[""] * (width - 1)]))
        out += [line([markdown_escape(c) for c in row.cells]) for row in panel.rows]
    if table.notes:
        out += ["", markdown_escape(text("note_prefix", table.language) + _notes_text(table))]
    return "\n".join(out) + "\n"


# The three-line style in CSS: thick rules above and below the table, a thin one under the header and
# between panels; no vertical lines. Used by `to_html` (the HTML report shows these pages inline).
_HTML_STYLE = """
body { font-family: "Noto Serif CJK SC", "Source Han Serif SC", "Songti SC", serif; margin: 1.5em; }
table.three-line { border-collapse: collapse; border-top: 2px solid #000; border-bottom: 2px solid #000; }
table.three-line caption { font-weight: bold; padding-bottom: 0.5em; }
table.three-line th, table.three-line td { padding: 0.2em 0.9em; text-align: center; white-space: nowrap; }
table.three-line .stub { text-align: left; }
table.three-line thead th { border-bottom: 1px solid #000; }
table.three-line tbody + tbody tr:first-child td { border-top: 1px solid #000; }
table.three-line td.panel { text-align: left; font-style: italic; }
p.notes { font-size: 0.85em; max-width: 60em; }
"""


def to_html(table: Table) -> str:
    """Render `table` as a self-contained HTML page: the same three-line table as `to_latex` (title as
    caption, one <tbody> per panel, notes below), for the Snakemake report, which shows HTML inline."""
    import html

    def cells(values: Sequence[str], tag: str) -> str:
        stub = ' class="stub"'
        return "".join(
            f"<{tag}{stub if i < table.n_stub else ''}>{html.escape(v)}</{tag}>"
            for i, v in enumerate(values)
        )

    lang = "zh-CN" if table.language == "zh" else "en"
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{html.escape(table.title or '')}</title>",
        f"<style>{_HTML_STYLE}</style></head><body>",
        '<table class="three-line">',
    ]
    if table.title:
        out.append(f"<caption>{html.escape(table.title)}</caption>")
    out.append(f"<thead><tr>{cells(table.header, 'th')}</tr></thead>")
    for panel in table.panels:
        out.append("<tbody>")
        if panel.title:
            width = len(table.header)
            out.append(
                f'<tr><td class="panel" colspan="{width}">{html.escape(panel.title)}</td></tr>'
            )
        out += [f"<tr>{cells(row.cells, 'td')}</tr>" for row in panel.rows]
        out.append("</tbody>")
    out.append("</table>")
    if table.notes:
        notes = text("note_prefix", table.language) + _notes_text(table)
        out.append(f'<p class="notes">{html.escape(notes)}</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class TableSpec:
    """Presentation of one analysis' table (a row of resources/labels/tables.csv)."""

    title: dict[str, str]
    note: dict[str, str | None]
    terms: list[str] | None


def load_table_specs(path: str | Path) -> dict[str, TableSpec]:
    """Titles, notes and (optionally) the terms shown, per analysis.

    Columns: analysis, title_zh, title_en, terms (term names separated by ``|``; empty = every term),
    note_zh, note_en (empty = only the automatic note on standard errors and stars).
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    require_columns(
        frame, ("analysis", "title_zh", "title_en", "terms", "note_zh", "note_en"), str(path)
    )
    specs = {}
    for rec in frame.itertuples(index=False):
        terms = [t.strip() for t in rec.terms.split("|") if t.strip()] or None
        specs[rec.analysis] = TableSpec(
            title={"zh": rec.title_zh, "en": rec.title_en},
            note={"zh": rec.note_zh or None, "en": rec.note_en or None},
            terms=terms,
        )
    return specs


def frame_table(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str] | Mapping[str, Mapping[str, str]],
    language: Language = "zh",
    title: str | None = None,
    note: str | None = None,
    digits: int = 3,
    group: str | None = None,
    label_columns: Sequence[str] = (),
    labels: Labels | Mapping[str, tuple[str, str]] | None = None,
) -> Table:
    """A plain table of `frame` (e.g. a balance table): one row per record, the columns of `columns` in
    that order, headed by their ``column:<name>`` entries of the label file (or, given a mapping
    column -> {"zh": header, "en": header}, by those texts). Cells of `label_columns` (e.g. variable
    names) and the panel titles get their display labels (`Labels.value`: ``<column>:<value>`` first,
    then the value's own label, then ``a - b`` of labelled values; an unlabelled value is printed as it
    is, with a logged warning); other text is printed as it is; numbers are formatted with `digits`
    decimals, and p-values (columns named ``p_value`` or ``p_...``) by `format_p`. With `group`, one
    panel per value of that column.
    """
    lang = check_language(language)
    require_columns(frame, [*columns, *([group] if group else [])], "the frame")
    lab = resolve_labels(labels)
    if isinstance(columns, Mapping):
        header = tuple(columns[c][lang] for c in columns)
    else:
        header = tuple(lab.get(f"column:{c}", lang) for c in columns)

    def cell(value: object, column: str, label: bool) -> str:
        if isinstance(value, str):
            if not label:
                return value
            found = lab.value(column, value, lang)
            if found is None:
                log.warning("no label for %r (column %r) in %s", value, column, lab.source)
            return value if found is None else found
        if value is None or pd.isna(value):
            return ""
        if column == "p_value" or column.startswith("p_"):
            return format_p(float(value), digits)
        return format_number(float(value), digits)

    labelled = [c in label_columns for c in columns]

    blocks = _ordered_unique(frame[group].astype(str)) if group else [None]
    panels = []
    for block in blocks:
        part = frame if block is None else frame[frame[group].astype(str) == block]
        rows = tuple(
            Row(
                tuple(
                    cell(v, c, lab_it) for v, c, lab_it in zip(rec, columns, labelled, strict=True)
                )
            )
            for rec in part[list(columns)].itertuples(index=False)
        )
        heading = None if block is None or group is None else cell(block, group, True)
        panels.append(Panel(rows, title=heading))
    return Table(
        header=header,
        panels=tuple(panels),
        language=lang,
        title=title,
        notes=(note,) if note else (),
    )
