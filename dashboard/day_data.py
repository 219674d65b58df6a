"""Cached loaders of the physician's day (queue with first-seen times, worklist, rule
performance), keyed on the store's data version like `dashboard.data`."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard.data import get_store, snapshot


def queue(data_version: int, as_of: date, status: str) -> pl.DataFrame:
    """The whole cohort's queue with first_seen_upload / first_seen_at, in inbox order."""
    from monitoring.store.alert_ledger import ledger_size

    # the ledger is written just after an upload's commit, without a new data version
    return _queue(data_version, ledger_size(get_store()), as_of, status)


@st.cache_data(max_entries=16, show_spinner=False)
def _queue(data_version: int, ledger_rows: int, as_of: date, status: str) -> pl.DataFrame:
    from monitoring.first_seen import inbox, queue_with_first_seen

    return inbox(queue_with_first_seen(get_store(), as_of, status))


@st.cache_data(max_entries=8, show_spinner=False)
def latest_visit_date(data_version: int) -> date | None:
    _patients, visits = snapshot(data_version)
    if visits.is_empty():
        return None
    latest: date | None = visits["visit_date"].max()  # type: ignore[assignment]
    return latest


@st.cache_data(max_entries=16, show_spinner=False)
def worklist(data_version: int, as_of: date, within_days: int) -> pl.DataFrame:
    from monitoring.worklist import worklist as build

    patients, visits = snapshot(data_version)
    return build(patients, visits, as_of, within_days=within_days)


@st.cache_data(max_entries=8, show_spinner="Scoring the rules…")
def performance(data_version: int, as_of: date) -> pl.DataFrame:
    from monitoring.rule_performance import store_rule_performance

    return store_rule_performance(get_store(), as_of)


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
