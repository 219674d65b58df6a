"""Alerts: the queue (severity, then date, grouped by patient), one alert's detail, acknowledge."""

import json
from typing import Any

import polars as pl
import streamlit as st

from dashboard import auth, components, data, filters
from dashboard.text import md
from monitoring.accounts import refusal
from monitoring.alert_queue import acknowledge
from monitoring.alerts import RULES_BY_ID, SEVERITIES
from monitoring.cohort_views import queue_by_patient, severity_counts
from monitoring.errors import LtfuError

auth.require("view")
BADGES = {"critical": "red", "high": "orange", "medium": "blue", "data": "gray"}
PICKER_ROWS = 500
st.title("Alert queue")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
stamp = components.Stamp(version, as_of, chosen.describe())
rules = RULES_BY_ID
done = st.session_state.pop("ack_done", None)
if done:
    st.success(md(done), icon=":material/check_circle:")

grid = st.grid(4, min_column_width=180)
top = [grid.cell() for _ in range(4)]
status = top[0].selectbox("Status", ["open", "acknowledged", "all"], key="alert_status")
queue = data.filtered_alerts(as_of, status, chosen)
severities = top[1].multiselect(
    "Severity", list(SEVERITIES), key="alert_sev", placeholder="All severities"
)
rule_ids = sorted(queue["rule"].unique().to_list())
picked_rules = top[2].multiselect(
    "Rule",
    rule_ids,
    key="alert_rule",
    placeholder="All rules",
    format_func=lambda r: rules[r].title if r in rules else r,
)
patient_text = top[3].text_input("Patient", key="alert_patient", placeholder="ID contains…")
if severities:
    queue = queue.filter(pl.col("severity").is_in(severities))
if picked_rules:
    queue = queue.filter(pl.col("rule").is_in(picked_rules))
if patient_text.strip():
    queue = queue.filter(pl.col("patient_id").str.contains(patient_text.strip(), literal=True))

if queue.is_empty():
    components.empty_state(
        f"No {status if status != 'all' else ''} alerts for these filters. "
        "Alerts are recomputed from the data as of the evaluation date."
    )
else:
    queue = queue_by_patient(queue)
    counts = severity_counts(queue)
    st.caption(
        f"{md(queue.height)} alert(s) for {md(queue['patient_id'].n_unique())} patient(s): "
        + " · ".join(f"{md(k)} {md(v)}" for k, v in counts.items())
    )
    shown = queue.select(
        pl.col("patient_id").alias("Patient"),
        pl.col("severity").alias("Severity"),
        pl.col("triggered_on").cast(pl.String).alias("Triggered on"),
        pl.col("day").alias("Day"),
        pl.col("rule")
        .replace_strict({k: r.title for k, r in rules.items()}, default=pl.col("rule"))
        .alias("Alert"),
        pl.col("message").alias("Message"),
        pl.col("status").alias("Status"),
    )
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=360,
        on_select="rerun",
        selection_mode="single-row",
        key="alert_table",
    )
    ids = queue["alert_id"].to_list()
    selected = event.selection.rows if hasattr(event, "selection") else []
    if selected and selected[0] < len(ids):
        st.session_state["alert_pick"] = ids[selected[0]]
    # the picker lists the top of the queue (a registry-size queue is tens of thousands long);
    # a row picked in the table further down is added to it
    listed = queue.head(PICKER_ROWS)
    if st.session_state.get("alert_pick") in ids and st.session_state["alert_pick"] not in set(
        listed["alert_id"].to_list()
    ):
        listed = pl.concat(
            [listed, queue.filter(pl.col("alert_id") == st.session_state["alert_pick"])]
        )
    ids = listed["alert_id"].to_list()
    labels = {
        a: f"{p} · {rules[r].title if r in rules else r} · {d}"
        for a, p, r, d in listed.select(
            "alert_id", "patient_id", "rule", "triggered_on"
        ).iter_rows()
    }
    if st.session_state.get("alert_pick") not in labels:
        # set, not pop: a popped value leaves the browser showing the old label while the
        # card below shows the first alert of the new list
        st.session_state["alert_pick"] = ids[0]
    pick = st.selectbox("Alert", ids, format_func=lambda i: labels.get(i, i), key="alert_pick")
    alert = queue.filter(pl.col("alert_id") == pick).row(0, named=True)
    rule = rules.get(alert["rule"])

    def close_dialog() -> None:
        st.session_state.pop("ack_for", None)

    @st.dialog("Acknowledge alert", on_dismiss=close_dialog)
    def acknowledge_dialog(row: dict[str, Any]) -> None:
        st.markdown(f"**{md(row['patient_id'])}** · {md(row['message'])}")
        note = st.text_area("Note", placeholder="What was decided or done", key="ack_note")
        if st.button("Confirm acknowledgement", type="primary"):
            try:
                account = auth.require("acknowledge")
                acknowledge(data.get_store(), row["alert_id"], account.user_name, note, as_of=as_of)
            except LtfuError as exc:
                components.show_error(exc)
                return
            close_dialog()
            st.session_state["ack_done"] = f"Acknowledged: {row['patient_id']} · {row['message']}"
            st.rerun()

    with st.container(border=True):
        badge = BADGES.get(alert["severity"], "gray")
        st.markdown(f"### {md(alert['patient_id'])} · {md(rule.title if rule else alert['rule'])}")
        st.markdown(
            f":{md(badge)}-badge[{md(alert['severity'])}] &nbsp; triggered "
            f"{md(alert['triggered_on'])} (day {md(alert['day'])}) &nbsp; status "
            f"**{md(alert['status'])}**"
            + (
                f" by {md(alert['acknowledged_by'])} — “{md(alert['ack_note'])}”"
                if alert["acknowledged_by"]
                else ""
            ),
        )
        st.markdown(f"**Message.** {md(alert['message'])}")
        try:
            evidence = json.loads(alert["evidence"] or "{}")
        except ValueError:
            evidence = alert["evidence"]
        if isinstance(evidence, dict):
            st.markdown(
                "**Evidence.** "
                + "; ".join(f"{md(k)}: {md(v)}" for k, v in evidence.items() if v is not None)
            )
        else:
            st.markdown(f"**Evidence.** {md(evidence)}")
        if rule:
            st.markdown(f"**Why it matters.** {md(rule.rationale)}")
            st.markdown(f"**Rule.** fires on {md(rule.trigger)}.")
            st.caption(f"Source: {md(rule.evidence_source)}")
        buttons = st.container(horizontal=True)
        if buttons.button(
            "Acknowledge", type="primary", key="ack_open", icon=":material/task_alt:"
        ):
            if auth.allowed("acknowledge"):
                st.session_state["ack_for"] = alert["alert_id"]
            else:
                components.refuse(refusal("acknowledge"))
        if st.session_state.get("ack_for") == alert["alert_id"]:
            acknowledge_dialog(alert)
        buttons.link_button(
            "Open patient", f"/patient?patient={alert['patient_id']}", icon=":material/person:"
        )
    components.csv_download(
        "Queue (CSV)", queue, f"alerts_{status}_{stamp.slug()}.csv", stamp, key="dl-alerts"
    )

st.subheader("Acknowledgement history")
history = data.acknowledgements(version)
if history.is_empty():
    components.empty_state("Nothing acknowledged yet.")
else:
    st.dataframe(
        history.sort("ack_id", descending=True).select(
            pl.col("at").alias("When (UTC)"),
            pl.col("user_name").alias("Who"),
            pl.col("alert_id").alias("Alert"),
            pl.col("note").alias("Note"),
        ),
        hide_index=True,
        width="stretch",
    )
components.show_stamp(stamp)
