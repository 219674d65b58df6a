"""Cached loaders of the physician's day (queue with first-seen times, worklist, rule
performance), keyed on the store's data version and the account's site scope like
`dashboard.data`."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard.data import (
    cohort_patients_for,
    everyones_outcomes,
    get_store,
    same_cohort_for,
    snapshot_for,
    store_for,
)
from dashboard.filters import Filters
from dashboard.site_scope import current_scope
from monitoring.store.site_scope import SiteScope


def queue(data_version: int, as_of: date, status: str) -> pl.DataFrame:
    """The whole cohort's queue with first_seen_upload / first_seen_at, in inbox order."""
    from monitoring.store.alert_ledger import ledger_size

    # the ledger is written just after an upload's commit, without a new data version
    return _queue(data_version, current_scope(), ledger_size(get_store()), as_of, status)


@st.cache_data(max_entries=16, show_spinner=False)
def _queue(
    data_version: int, scope: SiteScope, ledger_rows: int, as_of: date, status: str
) -> pl.DataFrame:
    from monitoring.first_seen import inbox, queue_with_first_seen

    return inbox(queue_with_first_seen(store_for(scope), as_of, status))


def latest_visit_date(data_version: int) -> date | None:
    return _latest_visit_date(data_version, current_scope())


@st.cache_data(max_entries=8, show_spinner=False)
def _latest_visit_date(data_version: int, scope: SiteScope) -> date | None:
    _patients, visits = snapshot_for(data_version, scope)
    if visits.is_empty():
        return None
    latest: date | None = visits["visit_date"].max()  # type: ignore[assignment]
    return latest


def worklist(data_version: int, as_of: date, within_days: int) -> pl.DataFrame:
    return _worklist(data_version, current_scope(), as_of, within_days)


@st.cache_resource(max_entries=16, show_spinner=False)  # shared, not copied (dashboard.data)
def _worklist(data_version: int, scope: SiteScope, as_of: date, within_days: int) -> pl.DataFrame:
    from monitoring.worklist import worklist as build

    patients, visits = snapshot_for(data_version, scope)
    # everyone's outcomes, derived once per data version and date for every page
    derived = everyones_outcomes(data_version, scope, as_of)
    return build(patients, visits, as_of, within_days=within_days, outcomes=derived)


def due_count(data_version: int, filters: Filters, as_of: date, within_days: int) -> int:
    """The Overview's "Due this week": `worklist.due_within` of the filtered cohort's worklist,
    counted once per filter from the per-patient counts."""
    return due_count_for(data_version, current_scope(), filters, as_of, within_days)


def due_count_for(
    data_version: int, scope: SiteScope, filters: Filters, as_of: date, within_days: int
) -> int:
    """`due_count` of `scope`'s patients."""
    same = same_cohort_for(data_version, scope, filters)
    return _due_count(data_version, scope, same, as_of, within_days)


@st.cache_resource(max_entries=64, show_spinner=False)
def _due_count(
    data_version: int, scope: SiteScope, filters: Filters, as_of: date, within_days: int
) -> int:
    from monitoring.worklist import due_among

    ids = cohort_patients_for(data_version, scope, filters)["patient_id"]
    return due_among(_due_per_patient(data_version, scope, as_of, within_days), ids)


@st.cache_resource(max_entries=8, show_spinner=False)
def _due_per_patient(
    data_version: int, scope: SiteScope, as_of: date, within_days: int
) -> pl.DataFrame:
    """(patient_id, n) of everyone's worklist (`worklist.due_per_patient`)."""
    from monitoring.worklist import due_per_patient

    return due_per_patient(_worklist(data_version, scope, as_of, within_days), within_days)


def performance(data_version: int, as_of: date) -> pl.DataFrame:
    return _performance(data_version, current_scope(), as_of)


@st.cache_data(max_entries=8, show_spinner="Scoring the rules…")
def _performance(data_version: int, scope: SiteScope, as_of: date) -> pl.DataFrame:
    from monitoring.rule_performance import store_rule_performance

    return store_rule_performance(store_for(scope), as_of)


def first_seen_baseline(user: str) -> str | None:
    """When this user last opened Alerts before this browser session (None: never).

    Recorded once per session, so reruns inside the session (acknowledging, filtering) keep the
    same "new" marks until the page is opened again in a new session."""
    from monitoring.first_seen import ALERTS_PAGE
    from monitoring.store.alert_ledger import record_page_visit

    key = f"first_seen_baseline:{user}"
    if key not in st.session_state:
        st.session_state[key] = record_page_visit(get_store(), user, ALERTS_PAGE)
    baseline: str | None = st.session_state[key]
    return baseline
