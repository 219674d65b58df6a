"""A data manager saves the sample REDCap profile, drops the sample export with planted mistakes
(the report appears at once, in source terms, and nothing can be confirmed), then drops the clean
export and confirms: both tables are written in one upload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    ROOT,
    Server,
    choose,
    main_area,
    open_page,
    shot,
    sign_in,
    status,
    wait_idle,
)

pytestmark = pytest.mark.e2e

REDCAP = ROOT / "sample_data" / "redcap"
PROFILE_NAME = "REDCap sample project"


def _drop(page: Page, path: str) -> None:
    page.locator('input[type="file"]').set_input_files(path)
    expect(main_area(page).get_by_text("Validation report", exact=True)).to_be_visible()
    wait_idle(page)


def test_data_manager_uploads_a_redcap_export_with_a_saved_profile(
    page: Page, server: Server
) -> None:
    before = status(server.db_url)
    sign_in(page, server, "data_manager")
    open_page(page, "Data")
    main = main_area(page)

    # 1. save the project's profile (checked, versioned, audited)
    main.get_by_text("Mapping profiles: add or edit").click()
    main.get_by_label("Profile name").fill(PROFILE_NAME)
    main.get_by_label("Profile (TOML)").fill((REDCAP / "redcap.profile.toml").read_text())
    main.get_by_role("button", name="Save profile").click()
    expect(main.get_by_text(f"Saved profile '{PROFILE_NAME}' version 1")).to_be_visible()
    wait_idle(page)
    choose(page, "Mapping profile", PROFILE_NAME)

    # 2. the export with mistakes: the report is there at once, in source terms; no Confirm
    _drop(page, str(REDCAP / "export_with_mistakes.csv"))
    expect(main.get_by_text(re.compile(r"rejected", re.IGNORECASE)).first).to_be_visible()
    expect(main.get_by_text(re.compile(r"Validation report\W+5 error"))).to_be_visible()
    expect(
        main.get_by_text(re.compile(r"rows 2 and 26 of record CART-00001 disagree on sex")).first
    ).to_be_visible()
    expect(main.get_by_text(re.compile(r"unknown code '7' in status")).first).to_be_visible()
    expect(main.get_by_role("button", name="Confirm upload")).to_have_count(0)
    shot(page, "data-redcap-report", "data_manager")
    assert status(server.db_url)["uploads"] == before["uploads"]

    # 3. the clean export: previewed with no warnings, confirmed, both tables in one upload
    main.get_by_role("button", name="Clear files").click()
    expect(main.get_by_test_id("stFileChip")).to_have_count(0)
    wait_idle(page)
    _drop(page, str(REDCAP / "export_raw.csv"))
    expect(
        main.get_by_text(re.compile(r"Validation report\W+0 error\(s\), 0 warning"))
    ).to_be_visible()
    expect(
        main.get_by_text(re.compile(r"patients\W+0 new, 0 changed, 150 unchanged"))
    ).to_be_visible()
    main.get_by_role("button", name="Confirm upload").click()
    expect(main.get_by_text(re.compile(r"^Committed\."))).to_be_visible()
    after = status(server.db_url)
    assert after["uploads"] == before["uploads"] + 2  # patients and visits of one file
    assert (after["patients"], after["visits"]) == (before["patients"], before["visits"])
