"""The Overview's swimmer plot at any cohort size: filter (status, open alerts), sort, page; a
click on a lane opens that patient (`monitoring.swimmer` chooses the lanes, `charts` draws)."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import streamlit as st

from dashboard import charts, components
from dashboard.page_registry import PAGE_BY_PATH
from dashboard.text import md
from monitoring.swimmer import PER_PAGE, SHOW, SORT, swimmer_page

_CHART_KEY = "swimmer_chart"
_NO_ALERTS = pl.DataFrame(schema={"patient_id": pl.String, "severity": pl.String})
_OPEN = "swimmer_open_patient"


def _clicked() -> None:
    """on_select: remember the patient of the clicked lane (opened on the rerun)."""
    state = st.session_state.get(_CHART_KEY)
    points = state.selection.points if state is not None else []
    for point in points:
        patient = point.get("customdata")
        if isinstance(patient, str) and patient:
            st.session_state[_OPEN] = patient
            return


def show(
    lanes: pl.DataFrame,
    mrd: pl.DataFrame,
    open_alerts: Callable[[], pl.DataFrame],
    stamp: components.Stamp,
) -> None:
    """Controls, the page of lanes, and where it is among all the lanes. `open_alerts` (the
    cohort's open alerts: patient_id, severity) is called only when the lanes are filtered or
    sorted by them, so the plot does not wait for the alert evaluation otherwise."""
    opened = st.session_state.pop(_OPEN, None)
    if opened is not None:
        st.switch_page(PAGE_BY_PATH["patient"].path, query_params={"patient": opened})
    row = st.columns([2, 2, 1])
    chosen_show = row[0].selectbox(
        "Show", list(SHOW), format_func=SHOW.__getitem__, key="swimmer_show"
    )
    chosen_sort = row[1].selectbox(
        "Sort lanes", list(SORT), format_func=SORT.__getitem__, key="swimmer_sort"
    )
    needs_alerts = chosen_show == "alerts" or chosen_sort == "alerts"
    alerts = open_alerts() if needs_alerts else _NO_ALERTS
    pages = swimmer_page(lanes, alerts, show=chosen_show, sort=chosen_sort, per_page=PER_PAGE)
    page_number = int(
        row[2].number_input(
            f"Page (of {md(pages.pages)})",
            min_value=1,
            max_value=pages.pages,
            value=1,
            step=1,
            key=f"swimmer_page_{chosen_show}_{chosen_sort}",
        )
    )
    page = swimmer_page(
        lanes, alerts, show=chosen_show, sort=chosen_sort, page=page_number, per_page=PER_PAGE
    )
    if not page.matching:
        components.empty_state(f"No patient here: {SHOW[chosen_show].lower()}.")
        return
    st.caption(
        f"Lanes {md(page.first)}–{md(page.last)} of {md(page.matching)} "
        f"({md(SHOW[chosen_show].lower())}; {md(lanes.height)} patients in the cohort). "
        "Click a lane to open that patient."
    )
    shown_ids = page.lanes.select("patient_id")
    fig = charts.swimmer_figure(
        page.lanes, mrd.join(shown_ids, on="patient_id", how="semi"), stamp=stamp.text()
    )
    st.plotly_chart(
        fig,
        width="stretch",
        config={"displaylogo": False},
        on_select=_clicked,
        selection_mode="points",
        key=_CHART_KEY,
    )
