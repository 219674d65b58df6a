"""A filter part that keeps every patient (the multiselect's "Select all", every site ticked)
is dropped from the key the dashboard caches a cohort's views under: the same patients, so the
views already derived for them are read, not derived again; a part that filters anyone out is
kept."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import streamlit as st

import monitoring.worklist
from dashboard import data, day_data
from dashboard.filters import Filters, Held
from monitoring.store.site_scope import SiteScope
from monitoring.synthetic import make_cohort
from tests.dashboard_cohort import served_cohort

AS_OF = date(2026, 6, 30)
AGES = ("<3", "3–9", "10–17", "≥18")


def _every(patients: pl.DataFrame) -> dict[str, tuple[object, ...]]:
    return {
        "sites": tuple(patients["site"].drop_nulls().unique().sort()),
        "products": tuple(patients["product"].drop_nulls().unique().sort()),
        "years": tuple(patients["infusion_date"].dt.year().drop_nulls().unique().sort()),
    }


def _filters(patients: pl.DataFrame) -> list[Filters]:
    every = _every(patients)
    one_product, one_site = every["products"][:1], every["sites"][:1]
    return [
        Filters(products=every["products"]),  # "Select all"
        Filters(products=(*every["products"], "not a product")),
        Filters(sites=every["sites"], products=one_product),
        Filters(sites=one_site, years=every["years"]),
        Filters(age_groups=AGES),
        Filters(age_groups=AGES[1:]),
        Filters(products=every["products"][1:]),
        Filters(sites=every["sites"], products=every["products"], years=every["years"]),
    ]


@pytest.mark.parametrize("blank", [None, "product", "site", "infusion_date", "age"])
def test_the_simpler_filters_choose_the_same_patients_in_the_same_order(blank: str | None):
    patients = make_cohort(300, seed=5).patients
    if blank == "age":
        patients = patients.with_columns(
            age_at_infusion_years=pl.when(pl.int_range(pl.len()) == 7)
            .then(None)
            .otherwise(pl.col("age_at_infusion_years"))
        )
    elif blank is not None:  # one patient's value left blank: "every value" misses them
        patients = patients.with_columns(
            pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col(blank)).alias(blank)
        )
    held = Held.of(patients)
    dropped = 0
    for chosen in _filters(patients):
        simpler = chosen.without(held)
        assert simpler.chosen(patients).equals(chosen.chosen(patients)), (blank, chosen)
        dropped += simpler != chosen
    assert dropped >= (3 if blank else 6)  # the parts that keep everyone were dropped
    every_product = Filters(products=_every(patients)["products"])
    assert (every_product.without(held) == Filters()) == (blank != "product")


@pytest.mark.filterwarnings("ignore")  # st.cache_* outside a running app warns
def test_selecting_every_product_reads_the_whole_cohorts_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = served_cohort(tmp_path, monkeypatch, AS_OF)
    version, scope = store.data_version(), SiteScope.every()
    patients = store.patients()
    every_product = Filters(products=_every(patients)["products"])
    whole = data.overview_for(version, scope, Filters(), AS_OF)
    assert data.overview_for(version, scope, every_product, AS_OF) is whole  # read, not derived
    counts = data.open_alert_counts_for(version, scope, Filters(), AS_OF)
    assert data.open_alert_counts_for(version, scope, every_product, AS_OF) is counts
    due = day_data.due_count_for(version, scope, Filters(), AS_OF, 7)
    counted: list[int] = []
    real = monitoring.worklist.due_among
    monkeypatch.setattr(monitoring.worklist, "due_among", lambda *a: counted.append(1) or real(*a))
    assert day_data.due_count_for(version, scope, every_product, AS_OF, 7) == due
    assert counted == []  # read, not counted again
    pages = data.swimmer_pages_for(version, scope, every_product, AS_OF)
    assert pages.filters == Filters() and pages.patients == patients.height
    one = Filters(products=_every(patients)["products"][:1])
    assert data.overview_for(version, scope, one, AS_OF).lanes.height < patients.height
    store.close()
    st.cache_resource.clear()
