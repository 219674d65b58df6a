"""Patient: one child's status, course on one time axis, alerts (acknowledge, flag) and visits.

An unknown `?patient=` id says so and shows nobody else (CONTRACT §6)."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import audit, auth, components, data, day_data, filters
from dashboard.ack_dialog import AckDialogKeys, show_acknowledge_dialog
from dashboard.patient_chart import patient_course_figure
from dashboard.text import md
from monitoring.alert_queue import flag_patient
from monitoring.alerts import RULES_BY_ID
from monitoring.config import get_config
from monitoring.display_time import local_time_text
from monitoring.errors import LtfuError
from monitoring.evidence_text import field_label, field_text

auth.require("view")
ACK_KEYS = AckDialogKeys(
    open_keys=("flag_for", "patient_ack_for"), note_key="patient_ack_note", done_key="flag_done"
)
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
rules = RULES_BY_ID
titles = {k: r.title for k, r in rules.items()}
st.title("Patient")
everyone = data.outcomes(version, filters.Filters(), as_of)
known = set(everyone["patient_id"].to_list())
in_filter = data.cohort_patients(version, chosen)["patient_id"].to_list()
requested = st.query_params.get("patient")
options = [p for p in in_filter if p in known]
if requested and requested in known and requested not in options:
    options.insert(0, requested)
if not options and not requested:
    components.empty_state(
        "No patients for these filters. Widen the sidebar filters, or load data on the Data page."
    )
    st.stop()
if requested and requested not in known:
    st.warning(
        f"No patient “{md(requested)}” in the store as of {md(as_of.isoformat())}. Check the id, or "
        "choose a patient below."
    )
    choice = st.selectbox("Patient", options, index=None, placeholder="Choose a patient…")
    if choice:
        st.query_params["patient"] = choice
        st.rerun()
    st.stop()
if st.session_state.get("patient_pick") not in options:
    st.session_state["patient_pick"] = requested if requested in options else options[0]
elif requested in options and requested != st.session_state.get("patient_pick_seen"):
    st.session_state["patient_pick"] = requested  # a new link (worklist, alerts) wins
patient_id = st.selectbox("Patient", options, key="patient_pick")
st.session_state["patient_pick_seen"] = patient_id
if patient_id != requested:
    st.query_params["patient"] = patient_id

audit.patient_viewed(patient_id)
stamp = components.Stamp(version, as_of, f"patient {patient_id}")
outcome = everyone.filter(pl.col("patient_id") == patient_id).row(0, named=True)
visits = data.patient_visits(version, patient_id, as_of)
queue = day_data.queue(version, as_of, "all")
alerts = queue.filter(pl.col("patient_id") == patient_id)
due = day_data.worklist(version, as_of, 14).filter(pl.col("patient_id") == patient_id)


def _d(value: date | None) -> str:
    return value.isoformat() if value else "–"


# plain words and values, escaped where the status line's own bold markdown puts them
vital = "dead" if outcome["death_date"] else "alive"
died = f" ({_d(outcome['death_date'])})" if outcome["death_date"] else ""
if outcome["relapse_date"]:
    remission, since = "relapsed", _d(outcome["relapse_date"])
elif outcome["remission_onset_date"]:
    remission, since = "in remission since", _d(outcome["remission_onset_date"])
else:
    remission, since = "response", (outcome["response"] or "–").replace("_", "-")
if due.height:
    nxt = due.sort("due_by").row(0, named=True)
    words = {"mrd_due": "marrow MRD", "mrd_upcoming": "marrow MRD", "contact_due": "contact"}
    next_due = f"{words.get(nxt['item'], nxt['item'])} by {_d(nxt['due_by'])}"
else:
    next_due = "nothing due within 14 days"
open_count = alerts.filter(pl.col("status") == "open").height
st.markdown(
    f"**{md(vital)}**{md(died)} · last contact **{md(_d(outcome['last_contact_date']))}** · "
    f"{md(remission)} **{md(since)}** · next: **{md(next_due)}** · open alerts **{md(open_count)}**"
)
st.caption(
    f"Infused {md(_d(outcome['infusion_date']))} · product {md(outcome['product'] or '–')} · "
    f"site {md(outcome['site'] or '–')} · age "
    f"{md('–' if outcome['age_at_infusion_years'] is None else outcome['age_at_infusion_years'])} y"
)

fig = patient_course_figure(visits, outcome, alerts, get_config(), titles, stamp=stamp.text())
st.plotly_chart(fig, width="stretch", config={"displaylogo": False})


def close_dialog() -> None:
    st.session_state.pop("flag_for", None)
    st.session_state.pop("patient_ack_for", None)


@st.dialog("Flag patient", on_dismiss=close_dialog)
def flag_dialog(pid: str) -> None:
    st.markdown(f"Flag **{md(pid)}** for attention.")
    severity = st.segmented_control(
        "Severity", ["critical", "high", "medium"], default="high", key="flag_severity"
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
    st.success(md(done), icon=":material/check_circle:")
if auth.allowed("flag") and st.button("Flag", icon=":material/flag:", key="flag_open"):
    st.session_state.pop("patient_ack_for", None)
    st.session_state["flag_for"] = patient_id

st.subheader("Alerts")
if alerts.is_empty():
    components.empty_state("No alerts for this patient.")
else:
    st.dataframe(
        alerts.sort("triggered_on", descending=True).select(
            pl.col("severity").alias("Severity"),
            pl.col("triggered_on").cast(pl.String).alias("Triggered on"),
            pl.col("day").alias("Day"),
            pl.col("rule").replace_strict(titles, default=pl.col("rule")).alias("Alert"),
            pl.col("message").alias("Message"),
            pl.col("status").alias("Status"),
            pl.col("acknowledged_by").fill_null("").alias("Acknowledged by"),
            pl.col("acknowledged_at")
            .map_elements(local_time_text, return_dtype=pl.String)
            .fill_null("")
            .alias("When"),
            pl.col("ack_note").fill_null("").alias("Note"),
        ),
        hide_index=True,
        width="stretch",
    )
    open_alerts = alerts.filter(pl.col("status") == "open").sort("triggered_on", descending=True)
    if auth.allowed("acknowledge") and open_alerts.height:
        labels = {
            a: f"{titles.get(r, r)} · {t} · {s}"
            for a, r, t, s in open_alerts.select(
                "alert_id", "rule", "triggered_on", "severity"
            ).iter_rows()
        }
        row = st.container(horizontal=True, vertical_alignment="bottom")
        pick = row.selectbox(
            "Open alert", list(labels), format_func=labels.__getitem__, key="patient_alert_pick"
        )
        if row.button("Acknowledge", icon=":material/task_alt:", key="patient_ack_open"):
            st.session_state.pop("flag_for", None)
            st.session_state["patient_ack_for"] = pick
if auth.allowed("flag") and st.session_state.get("flag_for") == patient_id:
    flag_dialog(patient_id)
elif auth.allowed("acknowledge") and st.session_state.get("patient_ack_for"):
    show_acknowledge_dialog(ACK_KEYS, queue, st.session_state["patient_ack_for"], as_of)

st.subheader("Visits")
if visits.is_empty():
    components.empty_state("No visits recorded for this patient yet.")
else:
    shown = visits.drop("infusion_date", "patient_id").sort("visit_date", descending=True)
    # labelled columns, values with their units, an empty cell blank (not "None")
    st.dataframe(
        pl.DataFrame(
            {field_label(c): [field_text(c, v) for v in shown[c].to_list()] for c in shown.columns},
            schema={field_label(c): pl.String for c in shown.columns},
        ),
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
