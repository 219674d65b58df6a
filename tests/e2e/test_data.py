"""Data page: a bad export is rejected whole with a row/column/problem report; a clean one is
previewed, confirmed and stored; a viewer is refused the page."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from monitoring.accounts import refusal
from monitoring.cli import main as cli_main
from monitoring.store import Store
from tests.e2e.conftest import (
    ROOT,
    Server,
    download_text,
    main_area,
    open_page,
    selectbox_value,
    shot,
    sign_in,
    status,
    wait_idle,
)

pytestmark = pytest.mark.e2e

MESSY = ROOT / "sample_data" / "messy_visits_export.csv"
REPORT_KEY = ("row", "patient_id", "column", "value", "problem")
# dropping files validates them: there is no separate check button any more
CHECK_BUTTON = re.compile(r"^(Validate upload|Upload|Confirm upload)$")


def _check(page: Page, path: Path) -> None:
    """Dropping a file is the check: the report appears with no further click."""
    page.locator('input[type="file"]').set_input_files(str(path))
    expect(main_area(page).get_by_test_id("stFileChip")).to_have_count(1)  # the uploader lists it
    expect(main_area(page).get_by_text("Validation report", exact=True)).to_be_visible()
    wait_idle(page)


def _report_rows(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def _cli_report(db_url: str, path: Path, out: Path) -> list[dict[str, str]]:
    """`ltfu ingest FILE --dry-run --report PATH`: the same check from the command line."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli_main(["--db", db_url, "ingest", str(path), "--dry-run", "--report", str(out)])
    assert code == 1, f"the CLI accepted the messy file (exit {code}): {stderr.getvalue()}"
    return _report_rows(out.read_text())


def _clean_visits(db_url: str, path: Path) -> tuple[str, int]:
    """Two new follow-up visits for a living demo patient, after their last stored visit."""
    store = Store.open(db_url)
    try:
        _version, patients, visits = store.snapshot()
    finally:
        store.close()
    last = visits.group_by("patient_id").agg(pl.col("visit_date").max().alias("last"))
    today = date.today()
    candidates = (
        patients.filter(pl.col("death_date").is_null())
        .join(last, on="patient_id")
        .filter(pl.col("last") < today - timedelta(days=90))
        .sort("patient_id")
    )
    assert candidates.height, "no living demo patient with room for new visits"
    patient_id, last_visit = candidates.row(0, named=True)["patient_id"], candidates["last"][0]
    rows = [
        f"{patient_id},{(last_visit + timedelta(days=d)).isoformat()},CR,0.5,BM,0,0.2,4,"
        f"e2e follow-up day +{d}"
        for d in (30, 60)
    ]
    path.write_text(
        "patient_id,visit_date,disease_status,bm_blasts_pct,mrd_sample,mrd_flow_fraction,"
        "bcell_pct_lymphocytes,bcell_per_ul,comment\n" + "\n".join(rows) + "\n"
    )
    return patient_id, len(rows)


def test_bad_file_rejected_with_report_then_clean_file_stored(
    page: Page, server: Server, tmp_path: Path
) -> None:
    assert MESSY.exists(), f"{MESSY} is missing"
    before = status(server.db_url)
    sign_in(page, server, "data_manager")
    open_page(page, "Data")
    main = main_area(page)
    expect(main.get_by_role("heading", name="Upload history")).to_be_visible()

    # 1. the messy export: rejected whole, every problem listed with row, column and problem
    _check(page, MESSY)
    expect(main.get_by_text(re.compile(r"rejected", re.IGNORECASE)).first).to_be_visible()
    expect(main.get_by_role("button", name="Confirm upload")).to_have_count(0)
    summary = main.get_by_text(re.compile(r"Validation report\W+(\d+) error"))
    expect(summary).to_be_visible()
    n_errors = int(re.search(r"(\d+) error", summary.inner_text()).group(1))  # type: ignore[union-attr]
    assert n_errors > 0
    shot(page, "data-rejected", "data_manager")
    shown = _report_rows(
        download_text(page, main.get_by_role("button", name="Validation report (CSV)"))
    )
    errors = [r for r in shown if r.get("severity", "error") == "error"]
    assert len(errors) == n_errors, (n_errors, errors)
    for row in errors:
        assert row["row"].isdigit() and row["column"] and row["problem"], row
    assert {r["file"] for r in shown} == {MESSY.name}
    # the same problems as the command line finds in the same file
    cli = _cli_report(server.db_url, MESSY, tmp_path / "cli_report.csv")
    assert sorted(tuple(r[k] for k in REPORT_KEY) for r in errors) == sorted(
        tuple(r[k] for k in REPORT_KEY) for r in cli if r.get("severity", "error") == "error"
    )
    after_rejected = status(server.db_url)
    assert (after_rejected["visits"], after_rejected["uploads"]) == (
        before["visits"],
        before["uploads"],
    ), "a rejected upload wrote something"

    # 2. a clean file: previewed (2 new visits), confirmed, stored
    page.reload()  # a fresh uploader (and proof that the session survives a reload)
    expect(main.get_by_role("heading", name="Upload history")).to_be_visible()
    wait_idle(page)
    clean = tmp_path / "e2e_new_visits.csv"
    patient_id, n_new = _clean_visits(server.db_url, clean)
    _check(page, clean)
    expect(
        main.get_by_text(re.compile(rf"visits\W+{n_new} new, 0 changed, 0 unchanged"))
    ).to_be_visible()
    main.get_by_role("button", name="Confirm upload").click()
    expect(main.get_by_text(re.compile(r"^Committed\."))).to_be_visible()
    wait_idle(page)
    after = status(server.db_url)
    assert after["visits"] == before["visits"] + n_new, (before, after)
    assert after["uploads"] == before["uploads"] + 1, (before, after)
    # the page's stamp shows the new data version
    expect(main.get_by_text(f"Data version {after['data_version']} ")).to_be_visible()
    shot(page, "data", "data_manager")
    # the patient's page has the new visits (its visits download lists them)
    page.goto(f"{server.url}/patient?patient={patient_id}")
    expect(main_area(page).get_by_role("heading", name="Visits")).to_be_visible()
    wait_idle(page)
    assert selectbox_value(page, "Patient") == patient_id, "/patient?patient=ID opened another"
    visits_csv = download_text(page, main_area(page).get_by_role("button", name="Visits (CSV)"))
    for d in (30, 60):
        assert f"e2e follow-up day +{d}" in visits_csv, visits_csv[-600:]


def test_viewer_is_refused_the_data_page(page: Page, server: Server) -> None:
    before = status(server.db_url)
    sign_in(page, server, "viewer", path="/data")
    main = main_area(page)
    expect(main.get_by_text(refusal("upload"))).to_be_visible()
    expect(page.locator('input[type="file"]')).to_have_count(0)
    expect(main.get_by_role("button", name=CHECK_BUTTON)).to_have_count(0)
    expect(main.get_by_role("heading", name="Upload history")).to_have_count(0)
    assert status(server.db_url)["uploads"] == before["uploads"]
