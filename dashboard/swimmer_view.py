"""The Overview's swimmer plot at any cohort size: filter (status, open alerts), sort, page; a
click on a lane opens that patient (`monitoring.swimmer` chooses the lanes, `charts` draws)."""

from __future__ import annotations

from typing import Protocol

import plotly.graph_objects as go
import streamlit as st

from dashboard import components
from dashboard.page_registry import PAGE_BY_PATH
from dashboard.text import md
from monitoring.swimmer import SHOW, SORT, SwimmerPage

_CHART_KEY = "swimmer_chart"
_OPEN = "swimmer_open_patient"


class SwimmerPages(Protocol):
    """The cohort's lanes a page at a time (`dashboard.data.SwimmerPages`)."""

    @property
    def patients(self) -> int: ...

    def page(self, show: str, sort: str, number: int) -> SwimmerPage: ...

    def figure(self, show: str, sort: str, number: int, stamp: str) -> go.Figure: ...


def _clicked() -> None:
    """on_select: remember the patient of the clicked lane (opened on the rerun)."""
    state = st.session_state.get(_CHART_KEY)
    points = state.selection.points if state is not None else []
    for point in points:
        patient = point.get("customdata")
        if isinstance(patient, str) and patient:
            st.session_state[_OPEN] = patient
            return


def show(pages: SwimmerPages, stamp: components.Stamp) -> None:
    """Controls, the page of lanes, and where it is among all the lanes. `pages` cuts (and
    caches) a page for a filter, an order and a page number; the open alerts are evaluated only
    when the lanes are filtered or sorted by them, so the plot does not wait for them
    otherwise."""
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
    first = pages.page(chosen_show, chosen_sort, 1)
    page_number = int(
        row[2].number_input(
            f"Page (of {md(first.pages)})",
            min_value=1,
            max_value=first.pages,
            value=1,
            step=1,
            key=f"swimmer_page_{chosen_show}_{chosen_sort}",
        )
    )
    page = pages.page(chosen_show, chosen_sort, page_number)
    if not page.matching:
        components.empty_state(f"No patient here: {SHOW[chosen_show].lower()}.")
        return
    st.caption(
        f"Lanes {md(page.first)}–{md(page.last)} of {md(page.matching)} "
        f"({md(SHOW[chosen_show].lower())}; {md(pages.patients)} patients in the cohort). "
        "Click a lane to open that patient."
    )
    fig = pages.figure(chosen_show, chosen_sort, page_number, stamp.text())
    st.plotly_chart(
        fig,
        width="stretch",
        config={"displaylogo": False},
        on_select=_clicked,
        selection_mode="points",
        key=_CHART_KEY,
    )
