"""Overview: cohort tiles and the swimmer plot.

The first page after sign-in: what needs the whole alert evaluation and the worklist (the
"Open alerts" and "Due this week" tiles, the cohort report's download) is computed last, into
places kept for it, so the cohort's tiles and swimmer plot show without waiting for it.
"""

import streamlit as st

from dashboard import auth, components, data, day_data, filters, swimmer_view
from dashboard.report_download import report_button
from dashboard.text import md
from monitoring.config import DAYS_PER_MONTH

auth.require("view")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
stamp = components.Stamp(version, as_of, chosen.describe())
st.title("Cohort overview")
view = data.overview(version, chosen, as_of)
tiles = view.tiles
if not tiles.infused:
    components.empty_state(
        "No patients yet for these filters. A data manager loads exports on the Data page "
        "(or run `ltfu demo` for the synthetic cohort); otherwise widen the sidebar filters."
    )
    st.stop()
report_slot = st.empty()

fu = view.median_followup_days
rate = tiles.response_rate
tiles_grid = st.grid(4, min_column_width=170)
with tiles_grid.cell():
    st.metric("Patients infused", md(tiles.infused), border=True)
with tiles_grid.cell():
    st.metric(
        "Median follow-up",
        "–" if fu is None else f"{fu / DAYS_PER_MONTH:.1f} mo",
        help="Reverse Kaplan–Meier median of overall survival follow-up.",
        border=True,
    )
with tiles_grid.cell():
    st.metric(
        "CR/CRi rate",
        "–" if rate is None else f"{100 * rate:.0f} %",
        help=f"{md(tiles.responders)} of {md(tiles.assessed)} evaluable by day 90; "
        f"{md(tiles.pending)} still pending.",
        border=True,
    )
with tiles_grid.cell():
    st.metric(
        "In remission",
        md(tiles.in_remission),
        border=True,
        help="In continuous remission: responders alive without relapse.",
    )
with tiles_grid.cell():
    st.metric("Relapses", md(tiles.relapses), border=True, help="Split by CD19 status below.")
    st.caption(" · ".join(f"{md(category)} {md(count)}" for category, count in tiles.relapse_cd19))
with tiles_grid.cell():
    st.metric(
        "Ongoing B-cell aplasia",
        md(tiles.aplasia),
        border=True,
        help="In continuous remission, no B-cell recovery, no transplant.",
    )
with tiles_grid.cell():
    st.metric("Deaths", md(tiles.deaths), border=True)
alerts_slot = tiles_grid.empty()
due_slot = tiles_grid.empty()

st.subheader("Swimmer plot")
# the open alerts are evaluated only when the swimmer filters or sorts by them
swimmer_view.show(data.swimmer_pages(version, chosen, as_of), stamp)

# last: the alert evaluation and the worklist (the page above is readable meanwhile)
with alerts_slot.container():
    severity = data.open_alert_counts(version, chosen, as_of)
    st.metric("Open alerts", md(sum(severity.values())), border=True)
    st.caption(" · ".join(f"{md(k)} {md(v)}" for k, v in severity.items()))

with due_slot.container():
    st.metric(
        "Due this week",
        md(day_data.due_count(version, chosen, as_of, 7)),
        border=True,
        help="Worklist items (marrow MRD in an open window, follow-up contact) due within "
        "7 days of the evaluation date; the Worklist page lists them.",
    )

with report_slot.container():
    report_button(chosen, as_of, version)
