"""Data: upload → validation report → preview of new / changed / unchanged → confirm; upload
history; missed assessments by window."""

import polars as pl
import streamlit as st

from dashboard import audit, auth, components, data, filters, profile_editor, upload_report
from dashboard.text import md
from monitoring.cohort_views import missed_by_window
from monitoring.config import get_config
from monitoring.errors import LtfuError
from monitoring.ingest.preview import UploadPreview

auth.require("upload")
st.title("Data")
chosen, as_of, version = filters.current(), filters.as_of(), data.version()
stamp = components.Stamp(version, as_of, chosen.describe())
done = st.session_state.pop("upload_done", None)
if done:
    st.success(md(done), icon=":material/check_circle:")

st.subheader("Upload")
profiles = {p.name: p for p in data.saved_profiles(version)}
CANONICAL = "None: the canonical tables (CONTRACT §1)"
choice = st.selectbox(
    "Mapping profile",
    [CANONICAL, *profiles],
    key="upload_profile",
    help="How a site's export becomes the canonical tables (docs/profiles.md).",
)
profile = profiles.get(choice)
if profile is not None:
    st.caption(
        f"Profile '{md(profile.name)}' version {md(profile.version)}, saved by {md(profile.saved_by)}."
    )
nonce = st.session_state.setdefault("upload_nonce", 0)
uploaded = st.file_uploader(
    "Exports to upload (CSV, XLSX or Parquet; several at once): checked at once, written on Confirm",
    type=["csv", "txt", "tsv", "xlsx", "parquet"],
    accept_multiple_files=True,
    key=f"uploader_{nonce}",
)
date_format = "ISO"
if profile is None:
    date_format = (
        st.segmented_control(
            "Dates in the files", ["ISO", "DMY", "MDY"], default="ISO", key="upload_dates"
        )
        or "ISO"
    )
files = tuple((f.name, f.getvalue()) for f in uploaded or [])
profile_text = profile.text if profile is not None else ""

if files:
    # dropping files is the dry run: nothing is written until Confirm
    check: UploadPreview | None
    try:
        check = data.dry_run(version, files, date_format, profile_text)
    except LtfuError as exc:
        components.show_error(exc)
        check = None
    if check is not None:
        report = check.report
        if check.rejected:
            if st.session_state.get("upload_rejected_audited") != check.message:
                audit.upload_rejected(
                    [(name, len(content)) for name, content in files],
                    report.filter(pl.col("severity") == "error").height,
                    report.filter(pl.col("severity") == "warning").height,
                    report.height,
                )
                st.session_state["upload_rejected_audited"] = check.message
            st.error(md(check.message), icon=":material/block:")
        upload_report.show_report(report, stamp)
        if not check.rejected:
            st.markdown("**Preview**: nothing is written until you confirm.")
            for table in check.tables:
                st.markdown(
                    f"`{md(table.kind)}`: {md(table.new)} new, {md(table.changed)} changed, "
                    f"{md(table.unchanged)} unchanged"
                )
                new_tab, changed_tab = st.tabs(
                    [
                        f"New {md(table.kind)} ({md(table.new)})",
                        f"Changed {md(table.kind)} ({md(table.changed)})",
                    ]
                )
                with new_tab:
                    st.dataframe(
                        components.for_display(table.new_rows),
                        hide_index=True,
                        width="stretch",
                        height=220,
                    )
                with changed_tab:
                    cells = table.changed_cells.rename({"old_value": "old", "new_value": "new"})
                    st.dataframe(
                        components.for_display(cells).with_columns(
                            (
                                pl.col("old").fill_null("(empty)")
                                + " → "
                                + pl.col("new").fill_null("(empty)")
                            ).alias("old → new")
                        ),
                        hide_index=True,
                        width="stretch",
                        height=220,
                    )
        actions = st.container(horizontal=True)
        if not check.rejected and actions.button(
            "Confirm upload", type="primary", icon=":material/done_all:"
        ):
            account = auth.require("upload")
            sentence = data.commit_upload(files, date_format, account.user_name, profile_text)
            st.session_state["upload_done"] = f"Committed. Stored {sentence}."
            st.session_state["upload_nonce"] = nonce + 1
            st.rerun()
        if actions.button("Clear files", icon=":material/clear_all:"):
            st.session_state["upload_nonce"] = nonce + 1
            st.rerun()

profile_editor.show(profiles, choice if profile is not None else None)

st.subheader("Upload history")
history = data.uploads(version)
if history.is_empty():
    components.empty_state("No uploads yet.")
else:
    st.dataframe(
        history.select(
            pl.col("uploaded_at").alias("When (UTC)"),
            pl.col("user_name").alias("Who"),
            pl.col("file_name").alias("File"),
            pl.col("kind").alias("Table"),
            pl.col("rows").alias("Rows"),
            pl.col("n_new").alias("New"),
            pl.col("n_changed").alias("Changed"),
            pl.col("n_unchanged").alias("Unchanged"),
        ),
        hide_index=True,
        width="stretch",
    )

st.subheader("Data quality: missed MRD assessments by window")
queue = data.filtered_alerts(as_of, "all", chosen)
config = get_config()
st.dataframe(
    missed_by_window(queue, config.mrd_assessment_windows), hide_index=True, width="stretch"
)
overdue = queue.filter(pl.col("rule") == "followup_overdue").height
st.caption(
    f"Follow-up overdue (> {md(config.followup_overdue_days)} days since last contact, alive): "
    f"{md(overdue)} patient(s)."
)
components.show_stamp(stamp)
