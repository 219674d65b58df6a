"""The one-click cohort report: the Overview's button downloads the same file, byte for byte,
as `ltfu report --out FILE.html` on the same store and day (no filters), and the download is
in the audit log."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ACCOUNTS, Server, download_text, main_area, run_cli, shot, sign_in

pytestmark = pytest.mark.e2e


def test_overview_button_downloads_the_cli_report(
    page: Page, server: Server, tmp_path: Path
) -> None:
    sign_in(page, server, "viewer")
    main = main_area(page)
    expect(main.get_by_role("heading", name="Cohort overview")).to_be_visible()
    button = main.get_by_role("button", name="Cohort report (HTML)")
    expect(button).to_be_visible()
    shot(page, "overview-report-button", "viewer")
    downloaded = download_text(page, button)

    out = tmp_path / "cohort.html"
    run_cli(server.db_url, "report", "--out", str(out))
    assert downloaded == out.read_text(encoding="utf-8")
    assert f"evaluated {date.today().isoformat()} · filters: none (all patients)" in downloaded

    user = ACCOUNTS["viewer"][0]
    log = json.loads(run_cli(server.db_url, "audit", "--user", user, "--format", "json"))
    details = [json.loads(e["detail"]) for e in log if e["action"] == "download"]
    assert any(d["what"] == "Cohort report (HTML)" for d in details), details
