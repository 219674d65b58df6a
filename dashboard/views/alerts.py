"""Alerts: the queue as a physician opens it (most severe, then newest first; "new" since the
last visit), one alert's card, acknowledge one or all shown, history and rule performance.

The alert acted on is always named by its id: the table's selection is read back through the
ids of the very frame it was drawn from, the table is re-keyed whenever those rows change (so a
stale tick can never point at another row), and each dialog shows the patient, rule and date
of what it will acknowledge."""

from __future__ import annotations

import hashlib
from datetime import date

import polars as pl
import streamlit as st

from dashboard import auth, components, data, day_data, filters
from dashboard.ack_dialog import AckDialogKeys, rule_title, show_acknowledge_dialog
from dashboard.text import md
from monitoring.alerts import RULES_BY_ID, SEVERITIES
from monitoring.cohort_views import severity_counts
from monitoring.display_time import centre_zone, local_time_text
from monitoring.errors import LtfuError
from monitoring.evidence_text import evidence_items
from monitoring.first_seen import first_seen_since, mark_new

auth.require("view")
account = auth.account()
assert account is not None
BADGES = {"critical": "red", "high": "orange", "medium": "blue", "data": "gray"}
PICKER_ROWS = 500
ANY_TIME, LAST_VISIT, A_DATE = "any time", "your last visit", "a date…"
ACK_KEYS = AckDialogKeys(
    open_keys=("ack_for", "bulk_ids"), note_key="ack_note", done_key="ack_done"
)

st.title("Alert queue")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
stamp = components.Stamp(version, as_of, chosen.describe())
rules = RULES_BY_ID
may_ack = auth.allowed("acknowledge")
baseline = day_data.first_seen_baseline(account.user_name)
latest_visit = day_data.latest_visit_date(version)


title_of = rule_title


st.caption(
    f"Evaluated as of {md(as_of.isoformat())} · latest visit in the store "
    f"{md(latest_visit.isoformat() if latest_visit else 'none yet')} · "
    + (
        f"“new” = first seen since you last opened this page ({md(local_time_text(baseline))})"
        if baseline
        else "your first visit: from now on, alerts that arrive later are marked “new”"
    )
)
for key in ("ack_done", "bulk_done"):
    done = st.session_state.pop(key, None)
    if done:
        st.success(md(done), icon=":material/check_circle:")

grid = st.grid(3, min_column_width=180)
cells = [grid.cell() for _ in range(6)]
status = cells[0].selectbox("Status", ["open", "acknowledged", "all"], key="alert_status")
everything = day_data.queue(version, as_of, "all")
patients_in_filter = data.cohort_patients(version, chosen)["patient_id"]
queue = everything.filter(pl.col("patient_id").is_in(patients_in_filter.implode()))
if status != "all":
    queue = queue.filter(pl.col("status") == status)
severities = cells[1].multiselect(
    "Severity", list(SEVERITIES), key="alert_sev", placeholder="All severities"
)
rule_ids = sorted(queue["rule"].unique().to_list())
picked_rules = cells[2].multiselect(
    "Rule", rule_ids, key="alert_rule", placeholder="All rules", format_func=title_of
)
patient_text = cells[3].text_input("Patient", key="alert_patient", placeholder="ID contains…")
before = cells[4].date_input(
    "Triggered before", value=None, key="alert_before", format="YYYY-MM-DD"
)
uploads = data.uploads(version).head(20)
upload_labels = (
    {
        f"upload {r['upload_id']} · {r['file_name']} · {local_time_text(r['uploaded_at'])}": r
        for r in uploads.iter_rows(named=True)
    }
    if not uploads.is_empty()
    else {}
)
since_options = [ANY_TIME] + ([LAST_VISIT] if baseline else []) + list(upload_labels) + [A_DATE]
since_choice = cells[5].selectbox("First seen since", since_options, key="alert_since")
if severities:
    queue = queue.filter(pl.col("severity").is_in(severities))
if picked_rules:
    queue = queue.filter(pl.col("rule").is_in(picked_rules))
if patient_text.strip():
    queue = queue.filter(pl.col("patient_id").str.contains(patient_text.strip(), literal=True))
if isinstance(before, date):
    queue = queue.filter(pl.col("triggered_on") < before)
if since_choice == LAST_VISIT and baseline:
    queue = first_seen_since(queue, since=baseline)
elif since_choice in upload_labels:
    chosen_upload = upload_labels[since_choice]
    queue = first_seen_since(
        queue, upload_id=chosen_upload["upload_id"], since=chosen_upload["uploaded_at"]
    )
elif since_choice == A_DATE:
    since_day = st.date_input("First seen on or after", value=as_of, key="alert_since_day")
    if isinstance(since_day, date):
        queue = first_seen_since(queue, since=since_day.isoformat())
queue = mark_new(queue, baseline)


def close_dialogs() -> None:
    for key in ("ack_for", "bulk_ids"):
        st.session_state.pop(key, None)


@st.dialog("Acknowledge alerts shown", on_dismiss=close_dialogs)
def bulk_dialog(alert_ids: tuple[str, ...]) -> None:
    from monitoring.bulk_ack import acknowledge_frame

    n = len(alert_ids)
    st.markdown(f"Acknowledge **{md(n)}** open alert(s) shown, each with the same note.")
    st.caption("Each alert gets its own acknowledgement record and audit entry.")
    note = st.text_area("Note", placeholder="For example: reviewed before go-live", key="bulk_note")
    if st.button(f"Confirm: acknowledge {md(n)}", type="primary"):
        try:
            user = auth.require("acknowledge")
            rows = everything.filter(
                pl.col("alert_id").is_in(list(alert_ids)) & (pl.col("status") == "open")
            )
            result = acknowledge_frame(data.get_store(), rows, user.user_name, note)
        except LtfuError as exc:
            components.show_error(exc)
            return
        close_dialogs()
        st.session_state["bulk_done"] = f"Acknowledged {result.count} alert(s) with one note."
        st.rerun()


if queue.is_empty():
    components.empty_state(
        f"No {status if status != 'all' else ''} alerts for these filters. "
        "Alerts are recomputed from the data as of the evaluation date."
    )
else:
    counts = severity_counts(queue)
    n_new = int(queue["new"].sum())
    st.caption(
        f"{md(queue.height)} alert(s) for {md(queue['patient_id'].n_unique())} patient(s): "
        + " · ".join(f"{md(k)} {md(v)}" for k, v in counts.items())
        + f" · {md(n_new)} new"
    )
    shown = queue.select(
        pl.when(pl.col("new")).then(pl.lit("● new")).otherwise(pl.lit("")).alias("New"),
        pl.col("severity").alias("Severity"),
        pl.col("patient_id").alias("Patient"),
        pl.col("rule")
        .replace_strict({k: r.title for k, r in rules.items()}, default=pl.col("rule"))
        .alias("Alert"),
        pl.col("triggered_on").cast(pl.String).alias("Triggered on"),
        pl.col("first_seen_at")
        .map_elements(local_time_text, return_dtype=pl.String)
        .alias("First seen"),
        pl.col("message").alias("Message"),
        pl.col("status").alias("Status"),
        pl.col("alert_id").alias("Alert id"),
    )
    ids = queue["alert_id"].to_list()
    # re-keyed when the rows change or the picker is used: a tick never outlives its rows
    digest = hashlib.sha1("|".join(ids).encode()).hexdigest()[:12]
    nonce = st.session_state.get("alert_table_nonce", 0)
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=360,
        on_select="rerun",
        selection_mode="single-row",
        key=f"alert_table_{digest}_{nonce}",
    )
    selected = event.selection.rows if hasattr(event, "selection") else []
    if selected and selected[0] < len(ids):
        st.session_state["alert_pick"] = ids[selected[0]]
    listed = queue.head(PICKER_ROWS)
    if st.session_state.get("alert_pick") in ids and st.session_state["alert_pick"] not in set(
        listed["alert_id"].to_list()
    ):
        listed = pl.concat(
            [listed, queue.filter(pl.col("alert_id") == st.session_state["alert_pick"])]
        )
    picker_ids = listed["alert_id"].to_list()
    labels = {
        a: f"{p} · {title_of(r)} · {d}"
        for a, p, r, d in listed.select(
            "alert_id", "patient_id", "rule", "triggered_on"
        ).iter_rows()
    }
    if st.session_state.get("alert_pick") not in labels:
        st.session_state["alert_pick"] = picker_ids[0]

    def picked_in_picker() -> None:
        st.session_state["alert_table_nonce"] = nonce + 1

    pick = st.selectbox(
        "Alert",
        picker_ids,
        format_func=labels.__getitem__,
        key="alert_pick",
        on_change=picked_in_picker,
    )
    alert = queue.filter(pl.col("alert_id") == pick).row(0, named=True)
    rule = rules.get(alert["rule"])

    with st.container(border=True):
        badge = BADGES.get(alert["severity"], "gray")
        st.markdown(f"### {md(alert['patient_id'])} · {md(title_of(alert['rule']))}")
        st.markdown(
            f":{md(badge)}-badge[{md(alert['severity'])}] "
            + (":violet-badge[new] " if alert["new"] else "")
            + f"&nbsp; triggered {md(alert['triggered_on'])} (day {md(alert['day'])}) &nbsp; first seen "
            f"{md(local_time_text(alert['first_seen_at']))} &nbsp; status **{md(alert['status'])}**"
        )
        if alert["acknowledged_by"]:
            st.markdown(
                f"Acknowledged by {md(alert['acknowledged_by'])} "
                f"({md(local_time_text(alert['acknowledged_at']))}): "
                f"“{md(alert['ack_note'])}”"
            )
        st.markdown(f"**Message.** {md(alert['message'])}")
        items = evidence_items(alert["evidence"])
        if items:
            st.markdown("**Evidence**")
            st.dataframe(
                pl.DataFrame(items, schema=["What", "Value"], orient="row"),
                hide_index=True,
                width="stretch",
            )
        if rule:
            st.markdown(f"**Why it matters.** {md(rule.rationale)}")
            st.markdown(f"**Rule.** fires on {md(rule.trigger)}.")
            st.caption(f"Source: {md(rule.evidence_source)}")
        buttons = st.container(horizontal=True)
        if may_ack and buttons.button(
            "Acknowledge", type="primary", key="ack_open", icon=":material/task_alt:"
        ):
            st.session_state.pop("bulk_ids", None)
            st.session_state["ack_for"] = alert["alert_id"]
        buttons.link_button(
            "Open patient", f"/patient?patient={alert['patient_id']}", icon=":material/person:"
        )
    open_shown = queue.filter(pl.col("status") == "open")
    if (
        may_ack
        and open_shown.height
        and st.button(
            f"Acknowledge {md(open_shown.height)} shown",
            key="bulk_open",
            icon=":material/done_all:",
            help="Every open alert the filters above show, with one note (each its own record).",
        )
    ):
        st.session_state.pop("ack_for", None)
        st.session_state["bulk_ids"] = tuple(open_shown["alert_id"].to_list())
    if may_ack and st.session_state.get("ack_for"):
        show_acknowledge_dialog(ACK_KEYS, everything, st.session_state["ack_for"], as_of)
    elif may_ack and st.session_state.get("bulk_ids"):
        bulk_dialog(st.session_state["bulk_ids"])
    components.csv_download(
        "Queue (CSV)", queue, f"alerts_{status}_{stamp.slug()}.csv", stamp, key="dl-alerts"
    )

st.subheader("How the rules perform")
st.caption(
    "Per rule, on this store's data as of the evaluation date: alerts per patient-year of "
    "follow-up; PPV = the share of its alerts (before any relapse) followed by relapse within "
    "180 days; sensitivity = the share of relapses it warned of 1–365 days ahead; lead = the "
    "median days of that warning. A low PPV with a high rate is noise; a rule that never warns "
    "ahead of relapse only confirms it. The demo's numbers come from synthetic data."
)
performance = day_data.performance(version, as_of)
st.dataframe(
    performance.select(
        pl.col("rule")
        .replace_strict({k: r.title for k, r in rules.items()}, default=pl.col("rule"))
        .alias("Rule"),
        pl.col("alerts").alias("Alerts"),
        pl.col("patients").alias("Patients"),
        pl.col("per_patient_year").round(3).alias("Per patient-year"),
        (pl.col("ppv_180d") * 100).round(0).alias("PPV 180 d (%)"),
        (pl.col("sensitivity_365d") * 100).round(0).alias("Sensitivity 365 d (%)"),
        pl.col("median_lead_days").round(0).alias("Median lead (days)"),
    ).with_columns(  # nothing qualified: a blank cell, not "None"
        pl.col(pl.Float64).cast(pl.String).str.replace(r"\.0$", "").fill_null("")
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Acknowledgement history")
history = data.acknowledgements(version)
if history is None or history.is_empty():
    components.empty_state("Nothing acknowledged yet.")
else:
    zone = centre_zone().key
    named = history.join(
        everything.select("alert_id", "patient_id", "rule", "triggered_on"),
        on="alert_id",
        how="left",
    )
    st.dataframe(
        named.sort("ack_id", descending=True).select(
            pl.col("at")
            .map_elements(local_time_text, return_dtype=pl.String)
            .alias(f"When ({zone})"),
            pl.col("user_name").alias("Who"),
            pl.col("patient_id").alias("Patient"),
            pl.col("rule")
            .replace_strict({k: r.title for k, r in rules.items()}, default=pl.col("rule"))
            .alias("Alert"),
            pl.col("triggered_on").cast(pl.String).alias("Triggered on"),
            pl.col("note").alias("Note"),
        ),
        hide_index=True,
        width="stretch",
    )
components.show_stamp(stamp)
