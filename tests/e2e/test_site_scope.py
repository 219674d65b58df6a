"""A site-scoped viewer (issue 16 item 8) in Chromium: limited to one site of the demo cohort with
`ltfu user add … --sites`, it opens Overview, Durability, Alerts, Worklist and Patient and
downloads the alert queue as CSV. No patient id of another site reaches the browser: not in the
page text, not in any WebSocket message the server sends (tables and charts travel in them as
Arrow and JSON, so ids drawn on a canvas are checked too), not in the download. Another site's
patient, asked for by id, is "not found" word for word like an unknown id."""

from __future__ import annotations

import io
import re
import time
from contextlib import closing

import polars as pl
import pytest
from playwright.sync_api import Page, WebSocket, expect

from monitoring.store import Store
from tests.e2e.conftest import (
    Server,
    download_text,
    main_area,
    open_page,
    run_cli,
    shot,
    sidebar,
    wait_idle,
)

pytestmark = pytest.mark.e2e

NAME, PASSWORD = "e2e_site_viewer", "site-viewer-pass-2026"
ID = re.compile(rb"CART-\d{5}")


def _sites(db_url: str) -> tuple[str, set[str], set[str]]:
    """The most populous site, its patient ids and every other patient's id."""
    with closing(Store.open(db_url)) as store:
        patients = store.patients()
    site = str(patients["site"].drop_nulls().mode().sort()[0])
    mine = pl.col("site") == site
    return (
        site,
        set(patients.filter(mine)["patient_id"]),
        set(patients.filter(~mine | pl.col("site").is_null())["patient_id"]),
    )


def test_a_site_scoped_viewer_sees_only_its_site_everywhere(
    page: Page, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, mine, others = _sites(server.db_url)
    assert mine and others
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = run_cli(server.db_url, "user", "add", NAME, "--role", "viewer", "--sites", site)
    assert f"({site})" in out

    received: list[bytes] = []

    def listen(socket: WebSocket) -> None:
        def keep(payload: str | bytes) -> None:
            received.append(payload if isinstance(payload, bytes) else payload.encode())

        socket.on("framereceived", keep)

    page.on("websocket", listen)
    page.goto(server.url + "/")
    page.get_by_label("Username", exact=True).fill(NAME)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    sidebar(page).get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)
    expect(sidebar(page)).to_contain_text(f"Sites: {site}")

    texts: list[str] = []
    for title, heading in (
        ("Overview", "Cohort overview"),
        ("Durability", "Event-free survival"),
        ("Worklist", "Worklist"),
        ("Patient", "Visits"),
        ("Alerts", "Alert queue"),
    ):
        open_page(page, title)
        expect(main_area(page).get_by_role("heading", name=heading)).to_be_visible()
        wait_idle(page)
        texts.append(page.locator("body").inner_text())
        shot(page, f"site-scope-{title.lower()}", "viewer")
    queue_csv = download_text(page, main_area(page).get_by_role("button", name="Queue (CSV)"))

    def ids(blob: bytes) -> set[str]:
        return {m.decode() for m in ID.findall(blob)}

    seen = ids(b"".join(received)) | ids("\n".join(texts).encode())
    assert seen & mine, "the check is live: the viewer's own patients reach the browser"
    assert not seen & others, f"ids of other sites reached the browser: {sorted(seen & others)[:5]}"
    in_csv = ids(queue_csv.encode())
    assert in_csv and in_csv <= mine, sorted(in_csv - mine)[:5]

    # another site's patient, by id: the same sentence as an id that exists nowhere
    before = len(received)
    other = sorted(others)[0]
    page.goto(f"{server.url}/patient?patient={other}")
    wait_idle(page)
    expect(main_area(page).get_by_text(f"No patient “{other}” in the store")).to_be_visible()
    outside = _settled_text(page)
    shot(page, "site-scope-patient-other-site", "viewer")
    page.goto(f"{server.url}/patient?patient=CART-99999")
    wait_idle(page)
    expect(main_area(page).get_by_text("No patient “CART-99999” in the store")).to_be_visible()
    assert _settled_text(page).replace("CART-99999", other) == outside
    later = ids(b"".join(received[before:])) - {other}
    assert not later & others, sorted(later & others)[:5]


def _settled_text(page: Page) -> str:
    """The main area's text once no element of an earlier run is left and it stays the same for
    a quarter of a second (after a full load the run state can read "not running" before the
    first run has begun, so `wait_idle` alone can return on a half-replaced page)."""
    deadline = time.monotonic() + 15
    last = None
    while time.monotonic() < deadline:
        stale = page.locator('[data-stale="true"]').count()
        text = main_area(page).inner_text()
        if not stale and text == last:
            return text
        last = text
        page.wait_for_timeout(250)
    raise AssertionError(f"the page did not settle: {last!r}")
