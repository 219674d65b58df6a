"""The physician's day (issue 12), in Chromium, on a store of its own (these tests change it):

1. a data manager uploads one new relapse visit on the Data page; the physician opens Alerts
   and the relapse is in the first three rows, marked new; acknowledges it; bulk-acknowledges every alert triggered
   before a date with one note, and the open count drops by exactly the number the dialog named;
   the worklist lists a patient whose MRD window is open, and the patient link opens that patient;
2. selection cannot drift: the table is filtered and sorted, a row is ticked, and the alert
   acknowledged is exactly the one that row showed.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import (
    TIMEOUT_MS,
    VIEWPORT,
    Server,
    main_area,
    open_dropdown,
    open_page,
    run_cli,
    serving,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.e2e
COUNT = re.compile(r"(\d+) alert\(s\) for (\d+) patient\(s\)")
ROW_HEIGHT = 35  # st.dataframe's default row and header height (px)


@pytest.fixture(scope="module")
def day_server(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("day")
    db_url = f"sqlite:///{workdir / 'day.db'}"
    run_cli(db_url, "demo")
    with serving(db_url, workdir) as server:
        yield server


@contextlib.contextmanager
def fresh_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    except BaseException:
        with contextlib.suppress(Exception):
            shot(tab, "FAILED-physicians-day", "")
        raise
    finally:
        context.close()


def cli_json(db_url: str, *args: str) -> Any:
    return json.loads(run_cli(db_url, *args, "--format", "json"))


def open_alerts(db_url: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = cli_json(db_url, "alerts", "--status", "open")
    return result


def queue_table(page: Page) -> Locator:
    return main_area(page).get_by_test_id("stDataFrame").first


def table_rows(page: Page, n: int) -> list[dict[str, str]]:
    """The first `n` rows the table shows, by column name. st.dataframe draws on a canvas; its
    grid keeps an accessible copy of the rows drawn (a hidden table), read here."""
    table = queue_table(page)
    table.locator("td").first.wait_for(state="attached")
    # a sorted column's header carries an arrow: keep the words only
    headers = [re.sub(r"[^\w ()-]", "", h).strip() for h in table.locator("th").all_inner_texts()]
    rows = []
    for row in table.locator("tr").all()[1 : n + 1]:
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        rows.append(dict(zip(headers, cells, strict=False)))
    return rows


def shown_count(page: Page) -> int:
    caption = main_area(page).get_by_text(COUNT)
    expect(caption).to_have_count(1)  # not the old count still shown beside the new one
    expect(caption).to_be_visible()
    return int(COUNT.search(caption.inner_text()).group(1))  # type: ignore[union-attr]


def a_patient_in_remission(db_url: str) -> str:
    """A responder alive without relapse, transplant or new therapy, as of today."""
    from monitoring.outcomes import derive_outcomes
    from monitoring.store import Store

    store = Store.open(db_url)
    try:
        _version, patients, visits = store.snapshot()
    finally:
        store.close()
    facts = derive_outcomes(patients, visits, as_of=date.today())
    candidates = facts.filter(
        (pl.col("response") == "responder")
        & pl.col("relapse_date").is_null()
        & pl.col("death_date").is_null()
        & pl.col("hsct_date").is_null()
        & pl.col("new_therapy_date").is_null()
    ).sort("last_contact_date", "patient_id", descending=True)
    return str(candidates["patient_id"][0])


def upload_relapse(browser: Browser, server: Server, patient_id: str) -> str:
    """A data manager uploads one relapse visit (today, CD19-negative) on the Data page."""
    visit_day = date.today().isoformat()
    path = server.workdir / "relapse.csv"
    path.write_text(
        "patient_id,visit_date,disease_status,bm_blasts_pct,mrd_sample,mrd_flow_fraction,"
        "cd19_status,relapse_site\n"
        f"{patient_id},{visit_day},relapse,45,BM,0.3,negative,marrow\n",
        encoding="utf-8",
    )
    uploads_before = cli_json(server.db_url, "status")["uploads"]
    with fresh_page(browser) as page:
        sign_in(page, server, "data_manager")
        open_page(page, "Data")
        main = main_area(page)
        page.locator('input[type="file"]').set_input_files(str(path))
        expect(
            main.get_by_text(re.compile(r"visits\W+1 new, 0 changed, 0 unchanged"))
        ).to_be_visible()
        main.get_by_role("button", name="Confirm upload").click()
        expect(main.get_by_text(re.compile(r"^Committed\."))).to_be_visible()
    assert cli_json(server.db_url, "status")["uploads"] == uploads_before + 1
    return visit_day


def test_the_physicians_day(browser: Browser, day_server: Server) -> None:
    server = day_server
    # the physician has opened Alerts before (this is what "new" is measured from)
    with fresh_page(browser) as page:
        sign_in(page, server, "physician")
        open_page(page, "Alerts")
        assert shown_count(page) == len(open_alerts(server.db_url))

    patient_id = a_patient_in_remission(server.db_url)
    visit_day = upload_relapse(browser, server, patient_id)
    (relapse,) = [
        a
        for a in open_alerts(server.db_url)
        if a["patient_id"] == patient_id and a["rule"] == "relapse"
    ]
    assert relapse["triggered_on"] == visit_day

    with fresh_page(browser) as page:
        sign_in(page, server, "physician")
        open_page(page, "Alerts")
        main = main_area(page)
        open_before = shown_count(page)
        top = table_rows(page, 3)
        hit = [r for r in top if r.get("Patient") == patient_id and r.get("Alert") == "Relapse"]
        assert hit, f"the new relapse is not in the first three rows: {top}"
        assert hit[0]["New"] == "● new" and hit[0]["Severity"] == "critical"
        shot(page, "day-alerts-new-relapse", "physician")

        # acknowledge that one alert; the dialog names patient, rule and date
        picker = main.get_by_test_id("stSelectbox").filter(
            has=page.get_by_text("Alert", exact=True)
        )
        open_dropdown(page, picker)
        page.keyboard.type(patient_id)  # the picker filters its options as one types
        page.get_by_role("option", name=f"{patient_id} · Relapse · {visit_day}").click()
        wait_idle(page)
        expect(main.get_by_role("heading", name=f"{patient_id} · Relapse")).to_be_visible()
        main.get_by_role("button", name="Acknowledge", exact=True).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"{patient_id} · Relapse · triggered {visit_day}")
        expect(dialog).to_contain_text(relapse["alert_id"])
        dialog.get_by_label("Note").fill("e2e: relapse seen, salvage planned")
        dialog.get_by_role("button", name="Confirm acknowledgement").click()
        expect(dialog).to_have_count(0)
        expect(main.get_by_text(re.compile(r"^Acknowledged: "))).to_contain_text(patient_id)
        acked = cli_json(server.db_url, "alerts", "--status", "acknowledged")
        assert [a["alert_id"] for a in acked] == [relapse["alert_id"]]
        assert shown_count(page) == open_before - 1

        # bulk: every open alert triggered before a date, one note
        main.get_by_role("spinbutton", name="year, Triggered before").click()
        page.keyboard.type("2024")
        page.keyboard.type("01")
        page.keyboard.type("01")
        page.keyboard.press("Enter")
        main.get_by_role("heading", name="Alert queue").click()  # the field commits on blur
        wait_idle(page)
        expected = [a for a in open_alerts(server.db_url) if a["triggered_on"] < "2024-01-01"]
        # a rerun shows the new count beside the old one until it ends: wait for the new
        # count, then for the old one to go
        expect(main.get_by_text(COUNT).filter(has_text=f"{len(expected)} alert(s)")).to_be_visible()
        expect(main.get_by_text(COUNT)).to_have_count(1)
        main.get_by_role("button", name=f"Acknowledge {len(expected)} shown").click()
        dialog = page.get_by_role("dialog")
        named = int(re.search(r"Acknowledge (\d+) open alert", dialog.inner_text()).group(1))  # type: ignore[union-attr]
        open_count = len(open_alerts(server.db_url))
        dialog.get_by_label("Note").fill("e2e: history before go-live, reviewed")
        dialog.get_by_role("button", name=f"Confirm: acknowledge {named}").click()
        expect(dialog).to_have_count(0)
        expect(main.get_by_text(re.compile(r"^Acknowledged \d+ alert"))).to_contain_text(
            f"Acknowledged {named} alert(s)"
        )
        assert len(open_alerts(server.db_url)) == open_count - named
        assert named == len(expected) > 0
        notes = {
            a["alert_id"] for a in cli_json(server.db_url, "alerts", "--status", "acknowledged")
        }
        assert {a["alert_id"] for a in expected} <= notes

        # the worklist lists a patient whose MRD window is open; the link opens that patient
        due = [w for w in cli_json(server.db_url, "worklist") if w["item"] == "mrd_due"]
        assert due, "the demo store has no open MRD window today"
        open_page(page, "Worklist")
        table = queue_table(page)
        expect(table).to_be_visible()
        # the grid's accessible copy of a link cell holds the link itself
        rows = [
            {**r, "Patient": r.get("Patient", "").removeprefix("/patient?patient=")}
            for r in table_rows(page, 40)
        ]
        due_rows = [
            (i, r) for i, r in enumerate(rows) if r.get("What") == "Marrow MRD due (window open)"
        ]
        assert {r["Patient"] for _i, r in due_rows} == {w["patient_id"] for w in due}
        index, row = due_rows[0]
        shot(page, "day-worklist", "physician")
        box = table.bounding_box()
        assert box is not None
        # the Patient column is the first (no selection column on this table)
        x = box["x"] + 50
        y = box["y"] + ROW_HEIGHT * (index + 1) + ROW_HEIGHT / 2
        # a mouse rests on a link before it clicks: the grid opens a link cell only once the
        # pointer has hovered it (a click without a hover just selects the cell)
        page.mouse.move(x, y)
        page.wait_for_timeout(400)
        with page.context.expect_page() as opened:
            page.mouse.click(x, y)
        patient_page = opened.value
        patient_page.wait_for_load_state()
        wait_idle(patient_page)
        expect(main_area(patient_page).get_by_role("heading", name="Patient")).to_be_visible()
        assert f"patient={row['Patient']}" in patient_page.url
        expect(main_area(patient_page)).to_contain_text("last contact")
        patient_box = main_area(patient_page).get_by_test_id("stSelectbox").first
        expect(patient_box.get_by_role("combobox", name="Patient")).to_have_value(row["Patient"])


def test_the_acknowledged_alert_is_the_row_picked_after_sorting_and_filtering(
    page: Page, browser: Browser, day_server: Server
) -> None:
    server = day_server
    sign_in(page, server, "physician")
    open_page(page, "Alerts")
    main = main_area(page)
    # filter: one rule; sort: by patient, descending (two clicks on the header)
    rule_box = main.get_by_test_id("stMultiSelect").filter(has=page.get_by_text("Rule", exact=True))
    rule_box.click()
    page.keyboard.type("Rising MRD")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_idle(page)
    rising = [a for a in open_alerts(server.db_url) if a["rule"] == "mrd_rising"]
    assert len(rising) >= 3
    expect(main.get_by_text(COUNT)).to_contain_text(f"{len(rising)} alert(s)")
    table = queue_table(page)
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    assert box is not None
    # the header row is drawn on the canvas: the Patient column sits after the selection
    # column (~38 px), New (~50 px) and Severity (~62 px)
    for _ in range(2):
        page.mouse.click(box["x"] + 190, box["y"] + ROW_HEIGHT / 2)
        page.wait_for_timeout(700)
    rows = table_rows(page, 3)
    patients = [r["Patient"] for r in rows]
    assert patients == sorted(patients, reverse=True), f"not sorted descending: {patients}"
    assert patients[0] == max(a["patient_id"] for a in rising)
    # tick the third row (hover first: the grid draws its row checkbox on hover)
    tick = (box["x"] + 18, box["y"] + ROW_HEIGHT * 3 + ROW_HEIGHT / 2)
    page.mouse.move(*tick)
    page.wait_for_timeout(300)
    page.mouse.click(*tick)
    wait_idle(page)
    picked = rows[2]
    expect(main.get_by_role("heading", name=f"{picked['Patient']} · Rising MRD")).to_be_visible()
    acked_before = {
        a["alert_id"] for a in cli_json(server.db_url, "alerts", "--status", "acknowledged")
    }
    main.get_by_role("button", name="Acknowledge", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(
        f"{picked['Patient']} · Rising MRD · triggered {picked['Triggered on']}"
    )
    dialog_id = re.search(r"Alert ([0-9a-f]{16})", dialog.inner_text()).group(1)  # type: ignore[union-attr]
    dialog.get_by_label("Note").fill("e2e: picked after sorting")
    dialog.get_by_role("button", name="Confirm acknowledgement").click()
    expect(dialog).to_have_count(0)
    acked = [
        a
        for a in cli_json(server.db_url, "alerts", "--status", "acknowledged")
        if a["alert_id"] not in acked_before  # the journey's acknowledgements, when run first
    ]
    assert [a["alert_id"] for a in acked] == [dialog_id]
    assert (acked[0]["patient_id"], acked[0]["triggered_on"]) == (
        picked["Patient"],
        picked["Triggered on"],
    )
    # the table was redrawn without a stale tick: the card is not the acknowledged alert
    wait_idle(page)
    expect(main.get_by_text(COUNT)).to_contain_text(f"{len(rising) - 1} alert(s)")
    shot(page, "day-alerts-after-sorted-ack", "physician")


def test_screenshot_patient_page(page: Page, day_server: Server) -> None:
    relapsed = [a for a in open_alerts(day_server.db_url) if a["severity"] == "critical"]
    patient_id = relapsed[0]["patient_id"]
    sign_in(page, day_server, "physician", f"/patient?patient={patient_id}")
    main = main_area(page)
    expect(main).to_contain_text("last contact")
    expect(main.get_by_test_id("stPlotlyChart")).to_be_visible()
    page.wait_for_timeout(1500)
    shot(page, "day-patient", "physician")
    page.goto(day_server.url + "/patient?patient=NOBODY-1")
    wait_idle(page)
    expect(main_area(page)).to_contain_text("No patient “NOBODY-1” in the store")
    expect(main_area(page).get_by_test_id("stPlotlyChart")).to_have_count(0)
    assert Path(shot(page, "day-patient-unknown", "physician")).exists()
