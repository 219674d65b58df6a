"""Worklist: the follow-up coordinator's morning list of assessments due (CONTRACT §4.1)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import auth, components, data, day_data, filters
from dashboard.text import md

auth.require("view")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
stamp = components.Stamp(version, as_of, chosen.describe())
ITEM_NAMES = {
    "mrd_due": "Marrow MRD due (window open)",
    "mrd_upcoming": "Marrow MRD window opening",
    "contact_due": "Follow-up contact due",
}
st.title("Worklist")
latest = day_data.latest_visit_date(version)
st.caption(
    f"Assessments due as of {md(as_of.isoformat())} (latest visit in the store "
    f"{md(latest.isoformat() if latest else 'none yet')}), by due date. MRD windows are days "
    "21–35, 76–104, 152–213, 244–305 and 335–395 after infusion; contact is due from 365 days "
    "after the last contact and overdue after 425."
)
within = st.number_input(
    "Also list MRD windows opening within (days)", min_value=0, max_value=120, value=14, step=1
)
table = day_data.worklist(version, as_of, int(within))
patients_in_filter = data.cohort_patients(version, chosen)["patient_id"]
table = table.filter(pl.col("patient_id").is_in(patients_in_filter.implode()))
if table.is_empty():
    components.empty_state("Nothing due for these filters as of the evaluation date.")
    components.show_stamp(stamp)
    st.stop()
this_week = table.filter(pl.col("days_left") <= 7).height
st.caption(
    f"{md(table.height)} item(s) for {md(table['patient_id'].n_unique())} patient(s); "
    f"{md(this_week)} due within 7 days."
)
st.dataframe(
    table.select(
        pl.concat_str(pl.lit("/patient?patient="), pl.col("patient_id")).alias("Patient"),
        pl.col("item").replace_strict(ITEM_NAMES, default=pl.col("item")).alias("What"),
        pl.col("window").alias("Window (days)"),
        pl.col("opens_on").cast(pl.String).alias("Opens on"),
        pl.col("due_by").cast(pl.String).alias("Due by"),
        pl.col("days_left").alias("Days left"),
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "Patient": st.column_config.LinkColumn(
            "Patient", display_text=r"/patient\?patient=(.*)", help="Opens the patient page"
        )
    },
)
components.csv_download(
    "Worklist (CSV)", table, f"worklist_{stamp.slug()}.csv", stamp, key="dl-worklist"
)
components.show_stamp(stamp)
