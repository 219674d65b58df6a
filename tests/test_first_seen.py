"""The first-seen ledger, the Alerts page's order and "new" mark, per-user page visits, and
bulk acknowledgement (CONTRACT §4, §5 `ltfu ack`)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from monitoring.alert_queue import acknowledgement_history, alerts_with_status, flag_patient
from monitoring.bulk_ack import AckFilter, acknowledge_ids, acknowledge_matching
from monitoring.cli import main
from monitoring.errors import NotFoundError, UsageError
from monitoring.first_seen import (
    first_seen_since,
    inbox,
    mark_new,
    queue_with_first_seen,
)
from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.store.alert_ledger import last_page_visit, read_first_seen, record_page_visit
from tests.factories import d, patient, patients_frame, visit, visits_frame

CR = {"disease_status": "CR", "mrd_sample": "BM", "mrd_flow_fraction": 0.0}
NEG = {"mrd_sample": "BM", "mrd_flow_fraction": 0.0}
# infused 250 days ago, with a marrow MRD result in every closed window: only the alerts below
INF = date.today() - timedelta(days=250)
PATIENTS = [patient(p, infusion_date=INF) for p in ("A", "B", "C")]
FIRST = [
    visit("A", 28, INF, **CR),
    visit("A", 60, INF, igg_mg_dl=300, ivig_within_30d=False),  # hypogammaglobulinemia (medium)
    visit("A", 90, INF, **NEG),
    visit("A", 180, INF, **NEG),
    visit("B", 28, INF, **CR),
    visit("B", 90, INF, **NEG),
    visit("B", 120, INF, mrd_sample="BM", mrd_flow_fraction=0.001),  # mrd_reemergence (high)
    visit("B", 180, INF, mrd_sample="BM", mrd_flow_fraction=0.001),
    visit("C", 28, INF, **CR),
    visit("C", 90, INF, **NEG),
    visit("C", 180, INF, **NEG),
]
SECOND = [visit("C", 200, INF, disease_status="relapse", bm_blasts_pct=40)]  # relapse (critical)


def dd(day: int) -> date:
    return d(day, INF)


def upload(store: Store, tmp_path: Path, visits: list[dict[str, Any]], name: str) -> int:
    patients_csv = tmp_path / f"p-{name}.csv"
    visits_csv = tmp_path / f"v-{name}.csv"
    patients_frame(*PATIENTS).write_csv(patients_csv)
    visits_frame(*visits).write_csv(visits_csv)
    result = ingest_files(store, [patients_csv, visits_csv], user="dm")
    assert result.summary is not None
    return result.summary.upload_ids[-1]


def rules_of(frame: pl.DataFrame) -> list[str]:
    return frame["rule"].to_list()


@pytest.fixture
def two_uploads(store: Store, tmp_path: Path) -> tuple[Store, int, int]:
    first = upload(store, tmp_path, FIRST, "1")
    second = upload(store, tmp_path, FIRST + SECOND, "2")
    return store, first, second


def test_each_upload_records_the_alerts_that_first_appear_with_it(
    two_uploads: tuple[Store, int, int], tmp_path: Path
) -> None:
    store, first, second = two_uploads
    uploads = {r["upload_id"]: r["uploaded_at"] for r in store.uploads().iter_rows(named=True)}
    queue = queue_with_first_seen(store, status="all")
    seen = {r["rule"]: r for r in queue.iter_rows(named=True)}
    assert seen["hypogammaglobulinemia"]["first_seen_upload"] == first
    assert seen["mrd_reemergence"]["first_seen_at"] == uploads[first]
    assert seen["relapse"]["first_seen_upload"] == second
    assert seen["relapse"]["first_seen_at"] == uploads[second]
    assert read_first_seen(store).height == 3
    # a re-upload of the same data records nothing new and changes no first-seen time
    # (in tmp_path: on PostgreSQL the database URL names no folder, and this wrote into the
    # working directory, the stray p-3.csv / v-3.csv of the repository root)
    assert upload(store, tmp_path, FIRST + SECOND, "3")
    assert read_first_seen(store).sort("alert_id").equals(read_first_seen(store).sort("alert_id"))
    again = queue_with_first_seen(store, status="all")
    assert again.sort("alert_id")["first_seen_upload"].to_list() == (
        queue.sort("alert_id")["first_seen_upload"].to_list()
    )


def test_unrecorded_alert_and_flag_first_seen(store: Store, tmp_path: Path) -> None:
    today = date.today()
    recent = today - timedelta(days=30)  # its day 21-35 window closes in 5 days
    global PATIENTS
    saved = PATIENTS
    PATIENTS = [patient("N", infusion_date=recent)]
    try:
        upload(store, tmp_path, [visit("N", 28, recent, disease_status="CR")], "n")
    finally:
        PATIENTS = saved
    later = today + timedelta(days=10)
    queue = queue_with_first_seen(store, as_of=later, status="all")
    missed = queue.filter(pl.col("rule") == "missed_mrd_assessment").row(0, named=True)
    assert missed["first_seen_upload"] is None
    assert missed["first_seen_at"] == later.isoformat()
    flag_patient(store, "N", "dr", "high", "worried")
    flags = queue_with_first_seen(store, status="all").filter(pl.col("rule") == "physician_flag")
    assert flags.height == 1
    assert flags["first_seen_at"][0].startswith(today.isoformat() + "T")


def test_inbox_order_new_mark_and_since_filter(two_uploads: tuple[Store, int, int]) -> None:
    store, first, second = two_uploads
    uploads = {r["upload_id"]: r["uploaded_at"] for r in store.uploads().iter_rows(named=True)}
    queue = inbox(queue_with_first_seen(store))
    assert rules_of(queue) == ["relapse", "mrd_reemergence", "hypogammaglobulinemia"]
    # nothing is new for a user who never opened the page; after a visit, only what came later
    assert not mark_new(queue, None)["new"].any()
    just_before = uploads[second][:19]  # a prefix sorts before the full time
    marked = mark_new(queue, just_before)
    assert marked.filter(pl.col("new"))["rule"].to_list() == (
        ["relapse"] if uploads[first] < uploads[second] else rules_of(queue)
    )
    assert rules_of(first_seen_since(queue, upload_id=second, since=uploads[second])) == ["relapse"]
    assert len(first_seen_since(queue, upload_id=first, since=uploads[first])) == 3
    assert len(first_seen_since(queue, since=date.today().isoformat())) == 3
    assert first_seen_since(queue, since=(date.today() + timedelta(days=1)).isoformat()).is_empty()


def test_new_mark_compares_first_seen_with_the_last_visit() -> None:
    frame = pl.DataFrame(
        {"first_seen_at": ["2026-01-01T10:00:00+00:00", "2026-01-01T10:00:02+00:00", "2026-01-02"]}
    )
    assert mark_new(frame, "2026-01-01T10:00:01+00:00")["new"].to_list() == [False, True, True]
    assert mark_new(frame, "2026-01-02T00:00:00+00:00")["new"].to_list() == [False, False, False]


def test_newest_first_within_a_severity() -> None:
    frame = pl.DataFrame(
        {
            "alert_id": ["old", "new", "crit"],
            "patient_id": ["P", "Q", "R"],
            "rule": ["x", "x", "y"],
            "severity": ["medium", "medium", "critical"],
            "triggered_on": [d(10), d(5), d(1)],
            "first_seen_at": ["2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00", "2025"],
        }
    )
    assert inbox(frame)["alert_id"].to_list() == ["crit", "new", "old"]


def test_page_visits_are_per_user(store: Store) -> None:
    assert last_page_visit(store, "dr", "alerts") is None
    assert record_page_visit(store, "dr", "alerts", "2026-01-01T10:00:00+00:00") is None
    assert record_page_visit(store, "dr", "alerts", "2026-01-02T10:00:00+00:00") == (
        "2026-01-01T10:00:00+00:00"
    )
    assert last_page_visit(store, "dr", "alerts") == "2026-01-02T10:00:00+00:00"
    assert last_page_visit(store, "other", "alerts") is None


# ---- bulk acknowledgement ------------------------------------------------------------------
def test_acknowledge_several_ids_each_its_own_record(two_uploads: tuple[Store, int, int]) -> None:
    store, _first, _second = two_uploads
    queue = alerts_with_status(store)
    ids = queue["alert_id"].to_list()
    with pytest.raises(NotFoundError, match="nothing was acknowledged"):
        acknowledge_ids(store, [ids[0], "no-such-id"], "dr", "seen")
    assert acknowledgement_history(store).is_empty()
    result = acknowledge_ids(store, ids[:2], "dr", "reviewed at clinic")
    assert result.count == 2 and list(result.alert_ids) == ids[:2]
    history = acknowledgement_history(store)
    assert sorted(history["alert_id"].to_list()) == sorted(ids[:2])
    assert set(history["note"]) == {"reviewed at clinic"}
    audit = store.audit_log().filter(pl.col("action") == "acknowledge_alert")
    assert sorted(json.loads(x)["alert_id"] for x in audit["detail"]) == sorted(ids[:2])
    assert alerts_with_status(store)["alert_id"].to_list() == ids[2:]


def test_acknowledge_matching_filters(two_uploads: tuple[Store, int, int]) -> None:
    store, _first, _second = two_uploads
    with pytest.raises(UsageError, match="at least one filter"):
        acknowledge_matching(store, AckFilter(), "dr", "go-live")
    with pytest.raises(UsageError, match="severity"):
        acknowledge_matching(store, AckFilter(severity="urgent"), "dr", "x")
    # triggered before day 90: only the day-60 hypogammaglobulinemia
    result = acknowledge_matching(store, AckFilter(triggered_before=dd(90)), "dr", "go-live")
    assert result.count == 1
    assert rules_of(alerts_with_status(store)) == ["relapse", "mrd_reemergence"]
    # exactly on the date is not before it
    assert acknowledge_matching(store, AckFilter(triggered_before=dd(90)), "dr", "x").count == 0
    both = AckFilter(severity="critical", patient_id="B")
    assert acknowledge_matching(store, both, "dr", "x").count == 0
    assert acknowledge_matching(store, AckFilter(rule="relapse"), "dr", "x").count == 1
    with pytest.raises(UsageError, match="note"):
        acknowledge_matching(store, AckFilter(patient_id="B"), "dr", "  ")


def test_cli_ack_several_and_all(
    two_uploads: tuple[Store, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _first, _second = two_uploads
    db = str(store.engine.url)
    ids = alerts_with_status(store)["alert_id"].to_list()
    assert main(["--db", db, "ack", "--all", "--user", "dr", "--note", "x"]) == 2
    assert "at least one filter" in capsys.readouterr().err
    assert main(["--db", db, "ack", "--rule", "relapse", "--user", "dr", "--note", "x"]) == 2
    assert main(["--db", db, "ack", *ids[1:], "--user", "dr", "--note", "seen"]) == 0
    assert "acknowledged 2 alert(s)" in capsys.readouterr().out
    before = dd(201).isoformat()
    argv = ["ack", "--all", "--triggered-before", before, "--user", "dr", "--note", "go-live"]
    assert main(["--db", db, *argv]) == 0
    assert capsys.readouterr().out.strip() == "acknowledged 1 alert(s) by dr"
    assert alerts_with_status(store).is_empty()
