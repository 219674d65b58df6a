"""Groupings a clinician means: clinical bands or tertiles for continuous columns, human labels.

A continuous column is never one curve per value. `--by age_at_infusion_years` gives the age
bands and `--by baseline_bm_blasts_pct` the disease-burden bands of `endpoints` (the same as
`age_group` / `disease_burden`); `age_tertiles` / `blasts_tertiles` split the cohort into thirds
named by the range of values each holds; `infusion_date` groups by year of infusion.

Bands (documented choices):
- Age at infusion, years: <3, 3–9, 10–17, ≥18. 10 years is the NCI/Rome high-risk age cut-off
  for paediatric ALL; ≥18 separates adults, whose outcomes after CD19 CAR-T are worse (CIBMTR,
  DOMAIN.md); <3 keeps infants and toddlers (infant/KMT2A-rearranged disease) apart.
- Marrow blasts before infusion: <5 % (MRD-level / morphological remission), 5–<50 %, ≥50 %
  (high burden: worse outcomes and CD19-negative relapse, DOMAIN.md).

Tertiles: cut points are R's ``quantile(x, c(1/3, 2/3))`` (type 7) of the non-missing values
of the patients grouped; a value goes to the first third whose upper cut point it does not
exceed. Each third is labelled by the smallest and largest value it actually holds, so the label
is never a floating-point artefact. Missing values form "unknown".

`column_label` / `value_label` / `group_label` give the words a page or report shows: columns
("KMT2A rearranged"), booleans as Yes/No, and a group with its n ("Yes (n = 12)"). The JSON keeps
the raw values (CONTRACT §5).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import polars as pl

#: continuous columns and the clinical grouping that stands for them
BANDED_COLUMNS: Final[dict[str, str]] = {
    "age_at_infusion_years": "age_group",
    "baseline_bm_blasts_pct": "disease_burden",
}
#: tertile groupings and the column they split
TERTILE_GROUPINGS: Final[dict[str, str]] = {
    "age_tertiles": "age_at_infusion_years",
    "blasts_tertiles": "baseline_bm_blasts_pct",
}
_UNITS: Final[dict[str, str]] = {"age_at_infusion_years": " y", "baseline_bm_blasts_pct": " %"}

COLUMN_LABELS: Final[dict[str, str]] = {
    "site": "Site",
    "sex": "Sex",
    "age_at_infusion_years": "Age at infusion",
    "age_group": "Age at infusion",
    "age_tertiles": "Age at infusion (thirds)",
    "product": "Product",
    "prior_hsct": "Prior HSCT",
    "prior_blinatumomab": "Prior blinatumomab",
    "kmt2a_rearranged": "KMT2A rearranged",
    "baseline_bm_blasts_pct": "Marrow blasts before infusion",
    "disease_burden": "Marrow blasts before infusion",
    "blasts_tertiles": "Marrow blasts before infusion (thirds)",
    "infusion_date": "Year of infusion",
    "infusion_year": "Year of infusion",
    "early_bcell_recovery": "Early B-cell recovery (by day 183)",
    "mrd_day28": "Day-28 marrow MRD",
}
_VALUE_LABELS: Final[dict[str, str]] = {
    "true": "Yes",
    "false": "No",
    "yes": "Yes",
    "no": "No",
    "unknown": "Unknown",
    "positive": "Positive",
    "negative": "Negative",
    "not assessed": "Not assessed",
}
_SEX: Final[dict[str, str]] = {"F": "Female", "M": "Male", "U": "Unknown"}


def column_label(column: str) -> str:
    """A column or grouping as a person reads it ("kmt2a_rearranged" → "KMT2A rearranged")."""
    return COLUMN_LABELS.get(column, column.replace("_", " ").capitalize())


def value_label(column: str | None, value: str) -> str:
    """A group value as a person reads it: booleans Yes/No, "unknown" → "Unknown", sex spelled."""
    if column == "sex" and value in _SEX:
        return _SEX[value]
    if column in ("age_group", "age_at_infusion_years") and value != "unknown":
        return f"{value} y"
    if column in ("disease_burden", "baseline_bm_blasts_pct") and value != "unknown":
        return f"{value} blasts"
    return _VALUE_LABELS.get(value, value)


def group_label(column: str | None, value: str, n: int) -> str:
    """The legend / table label of a group: its readable value and its n."""
    name = "All patients" if column is None else value_label(column, value)
    return f"{name} (n = {n})"


def _type7(values: np.ndarray, p: float) -> float:
    """R ``quantile(x, p, type = 7)`` of sorted `values`."""
    h = (values.size - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, values.size - 1)
    return float(values[lo] + (h - lo) * (values[hi] - values[lo]))


def _fmt(value: float) -> str:
    return f"{value:g}"


def tertile_groups(values: pl.Series, column: str) -> tuple[pl.Series, tuple[str, ...]]:
    """Each value's third, labelled by its range, and the labels in order ("unknown" last).

    Fewer than three distinct values give fewer groups (never an empty third).
    """
    present = np.sort(values.drop_nulls().cast(pl.Float64).to_numpy())
    unit = _UNITS.get(column, "")
    if present.size == 0:
        return pl.Series("group", ["unknown"] * values.len(), pl.String), ("unknown",)
    cuts = [_type7(present, 1 / 3), _type7(present, 2 / 3)]
    raw = values.cast(pl.Float64).to_numpy()
    third = np.where(raw <= cuts[0], 0, np.where(raw <= cuts[1], 1, 2))
    labels: dict[int, str] = {}
    for k in range(3):
        held = present[np.where(present <= cuts[0], 0, np.where(present <= cuts[1], 1, 2)) == k]
        if held.size:
            labels[k] = f"{_fmt(float(held.min()))}–{_fmt(float(held.max()))}{unit}"
    nulls = values.is_null().to_numpy()
    out = ["unknown" if nulls[i] else labels[int(third[i])] for i in range(values.len())]
    order = tuple(labels[k] for k in sorted(labels))
    if nulls.any():
        order = (*order, "unknown")
    return pl.Series("group", out, pl.String), order
