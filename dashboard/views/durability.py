"""Durability: Kaplan–Meier / cumulative incidence with numbers at risk, landmarks, downloads."""

import streamlit as st

from dashboard import auth, charts, comparison_view, components, data, filters
from dashboard.text import md, md_cells
from monitoring.analysis_registry import (
    DEFAULT_PAGE_ENDPOINT,
    ENDPOINT_BY_ID,
    OPTION_BY_FIELD,
    DurabilityRequest,
)
from monitoring.cohort_views import risk_table
from monitoring.config import DAYS_PER_MONTH
from monitoring.endpoints import POST_BASELINE_GROUPS, SUGGESTED_LANDMARK, clinical_groupings
from monitoring.groupings import column_label

auth.require("view")
# the default endpoint first, then the contract's order
ENDPOINT_IDS = [DEFAULT_PAGE_ENDPOINT, *(e for e in ENDPOINT_BY_ID if e != DEFAULT_PAGE_ENDPOINT)]
# groupings a clinician means: continuous columns only as bands or thirds (monitoring.groupings)
GROUPINGS = ["(none)", *clinical_groupings()]

chosen, as_of, version = filters.current(), filters.as_of(), data.version()
controls = st.grid(3, min_column_width=220)
left, middle, right = controls.cell(), controls.cell(), controls.cell()
endpoint = left.selectbox(
    "Endpoint", ENDPOINT_IDS, format_func=lambda e: ENDPOINT_BY_ID[e].label, key="dur_endpoint"
)
spec = ENDPOINT_BY_ID[endpoint]
by_label = middle.selectbox(
    "Group by",
    GROUPINGS,
    key="dur_by",
    format_func=lambda g: "(none)" if g == "(none)" else column_label(g),
)
by = None if by_label == "(none)" else by_label
with right:
    use_landmark = st.toggle(
        "Landmark analysis", key="dur_landmark_on", value=by in POST_BASELINE_GROUPS
    )
    landmark = None
    if use_landmark or by in POST_BASELINE_GROUPS:
        landmark = int(
            st.number_input(
                "Landmark (days since infusion)",
                min_value=0,
                max_value=3650,
                step=1,
                value=SUGGESTED_LANDMARK.get(by or "", 183),
                key=f"dur_landmark_{by}",
                help="Only patients still at risk at the landmark; time counts from it.",
            )
        )
    switched = {
        field: st.toggle(
            md(OPTION_BY_FIELD[field].label),
            value=OPTION_BY_FIELD[field].page_default,
            key=OPTION_BY_FIELD[field].page_key,
        )
        for field in spec.options
    }

stamp = components.Stamp(
    version,
    as_of,
    chosen.describe() + (f"; landmark day {landmark}" if landmark is not None else ""),
)
title = spec.label
st.header(md(title))
request = DurabilityRequest(endpoint, by=by, as_of=as_of, landmark_days=landmark, **switched)
table, summary = data.durability(version, chosen, request)
if table.is_empty():
    components.empty_state(
        f"No patient is in the {title.lower()} population for these "
        "filters (and landmark). Widen the filters or pick another endpoint."
    )
    st.stop()

x_title = f"Months since {'landmark' if landmark is not None else spec.origin}"
summary_json = summary.to_json()
legend = comparison_view.legend_labels(summary_json, by, endpoint)
if spec.competing_risks:
    fig = charts.cif_figure(table, x_title=x_title, stamp=stamp.text(), labels=legend)
else:
    fig = charts.km_figure(
        table, summary, y_title=f"{title} (%)", x_title=x_title, stamp=stamp.text(), labels=legend
    )
# the toolbar stands upright in the right margin, clear of the legend above the plot
fig.update_layout(modebar={"orientation": "v"}, margin={"r": 48})
st.plotly_chart(fig, width="stretch", config={"displaylogo": False})

ticks = charts.tick_months(charts.last_time(table))
risk = risk_table(table, ticks)
st.markdown(f"**Number at risk** (columns: {md(x_title.lower())})")
st.table(md_cells(risk).to_pandas().set_index("Number at risk"))

groups = summary.groups
comparison_view.show(summary_json, by)

fu = summary.median_followup_days
st.subheader("Landmarks")
st.caption(
    "Estimates with 95 % confidence limits (log-log) and numbers at risk. "
    + ("" if fu is None else f"Median follow-up {fu / DAYS_PER_MONTH:.1f} months.")
)
st.dataframe(charts.landmark_frame(summary), hide_index=True, width="stretch")
medians = [(g.group, g.median_days) for g in groups if not spec.competing_risks]
if medians:
    st.caption(
        "Median: "
        + "; ".join(
            f"{md(g)} {'not reached' if m is None else f'{m / DAYS_PER_MONTH:.1f} months'}"
            for g, m in medians
        )
    )

st.subheader("Downloads")
name = f"{endpoint}{'_by_' + by if by else ''}_{stamp.slug()}"
components.csv_download("Curve data (CSV)", table, f"{name}.csv", stamp, key="dl-curve")
if st.button("Prepare PNG and SVG", icon=":material/image:", key="prep-images"):
    st.session_state["dur_images_for"] = name
if st.session_state.get("dur_images_for") == name:
    components.figure_downloads(fig, name, key="dl-fig", filters=stamp.filters)
