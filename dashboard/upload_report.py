"""The upload report on screen: a grouped summary that wraps (every problem fully readable),
every row in a sortable grid as tall as it needs, and CSV / XLSX downloads."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import components
from dashboard.text import md, md_cells
from monitoring.ingest.report import group_report, report_csv, report_xlsx, severity_first

_ROW_PX = 35
_MAX_GRID_PX = 700


def show_report(report: pl.DataFrame, stamp: components.Stamp) -> None:
    errors = report.filter(pl.col("severity") == "error").height
    warnings = report.filter(pl.col("severity") == "warning").height
    st.markdown(f"**Validation report**: {md(errors)} error(s), {md(warnings)} warning(s)")
    if not report.height:
        st.caption("No problems found.")
        return
    grouped = group_report(report)
    st.caption("Summary: one line per kind of problem, with how many rows and the first of them.")
    # a static table wraps long text: every problem is readable without widening a column
    st.table(
        md_cells(grouped).select(
            pl.col("severity").alias("Severity"),
            pl.col("problem").alias("Problem"),
            pl.col("column").alias("Column"),
            pl.col("count").alias("Rows"),
            pl.col("rows").alias("First rows (patient)"),
            pl.col("files").alias("File"),
        )
    )
    shown = severity_first(report)
    with st.expander(
        f"All {md(report.height)} report rows (sortable)", expanded=report.height <= 30
    ):
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            height=min(_MAX_GRID_PX, _ROW_PX * (shown.height + 1) + 3),
            column_config={
                "severity": st.column_config.TextColumn("severity", width="small"),
                "problem": st.column_config.TextColumn("problem", width="large"),
            },
        )
    name = f"upload_report_{stamp.slug()}"
    downloads = st.container(horizontal=True)
    downloads.download_button(
        "Validation report (CSV)",
        report_csv(report),  # a plain table; the stamp is in the file name
        file_name=f"{name}.csv",
        mime="text/csv",
        key="dl-report",
        icon=":material/download:",
    )
    downloads.download_button(
        "Validation report (XLSX)",
        report_xlsx(report),
        file_name=f"{name}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="dl-report-xlsx",
        icon=":material/download:",
    )
