"""The dashboard entry point: page config, sign-in, sidebar, navigation. Nothing else.

Run with `ltfu serve` (or `streamlit run dashboard/app.py` with LTFU_DATABASE_URL set).
"""

from __future__ import annotations

from pathlib import Path

# Imported whole before any page runs: plotly looks pandas up in sys.modules without importing
# it, and two overlapping script runs could otherwise see a half-imported module.
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st

from dashboard import auth, components, data, filters, icon
from monitoring.errors import LtfuError

st.set_page_config(
    page_title="LTFU monitor",
    page_icon=icon.page_icon(),  # served locally, not from a font CDN
    layout="wide",
    initial_sidebar_state="expanded",
)

# views/, not pages/: a pages/ folder beside app.py switches Streamlit to v1 multipage mode,
# which runs a page script without app.py (and its sign-in) on a fresh server's first request
_PAGES = Path(__file__).parent / "views"
_overview = _PAGES / "overview.py"


def _pages(admin: bool) -> list[st.Page]:
    """The contract's five pages; Accounts is listed for admins (and refused to others)."""
    return [
        st.Page(_overview, title="Overview", url_path="overview", icon=":material/dashboard:"),
        st.Page(
            _PAGES / "durability.py",
            title="Durability",
            url_path="durability",
            icon=":material/show_chart:",
        ),
        st.Page(
            _PAGES / "alerts.py", title="Alerts", url_path="alerts", icon=":material/notifications:"
        ),
        st.Page(
            _PAGES / "patient.py", title="Patient", url_path="patient", icon=":material/person:"
        ),
        st.Page(_PAGES / "data.py", title="Data", url_path="data", icon=":material/upload_file:"),
        # the app root shows the overview too; the sidebar's Overview is /overview (CONTRACT §6)
        st.Page(_overview, title="Overview", url_path="home", default=True, visibility="hidden"),
        st.Page(
            _PAGES / "accounts.py",
            title="Accounts",
            url_path="accounts",
            icon=":material/manage_accounts:",
            visibility="visible" if admin else "hidden",
        ),
        st.Page(
            _PAGES / "audit.py",
            title="Audit",
            url_path="audit",
            icon=":material/policy:",
            visibility="visible" if admin else "hidden",
        ),
    ]


store = data.get_store()
account = auth.current_account(store)
if account is None:
    st.navigation(_pages(False), position="hidden")
    auth.sign_in_form(store)
    st.stop()

page = st.navigation(_pages(auth.allowed("accounts")))
auth.cookie_script()
auth.sidebar_identity(store, account)
patients, _visits = data.snapshot(data.version())
filters.sidebar(patients)
try:
    page.run()
except LtfuError as exc:
    components.show_error(exc)
