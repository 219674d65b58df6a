"""Patient: one child's course on one time axis, the visits, the alerts, and the Flag button."""

import polars as pl
import streamlit as st

from dashboard import audit, auth, charts, components, data, filters
from dashboard.text import md
from monitoring.accounts import refusal
from monitoring.alert_queue import flag_patient
from monitoring.alerts import FLAG_SEVERITIES
from monitoring.config import DAYS_PER_MONTH, get_config
from monitoring.errors import LtfuError

auth.require("view")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
st.title("Patient")
everyone = data.outcomes(version, filters.Filters(), as_of)
in_filter = data.cohort(version, chosen)[0]["patient_id"].to_list()
requested = st.query_params.get("patient")
options = list(in_filter)
if requested and requested in everyone["patient_id"].to_list() and requested not in options:
    options.insert(0, requested)
if not options:
    components.empty_state(
        "No patients for these filters. Widen the sidebar filters, or load data on the Data page."
    )
    st.stop()
if requested and requested not in options:
    st.warning(f"No patient “{md(requested)}” in the store (as of {md(as_of)}).")
if st.session_state.get("patient_pick") not in options:
    st.session_state["patient_pick"] = requested if requested in options else options[0]
patient_id = st.selectbox("Patient", options, key="patient_pick")
if patient_id != requested:
    st.query_params["patient"] = patient_id

audit.patient_viewed(patient_id)
stamp = components.Stamp(version, as_of, f"patient {patient_id}")
outcome = everyone.filter(pl.col("patient_id") == patient_id).row(0, named=True)
visits = data.patient_visits(version, patient_id, as_of)
alerts = data.alerts(version, as_of, "all").filter(pl.col("patient_id") == patient_id)

open_alerts = alerts.filter(pl.col("status") == "open").height
st.markdown(
    f"Infused **{md(outcome['infusion_date'])}** · product **{md(outcome['product'] or '–')}** · "
    f"site **{md(outcome['site'] or '–')}** · age **{md(outcome['age_at_infusion_years'] or '–')}"
    f" y** · response **{md((outcome['response'] or '–').replace('_', '-'))}** · follow-up "
    f"**{(outcome['last_contact_day'] or 0) / DAYS_PER_MONTH:.1f} months** · open alerts "
    f"**{md(open_alerts)}**"
)

cfg = get_config()
fig = charts.patient_figure(
    visits,
    outcome,
    alerts,
    bcell_pct_threshold=cfg.bcell_pct_recovery,
    car_threshold=cfg.car_loss_copies_per_ug,
    mrd_threshold=cfg.mrd_flow_detected,
    stamp=stamp.text(),
)
st.plotly_chart(fig, width="stretch", config={"displaylogo": False})


def close_dialog() -> None:
    st.session_state.pop("flag_for", None)


@st.dialog("Flag patient", on_dismiss=close_dialog)
def flag_dialog(pid: str) -> None:
    severity = st.segmented_control(
        "Severity", list(FLAG_SEVERITIES), default="high", key="flag_severity"
    )
    note = st.text_area("Note", placeholder="Why this child needs attention", key="flag_note")
    if st.button("Raise flag", type="primary"):
        try:
            account = auth.require("flag")
            flag_patient(data.get_store(), pid, account.user_name, severity or "high", note)
        except LtfuError as exc:
            components.show_error(exc)
            return
        close_dialog()
        st.session_state["flag_done"] = f"Flag raised for {pid}."
        st.rerun()


done = st.session_state.pop("flag_done", None)
if done:
    st.success(md(done), icon=":material/flag:")
if st.button("Flag", icon=":material/flag:", key="flag_open"):
    if auth.allowed("flag"):
        st.session_state["flag_for"] = patient_id
    else:
        components.refuse(refusal("flag"))
if st.session_state.get("flag_for") == patient_id:
    flag_dialog(patient_id)

st.subheader("Alerts")
if alerts.is_empty():
    components.empty_state("No alerts for this patient.")
else:
    st.dataframe(
        alerts.with_columns(pl.col("triggered_on").cast(pl.String)).select(
            "severity",
            "triggered_on",
            "day",
            "rule",
            "message",
            "status",
            "acknowledged_by",
            "ack_note",
        ),
        hide_index=True,
        width="stretch",
    )

st.subheader("Visits")
if visits.is_empty():
    components.empty_state("No visits recorded for this patient yet.")
else:
    st.dataframe(
        components.for_display(visits.drop("infusion_date").sort("visit_date", descending=True)),
        hide_index=True,
        width="stretch",
    )
    components.csv_download(
        "Visits (CSV)",
        visits,
        f"{patient_id}_{stamp.slug()}.csv",
        stamp,
        key="dl-visits",
        patient_id=patient_id,
    )
