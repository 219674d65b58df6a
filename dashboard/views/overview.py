"""Overview: cohort tiles and the swimmer plot."""

import streamlit as st

from dashboard import auth, charts, components, data, filters

auth.require("view")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
stamp = components.Stamp(version, as_of, chosen.describe())
st.title("Cohort overview")
view = data.overview(version, chosen, as_of)
tiles = view["tiles"]
if not tiles["infused"]:
    components.empty_state(
        "No patients yet for these filters. A data manager loads exports on the Data page "
        "(or run `ltfu demo` for the synthetic cohort); otherwise widen the sidebar filters."
    )
    st.stop()

fu = view["median_followup_days"]
rate = tiles["response_rate"]
cd19 = tiles["relapse_cd19"]
alerts = data.filtered_alerts(as_of, "open", chosen)
severity = charts.severity_counts(alerts)
row1 = st.columns(4)
row1[0].metric("Patients infused", tiles["infused"], border=True)
row1[1].metric(
    "Median follow-up (months)",
    "–" if fu is None else f"{fu / 30.4375:.1f}",
    help="Reverse Kaplan–Meier median of overall survival follow-up.",
    border=True,
)
row1[2].metric(
    "CR/CRi rate",
    "–" if rate is None else f"{100 * rate:.0f} %",
    help=f"{tiles['responders']} of {tiles['assessed']} evaluable by day 90; "
    f"{tiles['pending']} still pending.",
    border=True,
)
row1[3].metric(
    "In remission",
    tiles["in_remission"],
    border=True,
    help="In continuous remission: responders alive without relapse.",
)
row2 = st.columns(4)
row2[0].metric(
    "Relapses",
    tiles["relapses"],
    border=True,
    help="CD19-positive / antigen escape / lineage switch / unknown",
)
row2[0].caption(
    f"CD19-positive {cd19['CD19-positive']} · antigen escape {cd19['antigen escape']} · "
    f"lineage switch {cd19['lineage switch']} · unknown {cd19['unknown']}"
)
row2[1].metric(
    "Ongoing B-cell aplasia",
    tiles["aplasia"],
    border=True,
    help="In continuous remission, no B-cell recovery, no transplant.",
)
row2[2].metric("Deaths", tiles["deaths"], border=True)
if alerts is None:
    row2[3].metric("Open alerts", "–", border=True, help="The alert queue is not available yet.")
else:
    row2[3].metric("Open alerts", sum(severity.values()), border=True)
    row2[3].caption(" · ".join(f"{k} {v}" for k, v in severity.items()))

st.subheader("Swimmer plot")
fig = charts.swimmer_figure(view["lanes"], view["mrd"], stamp=stamp.text())
st.plotly_chart(fig, width="stretch", config={"displaylogo": False})
