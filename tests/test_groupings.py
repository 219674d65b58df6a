"""Groupings a clinician means: continuous columns only as bands or named tertiles; human labels."""

from __future__ import annotations

import polars as pl
import pytest

from monitoring.durability import durability_summary
from monitoring.endpoints import (
    AGE_GROUPS,
    DISEASE_BURDEN_GROUPS,
    UNKNOWN,
    add_group,
    clinical_groupings,
)
from monitoring.groupings import column_label, group_label, tertile_groups, value_label
from monitoring.synthetic import make_cohort


@pytest.fixture(scope="module")
def cohort() -> tuple[pl.DataFrame, pl.DataFrame]:
    c = make_cohort(300, seed=11)
    return c.patients, c.visits


def test_grouping_by_age_in_years_gives_only_the_age_bands(cohort) -> None:
    patients, visits = cohort
    summary = durability_summary(patients, visits, "os", by="age_at_infusion_years").to_json()
    groups = [g["group"] for g in summary["groups"]]
    assert set(groups) <= {*AGE_GROUPS, UNKNOWN}
    assert 2 <= len(groups) <= len(AGE_GROUPS) + 1
    # the same as the named age grouping
    banded = durability_summary(patients, visits, "os", by="age_group").to_json()
    assert [g["group"] for g in banded["groups"]] == groups


def test_grouping_by_blasts_gives_only_the_burden_bands(cohort) -> None:
    patients, _ = cohort
    groups = add_group(patients, "baseline_bm_blasts_pct")["group"].cast(pl.String).unique()
    assert set(groups.to_list()) <= {*DISEASE_BURDEN_GROUPS, UNKNOWN}


def test_infusion_date_groups_by_year(cohort) -> None:
    patients, _ = cohort
    groups = add_group(patients, "infusion_date")["group"].cast(pl.String).unique().to_list()
    years = patients["infusion_date"].dt.year().cast(pl.String).unique().to_list()
    assert sorted(groups) == sorted(years)


def test_tertiles_are_three_groups_named_by_their_ranges() -> None:
    ages = pl.Series([1.5, 2.0, 3.0, 4.0, 5.5, 6.0, 10.0, 12.0, 20.0, None])
    groups, order = tertile_groups(ages, "age_at_infusion_years")
    # R quantile(c(1.5,2,3,4,5.5,6,10,12,20), c(1/3, 2/3)) = 3.6667, 7.3333
    assert order == ("1.5–3 y", "4–6 y", "10–20 y", "unknown")
    assert groups.to_list() == [
        "1.5–3 y",
        "1.5–3 y",
        "1.5–3 y",
        "4–6 y",
        "4–6 y",
        "4–6 y",
        "10–20 y",
        "10–20 y",
        "10–20 y",
        "unknown",
    ]


def test_age_tertiles_grouping_has_at_most_three_ranges(cohort) -> None:
    patients, _ = cohort
    group = add_group(patients, "age_tertiles")["group"]
    categories = list(group.dtype.categories)
    assert 1 <= len([c for c in categories if c != UNKNOWN]) <= 3
    counts = group.value_counts()["count"].to_list()
    assert max(counts) - min(counts) <= patients.height // 6  # roughly thirds


def test_clinical_groupings_never_offer_a_raw_continuous_column() -> None:
    choices = clinical_groupings()
    assert "age_at_infusion_years" not in choices
    assert "baseline_bm_blasts_pct" not in choices
    assert "infusion_date" not in choices
    assert {"age_group", "age_tertiles", "disease_burden", "blasts_tertiles"} <= set(choices)


def test_human_labels() -> None:
    assert column_label("kmt2a_rearranged") == "KMT2A rearranged"
    assert column_label("prior_hsct") == "Prior HSCT"
    assert value_label("kmt2a_rearranged", "true") == "Yes"
    assert value_label("prior_blinatumomab", "false") == "No"
    assert value_label("sex", "F") == "Female"
    assert value_label("age_group", "10–17") == "10–17 y"
    assert group_label("kmt2a_rearranged", "true", 12) == "Yes (n = 12)"
    assert group_label(None, "all", 300) == "All patients (n = 300)"
