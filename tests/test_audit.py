"""Who saw what (issue 16, item 7): patient views, downloads, rejected uploads and the client
address in the audit log; `ltfu audit` and the admin page read it with filters."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import date, timedelta

import pytest

from dashboard.text import shown
from monitoring import audit
from monitoring.cli import main
from monitoring.store import Store
from tests.test_dashboard_pages import PAGES, app_as, db, demo_db  # noqa: F401

pytestmark = pytest.mark.timeout(600)
PAGES.setdefault("audit", "views/audit.py")


def ltfu(store: Store, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--db", str(store.engine.url.render_as_string(hide_password=False)), *args])
    return code, out.getvalue(), err.getvalue()


def entries(store: Store, **filters: str) -> list[dict[str, object]]:
    code, out, err = ltfu(store, "audit", "--format", "json", *_flags(filters))
    assert code == 0, err
    result: list[dict[str, object]] = json.loads(out)
    return result


def _flags(filters: dict[str, str]) -> list[str]:
    return [part for key, value in filters.items() for part in (f"--{key}", value)]


def test_every_entry_carries_a_client_address(db: Store) -> None:  # noqa: F811
    audit.set_client_source(None)  # as on the command line, whatever a page test registered
    db.record_audit("someone", "backup", {"path": "x"})
    audit.set_client_source(lambda: "203.0.113.7")
    try:
        db.record_audit("someone", "download", {"what": "Queue (CSV)"})
    finally:
        audit.set_client_source(None)
    log = entries(db, user="someone")
    assert [(e["action"], e["client"]) for e in log] == [
        ("download", "203.0.113.7"),
        ("backup", "cli"),
    ]


def test_patient_view_is_recorded_once_per_patient_opened(db: Store) -> None:  # noqa: F811
    patient = db.patients()["patient_id"][0]
    at = app_as(db, "viewer", "patient")
    at.query_params["patient"] = patient
    at.run()
    at.run()  # a rerun of the same record is not a second view
    views = entries(db, user="viewer", patient=patient)
    assert [e["action"] for e in views] == ["view_patient"]
    assert views[0]["client"] == "unknown"  # AppTest has no browser connection
    assert entries(db, patient="no-such-patient") == []


def test_audit_filters_by_user_patient_and_dates(db: Store) -> None:  # noqa: F811
    db.record_audit("alice", "view_patient", {"patient_id": "P-1"})
    db.record_audit("bob", "view_patient", {"patient_id": "P-2"})
    db.record_audit("alice", "download", {"what": "Visits (CSV)", "patient_id": "P-2"})
    assert [e["patient_id"] for e in entries(db, user="alice")] == ["P-2", "P-1"]
    assert [e["user_name"] for e in entries(db, patient="P-2")] == ["alice", "bob"]
    today = date.today()
    assert len(entries(db, user="alice", since=today.isoformat())) == 2
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert entries(db, user="alice", since=tomorrow) == []
    yesterday = (today - timedelta(days=1)).isoformat()
    assert entries(db, user="alice", until=yesterday) == []
    code, out, _ = ltfu(db, "audit", "--user", "alice", "--format", "csv")
    assert code == 0 and out.splitlines()[0].split(",")[:5] == [
        "audit_id",
        "at",
        "user_name",
        "action",
        "client",
    ]


def test_audit_refuses_reversed_dates(db: Store) -> None:  # noqa: F811
    code, _, err = ltfu(db, "audit", "--since", "2026-02-01", "--until", "2026-01-01")
    assert code == 2 and "after --until" in err


def test_audit_page_is_for_admins_only(db: Store) -> None:  # noqa: F811
    db.record_audit("alice", "view_patient", {"patient_id": "P-9"})
    at = app_as(db, "admin", "audit")
    assert not at.exception
    frame = at.dataframe[0].value
    assert "P-9" in frame["Patient"].to_list()
    assert "view patient" in frame["Action"].to_list()
    for role in ("viewer", "physician", "data_manager"):
        at = app_as(db, role, "audit")
        assert not at.dataframe
        assert [shown(w.value) for w in at.warning][0].startswith("Your role may not")


def test_readable_log_shows_words_not_json_nor_none(db: Store) -> None:  # noqa: F811
    db.record_audit(
        "alice",
        "download",
        {"what": "durability_csv", "filters": {"site": "LON"}, "patients": ["P-1", "P-2"]},
    )
    db.record_audit("bob", "sign_in", {"role": "admin", "locked": False})
    readable = audit.readable_log(audit.read_log(db, audit.AuditQuery()))
    assert readable.columns == audit.READABLE_COLUMNS
    by_user = {row["User"]: row for row in readable.iter_rows(named=True)}
    download = by_user["alice"]
    assert download["Action"] == "download" and download["Patient"] == ""
    assert download["Details"] == "what: durability_csv · filters: site: LON · patients: P-1, P-2"
    assert by_user["bob"]["Details"] == "role: admin · locked: no"
    assert by_user["bob"]["Action"] == "sign in"
    assert "T" not in download["When (UTC)"] and "+00:00" not in download["When (UTC)"]
    assert "None" not in " ".join(str(v) for row in readable.rows() for v in row)
