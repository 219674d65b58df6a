"""Audit (admin): who saw, downloaded or changed what, filtered by user, patient and date."""

from datetime import date, timedelta

import streamlit as st

from dashboard import auth, components, data
from dashboard.text import md
from monitoring.audit import AuditQuery, read_log, readable_log

auth.require("accounts")
store = data.get_store()
st.title("Audit log")
st.caption(
    "Sign-ins, refusals, patient record views, downloads and exports, uploads (rejected ones "
    "too), acknowledgements, flags and account changes, each with the client address."
)
grid = st.grid(4, min_column_width=180)
cells = [grid.cell() for _ in range(4)]
user = cells[0].text_input("User", key="audit_user", placeholder="Any user")
patient = cells[1].text_input("Patient", key="audit_patient", placeholder="Any patient")
today = date.today()
since = cells[2].date_input(
    "From (UTC)", value=today - timedelta(days=30), key="audit_since", format="YYYY-MM-DD"
)
until = cells[3].date_input("To (UTC)", value=today, key="audit_until", format="YYYY-MM-DD")
query = AuditQuery(
    user=user.strip() or None,
    patient=patient.strip() or None,
    since=since if isinstance(since, date) else None,
    until=until if isinstance(until, date) else None,
)
log = read_log(store, query)
if log.is_empty():
    components.empty_state("No audit entries for these filters.")
    st.stop()
st.caption(f"{md(log.height)} entr{'y' if log.height == 1 else 'ies'}, newest first.")
st.dataframe(
    readable_log(log),
    hide_index=True,
    width="stretch",
    height=min(600, 38 + 35 * log.height),  # no empty rows under a short log
    column_config={"Details": st.column_config.TextColumn(width="large")},
)
described = ", ".join(
    f"{name} {value}"
    for name, value in (
        ("user", query.user),
        ("patient", query.patient),
        ("from", query.since),
        ("to", query.until),
    )
    if value
)
stamp = components.Stamp(data.version(), today, f"audit log: {described or 'everything'}")
components.csv_download("Audit log (CSV)", log, f"audit_{today.isoformat()}.csv", stamp, "dl-audit")
