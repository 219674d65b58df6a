"""Durability: Kaplan–Meier / cumulative incidence with numbers at risk, landmarks, downloads.

The figure stands alone: its title, the test with its p-value and the stamp are drawn on it, and
its camera button saves it as PNG or SVG in the browser (no server round trip, no wait)."""

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
from monitoring.errors import UsageError
from monitoring.groupings import column_label

auth.require("view")
# the default endpoint first, then the contract's order
ENDPOINT_IDS = [DEFAULT_PAGE_ENDPOINT, *(e for e in ENDPOINT_BY_ID if e != DEFAULT_PAGE_ENDPOINT)]
# groupings a clinician means: continuous columns only as bands or thirds (monitoring.groupings)
GROUPINGS = ["(none)", *clinical_groupings()]
OVERLAID = ("os", "efs", "rfs")  # the endpoints "Overlay" draws on one figure
FIGURE_WIDTH = 1100  # pixels of a saved figure (PNG at twice that)

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
    if by in POST_BASELINE_GROUPS:
        # grouping by what happens after infusion needs a landmark (immortal-time bias): the
        # toggle shows it on, and cannot be switched off, while that grouping is chosen
        st.toggle(
            "Landmark analysis",
            value=True,
            disabled=True,
            key="dur_landmark_required",
            help="Required for this grouping: it is known only after infusion.",
        )
        use_landmark = True
    else:
        use_landmark = st.toggle("Landmark analysis", key="dur_landmark_on")
    landmark = None
    if use_landmark:
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
    overlay = False
    if endpoint in OVERLAID:
        overlay = st.toggle(
            "Overlay OS, EFS and RFS",
            key="dur_overlay",
            disabled=by is not None,
            help="The three survival endpoints of all patients on one figure (without a grouping).",
        )
        overlay = overlay and by is None

stamp = components.Stamp(
    version,
    as_of,
    chosen.describe() + (f"; landmark day {landmark}" if landmark is not None else ""),
)
title = spec.label
st.header(md(title))
request = DurabilityRequest(endpoint, by=by, as_of=as_of, landmark_days=landmark, **switched)
reference_key = f"dur_reference_{endpoint}_{by}"
try:
    table, summary = data.durability(version, chosen, request, st.session_state.get(reference_key))
except UsageError:  # the chosen reference group is gone (other filters): the default again
    st.session_state.pop(reference_key, None)
    table, summary = data.durability(version, chosen, request, None)
if table.is_empty():
    components.empty_state(
        f"No patient is in the {title.lower()} population for these "
        "filters (and landmark). Widen the filters or pick another endpoint."
    )
    st.stop()

x_title = f"Months since {'landmark' if landmark is not None else spec.origin}"
names = comparison_view.group_names(summary, by)
legend = comparison_view.legend_labels(summary, by, endpoint)
figure_title = title + (f" by {comparison_view.in_a_sentence(column_label(by))}" if by else "")
if landmark is not None:
    figure_title += f", landmark day {landmark}"
subtitle = comparison_view.figure_subtitle(summary, by)
name = f"{endpoint}{'_by_' + by if by else ''}_{stamp.slug()}"
figure_name = name
if overlay:
    curves = []
    for other in OVERLAID:
        censor = "censor_at_new_therapy" in ENDPOINT_BY_ID[other].options and switched.get(
            "censor_at_new_therapy", False
        )
        other_request = DurabilityRequest(
            other, as_of=as_of, landmark_days=landmark, censor_at_new_therapy=censor
        )
        other_table, other_summary = data.durability(version, chosen, other_request, None)
        (group,) = other_summary.groups
        other_label = (
            f"{ENDPOINT_BY_ID[other].label} (n {group.n}, {group.events} events, "
            + (
                "median not reached"
                if group.median_days is None
                else f"median {group.median_days / DAYS_PER_MONTH:.1f} mo"
            )
            + ")"
        )
        curves.append((other.upper(), other_label, other_table, group.median_days))
    figure_title = "Overall, event-free and relapse-free survival"
    subtitle = "Relapse-free survival counts from remission onset, the others from infusion."
    fig = charts.km_overlay_figure(
        curves,
        y_title="Patients event-free (%)",
        x_title="Months since infusion (RFS: since remission onset)"
        if landmark is None
        else x_title,
        stamp=stamp.text(),
        title=figure_title,
        subtitle=subtitle,
    )
    figure_name = f"os_efs_rfs_{stamp.slug()}"
elif spec.competing_risks:
    fig = charts.cif_figure(
        table,
        x_title=x_title,
        stamp=stamp.text(),
        title=figure_title,
        subtitle=subtitle,
        labels=legend,
    )
else:
    fig = charts.km_figure(
        table,
        summary,
        y_title=f"{title} (%)",
        x_title=x_title,
        stamp=stamp.text(),
        title=figure_title,
        subtitle=subtitle,
        labels=legend,
        names=names,
    )
image_format = st.session_state.get("dur_figure_format") or "PNG"
st.plotly_chart(
    fig,
    width="stretch",
    config={
        "displaylogo": False,
        "displayModeBar": True,
        "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
        # the camera button saves what is drawn (title, test, p, stamp) in the browser
        "toImageButtonOptions": {
            "format": image_format.lower(),
            "filename": figure_name,
            "width": FIGURE_WIDTH,
            "height": fig.layout.height,
            "scale": 2 if image_format == "PNG" else 1,
        },
    },
)

ticks = charts.tick_months(charts.last_time(table))
risk = comparison_view.readable_risk_table(risk_table(table, ticks), names)
st.markdown(f"**Number at risk** (columns: {md(x_title.lower())})")
st.table(md_cells(risk).to_pandas().set_index("Number at risk"))

groups = summary.groups
comparison_view.show(summary, by, reference_key=reference_key)

fu = summary.median_followup_days
st.subheader("Landmarks")
st.caption(
    "Estimates with 95 % confidence limits (log-log) and numbers at risk. "
    + ("" if fu is None else f"Median follow-up {fu / DAYS_PER_MONTH:.1f} months.")
)
st.dataframe(charts.landmark_frame(summary, names), hide_index=True, width="stretch")
medians = [(names.get(g.group, g.group), g.median_days) for g in groups]
if medians and not spec.competing_risks:
    st.caption(
        "Median: "
        + "; ".join(
            f"{md(g)} {'not reached' if m is None else f'{m / DAYS_PER_MONTH:.1f} months'}"
            for g, m in medians
        )
    )

st.subheader("Downloads")
st.segmented_control(
    "Figure file",
    ["PNG", "SVG"],
    default="PNG",
    key="dur_figure_format",
    help="What the camera button at the figure's top right saves.",
)
st.caption(
    "The camera button at the top right of the figure saves it, with its title, test and "
    "stamp, in the format chosen here."
)
components.csv_download("Curve data (CSV)", table, f"{name}.csv", stamp, key="dl-curve")
