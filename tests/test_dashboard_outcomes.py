"""A filter change on the dashboard picks the cohort's outcomes (and MRD points) from everyone's:
the same frames as deriving them for the filtered cohort (outcomes are per patient)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import streamlit as st

from dashboard import data, day_data
from dashboard.filters import Filters
from monitoring import cohort_views
from monitoring.durability import median_followup_days
from monitoring.ingest import ingest_files
from monitoring.outcomes import derive_outcomes, mrd_detected_expr, visits_with_day
from monitoring.store import Store
from monitoring.store.site_scope import SiteScope
from monitoring.synthetic import make_cohort, write_csv
from monitoring.worklist import worklist

AS_OF = date(2026, 6, 30)


@pytest.mark.filterwarnings("ignore")  # st.cache_data outside a running app warns
def test_filtered_outcomes_equal_the_filtered_cohorts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    ingest_files(store, list(write_csv(make_cohort(300, seed=5), tmp_path / "csv")), today=AS_OF)
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_resource.clear()  # loaders are keyed on the data version, not the store
    patients = store.patients()
    product, site = patients["product"][0], patients["site"][0]
    version, scope = store.data_version(), SiteScope.every()
    for chosen in (
        Filters(products=(product,)),
        Filters(sites=(site,), years=(2024, 2025)),
        Filters(age_groups=("<3",)),
    ):
        cohort_patients, cohort_visits = chosen.apply(*store.snapshot()[1:])
        expected = derive_outcomes(cohort_patients, cohort_visits, as_of=AS_OF)
        got = data._outcomes(version, scope, chosen, AS_OF)
        assert 0 < expected.height < patients.height, chosen
        assert got.equals(expected), chosen
    store.close()


def _overview_as_before(patients: pl.DataFrame, visits: pl.DataFrame) -> data.Overview:
    """The overview as it was computed for the filtered cohort itself (before it was picked
    from everyone's outcomes and MRD points)."""
    frame = derive_outcomes(patients, visits, as_of=AS_OF)
    with_day = visits_with_day(patients, visits.filter(pl.col("visit_date") <= AS_OF))
    mrd = with_day.filter(mrd_detected_expr() & (pl.col("day") > 0)).select("patient_id", "day")
    tiles = cohort_views.OverviewTiles(
        infused=frame.height,
        responders=(responders := frame.filter(pl.col("response") == "responder")).height,
        assessed=(assessed := frame.filter(pl.col("response") != "pending").height),
        pending=frame.height - assessed,
        response_rate=responders.height / assessed if assessed else None,
        in_remission=(
            remission := responders.filter(
                pl.col("relapse_date").is_null() & pl.col("death_date").is_null()
            )
        ).height,
        relapses=(relapsed := responders.filter(pl.col("relapse_date").is_not_null())).height,
        relapse_cd19=tuple(
            (c, [cohort_views.cd19_category(s) for s in relapsed["relapse_cd19_status"]].count(c))
            for c in cohort_views.CD19_CATEGORIES
        ),
        aplasia=remission.filter(
            pl.col("bcell_recovery_date").is_null()
            & pl.col("hsct_date").is_null()
            & pl.col("last_bcell_date").is_not_null()
        ).height,
        deaths=frame.filter(pl.col("death_date").is_not_null()).height,
    )
    return data.Overview(
        tiles=tiles,
        median_followup_days=median_followup_days(frame) if frame.height else None,
        lanes=cohort_views.swimmer_lanes(frame, AS_OF),
        mrd=mrd,
    )


@pytest.mark.filterwarnings("ignore")  # st.cache_* outside a running app warns
def test_overview_and_worklist_equal_the_cohorts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The Overview's tiles, swimmer lanes and MRD points, and the worklist, read from
    everyone's outcomes and MRD points, are what the cohort's own derivation gives."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    ingest_files(store, list(write_csv(make_cohort(300, seed=5), tmp_path / "csv")), today=AS_OF)
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_resource.clear()
    st.cache_data.clear()
    _version, all_patients, all_visits = store.snapshot()
    product, site = all_patients["product"][0], all_patients["site"][0]
    version, scope = store.data_version(), SiteScope.every()
    for chosen in (
        Filters(),
        Filters(products=(product,)),
        Filters(sites=(site,), years=(2024, 2025)),
        Filters(age_groups=("<3",)),
    ):
        expected = _overview_as_before(*chosen.apply(all_patients, all_visits))
        got = data._overview(version, scope, chosen, AS_OF)
        assert got.tiles == expected.tiles, chosen
        assert sum(n for _c, n in got.tiles.relapse_cd19) == got.tiles.relapses > 0, chosen
        assert got.median_followup_days == expected.median_followup_days, chosen
        assert got.lanes.equals(expected.lanes), chosen
        assert expected.mrd.height > 0 and got.mrd.equals(expected.mrd), chosen
    got_worklist = day_data._worklist(version, scope, AS_OF, 7)
    assert got_worklist.height > 0
    assert got_worklist.equals(worklist(all_patients, all_visits, AS_OF, within_days=7))
    store.close()
