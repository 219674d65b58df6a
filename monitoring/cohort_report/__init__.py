"""The cohort report (issue 15, item 6): what a centre hands to its tumour board or puts in its
yearly long-term follow-up report, as of a date, in one self-contained file.

    store ─report_from_store─▶ content.build_report ─▶ CohortReport (typed, from the core)
          ─▶ page.render_html (inline SVG from svg.py, escaped text, no script) ─▶ HTML
          ─▶ [pdf.html_to_pdf: headless Chromium --print-to-pdf] ─▶ PDF
          ─▶ store.private_files.write_private_bytes: the file 0600

`ltfu report --out FILE.html|FILE.pdf [--pdf]` and the dashboard's "Cohort report" button
both call `build_report` and `render_html`, so they give the same bytes for the same data,
date and filters.
"""

from __future__ import annotations

from datetime import date

from monitoring.cohort_report.content import CohortReport, build_report
from monitoring.cohort_report.page import render_html
from monitoring.config import Config
from monitoring.stamp import ALL_PATIENTS
from monitoring.store import Store


def report_from_store(
    store: Store, as_of: date | None = None, config: Config | None = None
) -> CohortReport:
    """The report of every patient of the store as of `as_of` (default the store's today)."""
    from monitoring.alert_queue import alerts_with_status

    day = as_of or store.today()
    version, patients, visits = store.snapshot()
    queue = alerts_with_status(store, day, "all", config)
    return build_report(patients, visits, queue, day, version, ALL_PATIENTS, config)


__all__ = ["CohortReport", "build_report", "render_html", "report_from_store"]
