"""The cohort report (issue 15, item 6): what a centre hands to its tumour board or puts in its
yearly long-term follow-up report, as of a date, in one self-contained file.

    store ─report_from_store─▶ content.build_report ─▶ CohortReport (typed, from the core)
          ─▶ page.render_html (inline SVG from svg.py, escaped text, no script) ─▶ HTML
          ─▶ [pdf.html_to_pdf: headless Chromium --print-to-pdf] ─▶ PDF
          ─▶ write_private: the file 0600

`ltfu report --out FILE.html|FILE.pdf [--pdf]` and the dashboard's "Cohort report" button
both call `build_report` and `render_html`, so they give the same bytes for the same data,
date and filters.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from monitoring.cohort_report.content import CohortReport, build_report
from monitoring.cohort_report.page import render_html
from monitoring.config import Config
from monitoring.stamp import ALL_PATIENTS
from monitoring.store import Store

FILE_MODE = 0o600


def report_from_store(
    store: Store, as_of: date | None = None, config: Config | None = None
) -> CohortReport:
    """The report of every patient of the store as of `as_of` (default the store's today)."""
    from monitoring.alert_queue import alerts_with_status

    day = as_of or store.today()
    version, patients, visits = store.snapshot()
    queue = alerts_with_status(store, day, "all", config)
    return build_report(patients, visits, queue, day, version, ALL_PATIENTS, config)


def write_private(path: Path, data: bytes) -> None:
    """`data` into `path`, readable by its owner only (0600, also when the file existed)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


__all__ = ["CohortReport", "build_report", "render_html", "report_from_store", "write_private"]
