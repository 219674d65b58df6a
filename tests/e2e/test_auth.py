"""Sign-in in a real browser (CONTRACT §6): the form guards every path (even a fresh server's
first request), a wrong password is refused, and a reload or a new tab keeps the session.
Each role's sign-in, name and role in the sidebar, and sign-out are in test_pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from monitoring.accounts import WRONG_CREDENTIALS
from tests.e2e.conftest import (
    ACCOUNTS,
    PATHS,
    Server,
    main_area,
    open_page,
    shot,
    sidebar,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.e2e

# texts that only a signed-in page shows
PAGE_TEXTS = [
    "Cohort overview",
    "Event-free survival",
    "Number at risk",
    "Alert queue",
    "Upload history",
    "Swimmer plot",
    "CART-",
]


def _only_sign_in_form(page: Page) -> None:
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("type", "password")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    wait_idle(page)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    text = page.locator("body").inner_text()
    leaked = [t for t in PAGE_TEXTS if t in text]
    assert not leaked, f"{page.url} shows {leaked} before sign-in"
    # the only inputs are the two of the form (no filters, no uploader, no selectboxes)
    assert page.locator("input:visible").count() == 2, page.url


def test_cold_deep_link_shows_only_sign_in(server: Server) -> None:
    """The very first request of a fresh server, /durability while signed out (a bookmark)."""
    seen = server.cold_deep_link
    assert seen["sign_in_form"], f"first request to /durability: no sign-in form: {seen['text']!r}"
    assert not [t for t in PAGE_TEXTS if t in seen["text"]], seen["text"]
    assert "error" not in seen["text"].lower(), seen["text"]


def test_signed_out_every_path_shows_only_sign_in(page: Page, server: Server) -> None:
    for path in [*PATHS, "/patient?patient=CART-00001"]:
        page.goto(server.url + path)
        _only_sign_in_form(page)
    shot(page, "signin", "signed_out")


def test_wrong_password_is_refused(page: Page, server: Server) -> None:
    name, password = ACCOUNTS["viewer"]
    page.goto(server.url + "/overview")
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(WRONG_CREDENTIALS)).to_be_visible()
    _only_sign_in_form(page)
    # an unknown user gets the very same sentence (no user probing)
    page.get_by_label("Username", exact=True).fill("nobody-here")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(WRONG_CREDENTIALS)).to_be_visible()
    _only_sign_in_form(page)
    # the right password still works afterwards (one failure does not lock the account)
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(sidebar(page)).to_contain_text(name)


def test_sign_in_survives_reload_and_new_tab(page: Page, server: Server) -> None:
    name, _password = ACCOUNTS["physician"]
    sign_in(page, server, "physician", path="/overview")
    open_page(page, "Alerts")
    page.reload()
    expect(sidebar(page).get_by_role("button", name="Sign out")).to_be_visible()
    expect(sidebar(page)).to_contain_text(name)
    expect(page.get_by_label("Username", exact=True)).to_have_count(0)
    expect(main_area(page).get_by_role("heading", name="Alert queue")).to_be_visible()
    # a bookmark opened in another tab of the same browser is signed in too
    other = page.context.new_page()
    other.goto(server.url + "/durability")
    expect(sidebar(other).get_by_role("button", name="Sign out")).to_be_visible()
    expect(main_area(other).get_by_role("heading", name="Event-free survival")).to_be_visible()
    other.close()
