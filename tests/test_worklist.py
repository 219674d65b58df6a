"""CONTRACT §4.1: the worklist at each boundary (window first and last day, 365/425 days of
contact), on hand-built patients infused on 2020-01-01 (`d(n)` = day n)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring.cli import main
from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.worklist import due_among, due_per_patient, due_within, worklist
from tests.factories import d, patient, patients_frame, visit, visits_frame

CR = {"disease_status": "CR"}


def rows(patients: pl.DataFrame, visits: pl.DataFrame, as_of: date, within: int = 14) -> list:
    table = worklist(patients, visits, as_of, within_days=within)
    return [
        (r["patient_id"], r["item"], r["window"], r["opens_on"], r["due_by"], r["days_left"])
        for r in table.iter_rows(named=True)
    ]


NO_VISITS = visits_frame()


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (20, [("P", "mrd_upcoming", "21-35", d(21), d(35), 15)]),  # opens in 1 day
        (21, [("P", "mrd_due", "21-35", d(21), d(35), 14)]),  # first day
        (35, [("P", "mrd_due", "21-35", d(21), d(35), 0)]),  # last day
        (36, []),  # closed: missed_mrd_assessment's business, not the worklist's
    ],
)
def test_mrd_window_first_and_last_day(day: int, expected: list) -> None:
    assert rows(patients_frame(patient("P")), NO_VISITS, d(day)) == expected


def test_upcoming_is_within_the_given_days() -> None:
    patients = patients_frame(patient("P"))
    visits = visits_frame(visit("P", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0))
    # window 76-104 opens on d(76): 14 days after d(62) is inside, after d(61) is not
    assert rows(patients, visits, d(62)) == [("P", "mrd_upcoming", "76-104", d(76), d(104), 42)]
    assert rows(patients, visits, d(61)) == []
    assert len(rows(patients, visits, d(61), within=15)) == 1
    assert rows(patients, visits, d(75), within=0) == []


def test_a_marrow_result_in_the_window_closes_the_item_a_blood_result_does_not() -> None:
    patients = patients_frame(patient("BM"), patient("PB"))
    visits = visits_frame(
        visit("BM", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("PB", 28, **CR, mrd_sample="PB", mrd_flow_fraction=0.0),
    )
    assert rows(patients, visits, d(30)) == [("PB", "mrd_due", "21-35", d(21), d(35), 5)]
    # a marrow result dated after the evaluation date does not count yet
    assert [r[0] for r in rows(patients, visits, d(27))] == ["BM", "PB"]


def test_who_gets_no_mrd_item() -> None:
    patients = patients_frame(
        patient("DEAD", death_date=d(80)),
        patient("NONRESP"),
        patient("RELAPSED"),
        patient("HSCT", hsct_date=d(91)),
        patient("THERAPY", new_therapy_date=d(95)),
        patient("OK"),
        patient("LATER", infusion_date=d(100)),
    )
    visits = visits_frame(
        *[visit(p, 28, **CR) for p in ("DEAD", "RELAPSED", "HSCT", "THERAPY", "OK")],
        visit("NONRESP", 28, disease_status="no_response"),
        visit("RELAPSED", 80, disease_status="relapse"),
    )
    assert [r[0] for r in rows(patients, visits, d(95))] == ["OK"]
    # the day before the new therapy, that patient is still due
    assert [r[0] for r in rows(patients, visits, d(94))] == ["OK", "THERAPY"]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (365, []),  # exactly 365 days: not yet due
        (366, [("P", "contact_due", None, None, d(425), 59)]),
        (425, [("P", "contact_due", None, None, d(425), 0)]),  # last day
        (426, []),  # overdue: followup_overdue's business
    ],
)
def test_contact_due_between_365_and_425_days(day: int, expected: list) -> None:
    # no response by day 90: a non-responder, so only the contact item applies
    patients = patients_frame(patient("P", last_contact_date=d(0)))
    assert rows(patients, NO_VISITS, d(day)) == expected


def test_contact_due_after_relapse_too_but_not_after_death() -> None:
    patients = patients_frame(patient("R"), patient("X", death_date=d(10)))
    visits = visits_frame(visit("R", 28, **CR), visit("R", 40, disease_status="relapse"))
    assert rows(patients, visits, d(40 + 400)) == [
        ("R", "contact_due", None, None, d(40 + 425), 25)
    ]


def test_sorted_by_due_date_then_patient_and_due_this_week() -> None:
    patients = patients_frame(
        patient("Z", infusion_date=d(-10)),
        patient("A"),
        patient("C", infusion_date=d(-420), last_contact_date=d(-400)),
    )
    table = worklist(patients, NO_VISITS, d(25))
    assert table["patient_id"].to_list() == ["C", "Z", "A"]
    assert table["due_by"].to_list() == [d(25), d(25), d(35)]
    assert due_within(table, 7) == 2


def test_due_counts_rows_to_act_on_not_windows_yet_to_open_and_sums_per_patient() -> None:
    patients = patients_frame(
        patient("U"),  # day 20: the 21-35 window opens tomorrow (due by day 35)
        patient("M", infusion_date=d(-5)),  # day 25: the 21-35 window is open (due in 10)
        patient("C", infusion_date=d(-420), last_contact_date=d(-400)),  # contact due in 5
    )
    table = worklist(patients, NO_VISITS, d(20), within_days=7)
    assert sorted(table["item"].to_list()) == ["contact_due", "mrd_due", "mrd_upcoming"]
    assert due_within(table, 7) == 1  # the contact
    assert due_within(table, 15) == 2  # and the open window, not the one yet to open
    per_patient = due_per_patient(table, 15)
    assert sorted(per_patient.rows()) == [("C", 1), ("M", 1)]
    assert due_among(per_patient, pl.Series(["C", "U"])) == 1
    assert due_among(per_patient, pl.Series(["U"])) == 0


def test_cli_worklist_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    patients = tmp_path / "patients.csv"
    patients_frame(patient("P", infusion_date=date(2026, 1, 1))).write_csv(patients)
    store = Store.open(store_url)
    ingest_files(store, [patients], user="dm")
    store.close()
    argv = ["--db", store_url, "worklist", "--as-of", "2026-01-20", "--format", "json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "patient_id": "P",
            "item": "mrd_upcoming",
            "window": "21-35",
            "opens_on": "2026-01-22",
            "due_by": "2026-02-05",
            "days_left": 16,
        }
    ]
    assert main(["--db", store_url, "worklist", "--within", "-1"]) == 2


def test_contact_due_after_transplant_and_new_therapy_but_not_before_infusion() -> None:
    patients = patients_frame(
        patient("HSCT", hsct_date=d(60), last_contact_date=d(60)),
        patient("THERAPY", new_therapy_date=d(60), last_contact_date=d(60)),
        patient("LATER", infusion_date=d(461), last_contact_date=d(0)),  # infused after D
    )
    assert rows(patients, NO_VISITS, d(460)) == [
        ("HSCT", "contact_due", None, None, d(485), 25),
        ("THERAPY", "contact_due", None, None, d(485), 25),
    ]
