"""The one-click cohort report: the same file as `ltfu report --out FILE.html` for the same data,
date and filters (both call `monitoring.cohort_report`), built only when the button is clicked,
and audit-logged as a download with the filters."""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import audit, data
from dashboard.filters import Filters
from dashboard.site_scope import current_scope
from monitoring.store.site_scope import SiteScope


def report_filters(chosen: Filters, scope: SiteScope) -> str:
    """How the report's cohort was chosen, for its stamp: the sidebar's filters, and the
    account's sites when it may not see every site (its report holds only those)."""
    text = chosen.describe()
    return text if scope.is_every_site else f"{text}; account's sites: {scope.describe()}"


def report_button(chosen: Filters, as_of: date, version: int) -> None:
    """A "Cohort report (HTML)" download of the filtered cohort as of `as_of`."""
    from monitoring.alert_queue import alerts_with_status
    from monitoring.cohort_report import build_report, render_html

    scope = current_scope()
    filters = report_filters(chosen, scope)
    file_name = f"ltfu-report_v{version}_{as_of.isoformat()}.html"
    recorded = audit.on_download("Cohort report (HTML)", file_name, filters, None)

    def build() -> bytes:
        recorded()
        # the cohort's visits too are filtered on the click only (1.2 M visits at 100 000
        # patients, on every new filter)
        patients, visits = data.cohort_for(version, scope, chosen)
        # every alert, open or not, is evaluated on the click only: on each Overview run it
        # cost a second evaluation of the whole queue (47.9 s cold at 100 000 patients)
        queue = alerts_with_status(data.store_for(scope), as_of, "all")
        report = build_report(patients, visits, queue, as_of, version, filters)
        return render_html(report).encode("utf-8")

    st.download_button(
        "Cohort report (HTML)",
        data=build,
        file_name=file_name,
        mime="text/html",
        key="dl-cohort-report",
        icon=":material/summarize:",
        help="Overview, every endpoint's curve and table, relapse by CD19, alert burden and "
        "data completeness of the filtered cohort as of the evaluation date, each stamped with "
        "the data version and filters: one file that opens offline. Print it to PDF from the "
        "browser, or run `ltfu report --out FILE.pdf`.",
    )
