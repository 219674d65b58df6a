"""The dashboard entry point: page config, sign-in, sidebar, navigation. Nothing else.

Run with `ltfu serve` (or `streamlit run dashboard/app.py` with LTFU_DATABASE_URL set).
"""

from __future__ import annotations

# Imported whole before any page runs: plotly looks pandas up in sys.modules without importing
# it, and two overlapping script runs could otherwise see a half-imported module.
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st

from dashboard import audit, auth, components, data, filters, icon, warmup
from dashboard.page_registry import DEFAULT_PAGE, PAGE_BY_PATH, PAGES
from monitoring.errors import LtfuError

# the browser's address for audit entries and the sign-in throttle
audit.register_client_source()

st.set_page_config(
    page_title="LTFU monitor",
    page_icon=icon.page_icon(),  # served locally, not from a font CDN
    layout="wide",
    initial_sidebar_state="expanded",
)

# views/, not pages/: a pages/ folder beside app.py switches Streamlit to v1 multipage mode,
# which runs a page script without app.py (and its sign-in) on a fresh server's first request


def _pages(admin: bool) -> list[st.Page]:
    """The pages of `page_registry`; pages outside the contract are listed for admins only."""
    pages = [
        st.Page(
            page.path,
            title=page.title,
            url_path=page.url_path,
            icon=page.icon,
            visibility="visible" if page.in_contract or admin else "hidden",
        )
        for page in PAGES
    ]
    # the app root shows the default page too; the sidebar's entry keeps its path (CONTRACT §6)
    default = PAGE_BY_PATH[DEFAULT_PAGE]
    pages.append(
        st.Page(
            default.path, title=default.title, url_path="home", default=True, visibility="hidden"
        )
    )
    return pages


store = data.get_store()
account = auth.current_account(store)
if account is None:
    st.navigation(_pages(False), position="hidden")
    auth.sign_in_form(store)
    st.stop()

warmup.remember_scope(account.sites)  # its first page after the next commit is precomputed
page = st.navigation(_pages(auth.allowed("accounts")))
auth.cookie_script()
auth.sidebar_identity(store, account)
filters.sidebar(data.filter_options(data.version()))
try:
    page.run()
except LtfuError as exc:
    components.show_error(exc)
