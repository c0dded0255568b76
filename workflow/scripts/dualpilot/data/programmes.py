"""Pilot programmes as data: the config's `programmes:` definitions, the `dual:` pair, and the names and labels
of the treatment columns that follow from them (docs/treatment-coding.md, "Programmes as data").

A programme is keyed by a short identifier (``sc``, ``lc``; the prefix of its columns) and has a name
(``smart_city``; the identifier of its pilot list's rows in tables and of grid recodings), labels (zh/en, long
and short), the policy year of each batch and its pilot-list file. The two programmes named by `dual:` form
the study's treatment; with keys a and b the columns are a_year, b_year, dual_year, a_post, b_post,
dual_post, a_only_post, b_only_post, years_since_dual and group (none / a_only / b_only / dual). The default
pair is (sc, lc): the study of the paper.

Only the standard library is imported: the workflow's Snakemake process reads this module too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Programme keys: lower-case identifiers that do not collide with the dual columns.
KEY_PATTERN = r"^[a-z][a-z0-9]{0,9}$"
RESERVED_KEYS = frozenset({"dual", "none", "years"})


@dataclass(frozen=True)
class Pair:
    """The two programmes whose overlap is the dual pilot, by key; the names of every treatment column."""

    first: str = "sc"
    second: str = "lc"

    def __post_init__(self) -> None:
        if self.first == self.second:
            raise ValueError(f"the dual pair names one programme twice: {self.first!r}")
        for key in (self.first, self.second):
            if key in RESERVED_KEYS:
                raise ValueError(f"programme key {key!r} is reserved")

    @classmethod
    def of(cls, dual: Sequence[str] | Pair | None) -> Pair:
        """A `Pair` from the config's `dual:` list (None: the default pair sc, lc)."""
        if dual is None:
            return DEFAULT_PAIR
        if isinstance(dual, Pair):
            return dual
        keys = list(dual)
        if len(keys) != 2:
            raise ValueError(f"dual must name two programmes, got {keys}")
        return cls(str(keys[0]), str(keys[1]))

    @property
    def keys(self) -> tuple[str, str]:
        return (self.first, self.second)

    @property
    def year_columns(self) -> tuple[str, str]:
        """first_year, second_year (the dual_year is `DUAL_YEAR`)."""
        return (f"{self.first}_year", f"{self.second}_year")

    @property
    def post_columns(self) -> tuple[str, str]:
        return (f"{self.first}_post", f"{self.second}_post")

    @property
    def only_post_columns(self) -> tuple[str, str]:
        """The single-pilot states: first_only_post, second_only_post (pilot and not dual)."""
        return (f"{self.first}_only_post", f"{self.second}_only_post")

    @property
    def state_columns(self) -> tuple[str, str, str]:
        """The three treated states of a city-year: first only, second only, dual."""
        return (*self.only_post_columns, DUAL_POST)

    @property
    def only_groups(self) -> tuple[str, str]:
        return (f"{self.first}_only", f"{self.second}_only")

    @property
    def groups(self) -> tuple[str, str, str, str]:
        """The end-of-window groups of a city, in table order: none, first only, second only, dual."""
        return ("none", *self.only_groups, "dual")

    @property
    def alone_models(self) -> tuple[str, str]:
        """Models of the single-vs-dual table with one pilot alone."""
        return (f"{self.first}_alone", f"{self.second}_alone")

    @property
    def first_orders(self) -> tuple[str, str]:
        """Pilot orders of a dual city: first_first (the first programme came first), second_first."""
        return (f"{self.first}_first", f"{self.second}_first")

    @property
    def treatment_columns(self) -> tuple[str, ...]:
        """Every column `code_treatment` adds, in its order."""
        return (
            *self.year_columns,
            DUAL_YEAR,
            *self.post_columns,
            DUAL_POST,
            *self.only_post_columns,
            "years_since_dual",
            "group",
        )


DUAL_YEAR = "dual_year"
DUAL_POST = "dual_post"
DEFAULT_PAIR = Pair("sc", "lc")


@dataclass(frozen=True)
class Programme:
    """One programme of the config's `programmes:` block."""

    key: str
    name: str
    label_zh: str
    label_en: str
    short_zh: str
    short_en: str
    batch_years: tuple[int, ...]
    pilot_list: str
    official_counts: str | None = None

    @property
    def batch_map(self) -> dict[int, int]:
        """Policy year of each batch: {1: year of batch 1, ...}."""
        return dict(enumerate(self.batch_years, start=1))


def parse_programme(key: str, block: Mapping[str, Any]) -> Programme:
    """A `Programme` from one entry of the config's `programmes:` (schema-valid)."""
    return Programme(
        key=str(key),
        name=str(block["name"]),
        label_zh=str(block["labels"]["zh"]),
        label_en=str(block["labels"]["en"]),
        short_zh=str(block["short"]["zh"]),
        short_en=str(block["short"]["en"]),
        batch_years=tuple(int(y) for y in block["batch_years"]),
        pilot_list=str(block["pilot_list"]),
        official_counts=(
            None if block.get("official_counts") is None else str(block["official_counts"])
        ),
    )


def dual_programmes(
    programmes: Mapping[str, Mapping[str, Any]], dual: Sequence[str]
) -> tuple[Programme, Programme]:
    """The two programmes named by `dual` (the config's `programmes:` and `dual:`), in that order.

    Raises ValueError naming the key when `dual` names an unknown programme or one programme twice."""
    pair = Pair.of(dual)
    unknown = [k for k in pair.keys if k not in programmes]
    if unknown:
        raise ValueError(
            f"dual = {list(pair.keys)} names programme(s) {unknown} that `programmes` does not define "
            f"(defined: {sorted(programmes)})"
        )
    return parse_programme(pair.first, programmes[pair.first]), parse_programme(
        pair.second, programmes[pair.second]
    )


def label_entries(programmes: Sequence[Programme]) -> dict[str, tuple[str, str]]:
    """Labels (zh, en) of the terms derived from each programme's key and name.

    For key k and labels L (long) and S (short): k_year "L年份" / "L year"; k_post "L" / "L";
    k_only_post "仅L" / "L only"; k_only (group) "仅S试点城市" / "S only cities"; column:k_only "仅S" /
    "S only"; model:k_alone "仅含L" / "L alone"; dual_k_first "双试点（S试点在先）" / "Dual pilot (S first)";
    programme:<name> "L" / "L"."""
    out: dict[str, tuple[str, str]] = {}
    for p in programmes:
        k, lz, le, sz, se = p.key, p.label_zh, p.label_en, p.short_zh, p.short_en
        out[f"{k}_year"] = (f"{lz}年份", f"{le} year")
        out[f"{k}_post"] = (lz, le)
        out[f"{k}_only_post"] = (f"仅{lz}", f"{le} only")
        out[f"{k}_only"] = (f"仅{sz}试点城市", f"{se} only cities")
        out[f"column:{k}_only"] = (f"仅{sz}", f"{se} only")
        out[f"model:{k}_alone"] = (f"仅含{lz}", f"{le} alone")
        out[f"dual_{k}_first"] = (f"双试点（{sz}试点在先）", f"Dual pilot ({se} first)")
        out[f"programme:{p.name}"] = (lz, le)
    return out


def pair_and_names(
    programmes: Mapping[str, Mapping[str, Any]], dual: Sequence[str]
) -> tuple[Pair, tuple[str, str]]:
    """The `Pair` of the config's `dual:` and the names of its two programmes (`dual_programmes`)."""
    first, second = dual_programmes(programmes, dual)
    return Pair(first.key, second.key), (first.name, second.name)
