"""The dashboard's pages (CONTRACT.md §6): address, title, script, icon and the permission a
role needs to see it. `app.py` builds its navigation from `PAGES`; the page tests
(tests/test_dashboard_pages.py, tests/test_access_matrix.py, tests/e2e) read the same list.

No streamlit here: tests and tools import it without starting a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIEWS = Path(__file__).parent / "views"


@dataclass(frozen=True)
class PageSpec:
    url_path: str
    title: str
    script: str  # file name in dashboard/views/
    icon: str
    permission: str  # the `accounts.PERMISSIONS` action a role needs to see the page
    in_contract: bool = True  # one of the contract's sidebar pages (others are extra)

    @property
    def path(self) -> Path:
        return VIEWS / self.script

    @property
    def app_relative(self) -> str:
        """The script as `AppTest.switch_page` wants it: relative to dashboard/app.py."""
        return f"views/{self.script}"


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "Overview", "overview.py", ":material/dashboard:", "view"),
    PageSpec("durability", "Durability", "durability.py", ":material/show_chart:", "view"),
    PageSpec("alerts", "Alerts", "alerts.py", ":material/notifications:", "view"),
    PageSpec("worklist", "Worklist", "worklist.py", ":material/event_upcoming:", "view"),
    PageSpec("patient", "Patient", "patient.py", ":material/person:", "view"),
    PageSpec("data", "Data", "data.py", ":material/upload_file:", "upload"),
    # listed in the sidebar for admins only (refused to others)
    PageSpec(
        "accounts",
        "Accounts",
        "accounts.py",
        ":material/manage_accounts:",
        "accounts",
        in_contract=False,
    ),
    PageSpec("audit", "Audit", "audit.py", ":material/policy:", "accounts", in_contract=False),
)
PAGE_BY_PATH: dict[str, PageSpec] = {page.url_path: page for page in PAGES}
DEFAULT_PAGE = "overview"  # also served at the app root
