"""Every role signs in, sees its name and role, opens every page from the sidebar without an
error (Data refused in one sentence to roles that may not upload), and signs out; a full-page
screenshot of each page per role is written to test-artifacts/screenshots/<page>-<role>.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from monitoring.accounts import allowed, refusal
from tests.e2e.conftest import (
    ACCOUNTS,
    PAGES,
    Server,
    main_area,
    open_page,
    shot,
    sidebar,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.e2e

# a heading each page shows when it is allowed
HEADINGS = {
    "Overview": "Cohort overview",
    "Durability": "Event-free survival",
    "Alerts": "Alert queue",
    "Worklist": "Worklist",
    "Patient": "Visits",
    "Data": "Upload history",
}
CRASH = "This app has encountered an error"


@pytest.mark.parametrize("role", list(ACCOUNTS))
def test_role_signs_in_opens_every_page_and_signs_out(
    page: Page, server: Server, role: str
) -> None:
    name, _password = ACCOUNTS[role]
    sign_in(page, server, role)
    side = sidebar(page)
    expect(side).to_contain_text(name)
    expect(side).to_contain_text(role.replace("_", " "))
    nav = side.get_by_test_id("stSidebarNav")
    for title in PAGES:
        expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible()
    # a link's text is "<icon ligature>\n\n<title>"
    links = [t.strip().splitlines()[-1].strip() for t in nav.get_by_role("link").all_inner_texts()]
    extra = [t for t in links if t not in PAGES]
    if role != "admin":  # admins may have more (account management); nobody else does
        assert not extra, f"{role} sees pages beyond the contract's six: {extra}"

    problems = []
    for title in [*PAGES, *extra]:
        open_page(page, title)
        main = main_area(page)
        if title == "Data" and not allowed(role, "upload"):
            expect(main.get_by_text(refusal("upload"))).to_be_visible()
            expect(main.get_by_role("heading", name=HEADINGS[title])).to_have_count(0)
            expect(page.locator('input[type="file"]')).to_have_count(0)
        elif title in HEADINGS:
            expect(main.get_by_role("heading", name=HEADINGS[title])).to_be_visible()
        wait_idle(page)  # the whole page has rendered (a crash may be below the heading)
        if page.get_by_test_id("stException").count() or CRASH in main.inner_text():
            problems.append(title)
        shot(page, title.lower(), role)
    assert not problems, (
        f"pages that crashed for {role}: {problems} (see the screenshots); "
        f"server log:\n{server.last_error()}"
    )

    side.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.reload()  # the cookie was cleared: still signed out
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
