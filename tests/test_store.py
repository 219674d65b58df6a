"""Upserts, history, idempotent re-upload, all-or-nothing writes, the audit log."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from monitoring.errors import RejectedUploadError
from monitoring.ingest import ingest_files
from monitoring.store import Store
from tests.conftest import PATIENTS_HEADER, VISITS_HEADER, write_csv

TODAY = date(2026, 11, 22)


def _visits(tmp_path: Path, *rows: str, name: str = "visits.csv") -> Path:
    return write_csv(tmp_path / name, VISITS_HEADER, *rows)


def test_identical_reupload_changes_nothing(store: Store, tmp_path: Path, two_patients: Path):
    visits = _visits(
        tmp_path, "P-001,2024-02-07,CR,1,BM,0,0.1,450,no", "P-002,2024-03-08,CRi,,,,,,"
    )
    first = ingest_files(store, [two_patients, visits], today=TODAY)
    assert first.counts() == {
        "patients": {"new": 2, "changed": 0, "unchanged": 0, "rows": 2},
        "visits": {"new": 2, "changed": 0, "unchanged": 0, "rows": 2},
    }
    version = store.data_version()
    snapshot = (store.patients(), store.visits())
    again = ingest_files(store, [two_patients, visits], today=TODAY)
    assert again.counts()["visits"] == {"new": 0, "changed": 0, "unchanged": 2, "rows": 2}
    assert again.summary is not None and "0 new, 0 changed, 2 unchanged" in again.summary.sentence()
    assert store.data_version() == version
    assert store.patients().equals(snapshot[0]) and store.visits().equals(snapshot[1])
    assert store.history().height == 0


def test_changed_value_keeps_previous_in_history(store: Store, tmp_path: Path, two_patients: Path):
    ingest_files(
        store,
        [two_patients, _visits(tmp_path, "P-001,2024-02-07,CR,1,BM,0,0.1,450,no")],
        today=TODAY,
    )
    (tmp_path / "b").mkdir()
    result = ingest_files(
        store,
        [_visits(tmp_path / "b", "P-001,2024-02-07,CR,1,BM,0.0004,,450,no")],
        user="dm1",
        today=TODAY,
    )
    assert result.counts()["visits"] == {"new": 0, "changed": 1, "unchanged": 0, "rows": 1}
    warnings = result.warnings.filter(pl.col("problem").str.starts_with("changed since"))
    assert set(warnings["column"]) == {"mrd_flow_fraction", "bcell_pct_lymphocytes"}
    stored = store.visits().row(0, named=True)
    assert stored["mrd_flow_fraction"] == 0.0004 and stored["bcell_pct_lymphocytes"] is None
    history = store.history().sort("column_name")
    assert history.select("column_name", "old_value", "new_value").rows() == [
        ("bcell_pct_lymphocytes", "0.1", None),
        ("mrd_flow_fraction", "0.0", "0.0004"),
    ]
    assert history["visit_date"].to_list() == [date(2024, 2, 7)] * 2
    upload = store.uploads().row(0, named=True)
    assert history["upload_id"].to_list() == [upload["upload_id"]] * 2
    assert (upload["user_name"], upload["n_changed"], upload["file_name"]) == (
        "dm1",
        1,
        "visits.csv",
    )


def test_rows_missing_from_later_upload_are_kept(store: Store, tmp_path: Path, two_patients: Path):
    ingest_files(
        store,
        [two_patients, _visits(tmp_path, "P-001,2024-02-07,CR,,,,,,", "P-001,2024-04-07,CR,,,,,,")],
        today=TODAY,
    )
    (tmp_path / "b").mkdir()
    ingest_files(store, [_visits(tmp_path / "b", "P-001,2024-04-07,CR,,,,,,")], today=TODAY)
    assert store.visits().height == 2


def test_rejected_upload_writes_nothing_even_with_a_valid_file(
    store: Store, tmp_path: Path, two_patients: Path
):
    bad = _visits(tmp_path, "P-001,2024-02-07,CR,1,BM,3,0.1,450,no")
    with pytest.raises(RejectedUploadError):
        ingest_files(store, [two_patients, bad], today=TODAY)
    assert store.counts() == {"patients": 0, "visits": 0, "uploads": 0}
    assert store.data_version() == 0


def test_dry_run_writes_nothing(store: Store, tmp_path: Path, two_patients: Path):
    result = ingest_files(store, [two_patients], dry_run=True, today=TODAY)
    assert result.summary is None and result.counts()["patients"]["new"] == 2
    assert store.counts()["patients"] == 0


def test_uploads_and_audit_log(store: Store, two_patients: Path):
    ingest_files(store, [two_patients], user="dm1", today=TODAY)
    uploads = store.uploads()
    assert (
        uploads["sha256"][0] == __import__("hashlib").sha256(two_patients.read_bytes()).hexdigest()
    )
    audit = store.audit_log()
    assert audit["action"].to_list() == ["upload"] and audit["user_name"].to_list() == ["dm1"]


def test_audit_log_is_append_only(store: Store, two_patients: Path):
    ingest_files(store, [two_patients], today=TODAY)
    for statement in ("UPDATE audit_log SET user_name = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert store.audit_log().height == 1


def test_migrations_are_versioned_and_idempotent(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = Store.open(url)
    assert first.schema_version() >= 5
    again = Store(first.engine)
    assert again.migrate() == []


def test_store_reads_back_exact_types(store: Store, tmp_path: Path):
    patients = write_csv(
        tmp_path / "patients.csv",
        PATIENTS_HEADER + ",prior_hsct",
        "P-001,A,F,7,tisagenlecleucel,2024-01-10,2024-06-01,,,true",
    )
    ingest_files(store, [patients], today=TODAY)
    row = store.patients().row(0, named=True)
    assert row["hsct_date"] == date(2024, 6, 1) and row["prior_hsct"] is True
    assert row["age_at_infusion_years"] == 7.0 and row["death_date"] is None
