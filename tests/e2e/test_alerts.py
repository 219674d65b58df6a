"""Alerts page: a physician acknowledges an alert with a note and it leaves the open queue;
a viewer's Acknowledge is refused and changes nothing."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    ACCOUNTS,
    Server,
    choose,
    main_area,
    open_dropdown,
    open_page,
    run_cli,
    selectbox_value,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.e2e

COUNT = re.compile(r"(\d+) alert\(s\) for (\d+) patient\(s\)")


def _cli_alerts(db_url: str, status: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(
        run_cli(db_url, "alerts", "--status", status, "--format", "json")
    )
    return result


def _filter_patient(page: Page, patient_id: str) -> int:
    """Type the patient into the queue's Patient filter; the number of alerts shown."""
    box = main_area(page).get_by_label("Patient", exact=True)
    box.fill(patient_id)
    box.press("Enter")
    wait_idle(page)
    caption = main_area(page).get_by_text(COUNT)
    expect(caption).to_contain_text("for 1 patient(s)")
    # the alert card below follows (it is redrawn after the caption)
    card = main_area(page).get_by_role("heading", name=re.compile(rf"^{re.escape(patient_id)} · "))
    expect(card).to_be_visible()
    wait_idle(page)
    return int(COUNT.search(caption.inner_text()).group(1))  # type: ignore[union-attr]


def _shown_message(page: Page) -> str:
    message = main_area(page).get_by_text(re.compile(r"^Message\. "))
    return message.inner_text().removeprefix("Message. ").strip()


def test_physician_acknowledges_an_alert_and_it_leaves_the_open_queue(
    page: Page, server: Server
) -> None:
    open_before = _cli_alerts(server.db_url, "open")
    per_patient = Counter(a["patient_id"] for a in open_before)
    patient_id = sorted(p for p, n in per_patient.items() if n >= 2)[0]
    name, _password = ACCOUNTS["physician"]
    note = f"e2e: reviewed {patient_id}, marrow booked"

    sign_in(page, server, "physician")
    open_page(page, "Alerts")
    main = main_area(page)
    n_before = _filter_patient(page, patient_id)
    assert n_before == per_patient[patient_id], "the page and the CLI disagree on open alerts"
    message = _shown_message(page)
    (alert,) = [a for a in open_before if a["patient_id"] == patient_id and a["message"] == message]

    main.get_by_role("button", name="Acknowledge", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Acknowledge alert")
    dialog.get_by_label("Note").fill(note)
    dialog.get_by_role("button", name="Confirm acknowledgement").click()
    expect(dialog).to_have_count(0)
    expect(main.get_by_text(re.compile(r"^Acknowledged: "))).to_contain_text(patient_id)
    wait_idle(page)

    # gone from the open queue, on the page and in the store
    _filter_patient(page, patient_id)
    expect(main.get_by_text(COUNT)).to_contain_text(f"{n_before - 1} alert(s)")
    assert _shown_message(page) != message
    open_ids = {a["alert_id"] for a in _cli_alerts(server.db_url, "open")}
    assert alert["alert_id"] not in open_ids
    (acked,) = [
        a for a in _cli_alerts(server.db_url, "acknowledged") if a["alert_id"] == alert["alert_id"]
    ]
    assert acked["status"] == "acknowledged"
    shot(page, "alerts", "physician")

    # listed as acknowledged, with who and the note
    choose(page, "Status", "acknowledged")
    expect(main.get_by_text(re.compile(r"status acknowledged"))).to_be_visible()
    _filter_patient(page, patient_id)
    picker = main.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Alert", exact=True))
    open_dropdown(page, picker)
    label = re.compile(rf"^{re.escape(patient_id)} · .+ · {re.escape(alert['triggered_on'])}$")
    page.get_by_role("option", name=label).first.click()
    wait_idle(page)
    expect(main.get_by_text(re.compile(r"^Message\. "))).to_contain_text(message)
    expect(main).to_contain_text(name)
    expect(main).to_contain_text(note)


def test_viewer_is_not_offered_acknowledge(page: Page, server: Server) -> None:
    """CONTRACT §6: no control for an action the role may not take (no button that refuses)."""
    open_before = {a["alert_id"] for a in _cli_alerts(server.db_url, "open")}
    sign_in(page, server, "viewer")
    open_page(page, "Alerts")
    main = main_area(page)
    expect(main.get_by_text(COUNT)).to_be_visible()
    expect(main.get_by_role("heading", name=re.compile(r" · ")).first).to_be_visible()
    expect(main.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    expect(main.get_by_role("button", name=re.compile(r"^Acknowledge \d+ shown"))).to_have_count(0)
    expect(page.get_by_role("dialog")).to_have_count(0)
    shot(page, "alerts-viewer", "viewer")
    assert {a["alert_id"] for a in _cli_alerts(server.db_url, "open")} == open_before


def test_alert_picker_names_the_alert_the_card_shows(page: Page, server: Server) -> None:
    patients = sorted({a["patient_id"] for a in _cli_alerts(server.db_url, "open")})
    sign_in(page, server, "viewer")
    open_page(page, "Alerts")
    expect(main_area(page).get_by_text(COUNT)).to_be_visible()
    for patient_id in patients[-2:]:  # not the first patient of the queue
        _filter_patient(page, patient_id)
        card = main_area(page).get_by_role("heading", name=re.compile(r" · ")).first
        title = card.inner_text().strip()
        shown = selectbox_value(page, "Alert")
        assert shown.startswith(title), (
            f"filtered to {patient_id}: the Alert selectbox shows {shown!r} "
            f"but the card (and its Acknowledge button) is {title!r}"
        )
