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
from monitoring.outcomes import derive_outcomes, mrd_detected_expr, visits_with_day
from monitoring.store.site_scope import SiteScope
from monitoring.worklist import worklist
from tests.dashboard_cohort import served_cohort

AS_OF = date(2026, 6, 30)


@pytest.mark.filterwarnings("ignore")  # st.cache_data outside a running app warns
def test_filtered_outcomes_equal_the_filtered_cohorts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = served_cohort(tmp_path, monkeypatch, AS_OF)
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
    store = served_cohort(tmp_path, monkeypatch, AS_OF)
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
        got = data.overview_for(version, scope, chosen, AS_OF)
        assert got.tiles == expected.tiles, chosen
        assert sum(n for _c, n in got.tiles.relapse_cd19) == got.tiles.relapses > 0, chosen
        assert got.median_followup_days == expected.median_followup_days, chosen
        assert got.lanes.equals(expected.lanes), chosen
        assert expected.mrd.height > 0 and got.mrd.equals(expected.mrd), chosen
    got_worklist = day_data._worklist(version, scope, AS_OF, 7)
    assert got_worklist.height > 0
    assert got_worklist.equals(worklist(all_patients, all_visits, AS_OF, within_days=7))
    store.close()


@pytest.mark.filterwarnings("ignore")  # st.cache_* outside a running app warns
def test_the_overviews_counts_per_filter_equal_the_cohorts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The sidebar's options, the filtered patients, the "Open alerts" tile (per severity) and
    "Due this week", each counted once per filter, equal what the Overview computed from the
    filtered cohort and the whole queue and worklist on every run before."""
    from monitoring.alert_queue import alerts_with_status
    from monitoring.worklist import due_within

    store = served_cohort(tmp_path, monkeypatch, AS_OF)
    _version, all_patients, all_visits = store.snapshot()
    product, site = all_patients["product"][0], all_patients["site"][0]
    version, scope = store.data_version(), SiteScope.every()
    options = data.filter_options_for(version, scope)
    assert options.sites == tuple(sorted(all_patients["site"].unique().to_list()))
    assert options.products == tuple(sorted(all_patients["product"].unique().to_list()))
    assert options.years == tuple(sorted(all_patients["infusion_date"].dt.year().unique()))
    queue = alerts_with_status(store, AS_OF, "open")
    within = (7, 90)  # the Overview's week; a quarter, when some are due
    everyones_worklist = {
        d: worklist(all_patients, all_visits, AS_OF, within_days=d) for d in within
    }
    for chosen in (
        Filters(),
        Filters(products=(product,)),
        Filters(sites=(site,), years=(2024, 2025)),
        Filters(age_groups=("<3",)),
        Filters(sites=("no such site",)),
    ):
        patients, visits = chosen.apply(all_patients, all_visits)
        assert data.cohort_patients_for(version, scope, chosen).equals(patients), chosen
        assert data.cohort_for(version, scope, chosen)[1].equals(visits), chosen
        ids = patients["patient_id"].implode()
        expected = cohort_views.severity_counts(queue.filter(pl.col("patient_id").is_in(ids)))
        got = data.open_alert_counts_for(version, scope, chosen, AS_OF)
        assert got == expected and list(got) == list(expected), chosen
        for days in within:
            # the rule stated here, not borrowed: rows to act on (no window yet to open), due
            # within the days
            due = everyones_worklist[days].filter(
                pl.col("patient_id").is_in(ids)
                & (pl.col("item") != "mrd_upcoming")
                & (pl.col("days_left") <= days)
            )
            got_due = day_data.due_count_for(version, scope, chosen, AS_OF, days)
            assert (
                got_due
                == due.height
                == due_within(
                    everyones_worklist[days].filter(pl.col("patient_id").is_in(ids)), days
                )
            ), (chosen, days)
    everyone = data.open_alert_counts_for(version, scope, Filters(), AS_OF)
    # the cohort has open alerts: the comparison above is not between empty counts
    assert everyone != dict.fromkeys(expected, 0)
    assert day_data.due_count_for(version, scope, Filters(), AS_OF, 90) > 0
    # one value shared by every session: none can change what another is shown
    with pytest.raises(TypeError):
        everyone["high"] = 0  # type: ignore[index]
    assert data.open_alert_counts_for(version, scope, Filters(), AS_OF) == everyone
    store.close()
