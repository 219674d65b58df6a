"""The alert queue over time: uploads, evaluation as of successive dates, acknowledgements that
survive recomputation and re-upload, physician flags, the CLI and the FHIR bundle."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from monitoring.alert_queue import (
    acknowledge,
    acknowledgement_history,
    alerts_with_status,
    flag_patient,
    open_alert_count,
)
from monitoring.cli import main
from monitoring.errors import NotFoundError, UsageError
from monitoring.fhir import RULE_SYSTEM, alerts_to_fhir_bundle
from monitoring.ingest import ingest_files
from monitoring.store import Store
from tests.factories import d, patient, patients_frame, visit, visits_frame

PATIENTS = [patient(pid, site="A", last_contact_date=None) for pid in ("A", "B", "C")]

STAGE_1 = [
    # A: MRD-negative remission, then NGS MRD re-emerges on day 150
    visit("A", 28, disease_status="CR", mrd_sample="BM", mrd_flow_fraction=0.0),
    visit("A", 90, disease_status="CR", mrd_sample="BM", mrd_ngs_fraction=0.0),
    visit("A", 150, disease_status="CR", mrd_sample="BM", mrd_ngs_fraction=2e-5),
    # B: early B-cell recovery dated day 90, confirmed day 120
    visit("B", 28, disease_status="CR", mrd_sample="BM", mrd_flow_fraction=0.0),
    visit(
        "B",
        90,
        mrd_sample="BM",
        mrd_flow_fraction=0.0,
        bcell_pct_lymphocytes=2.4,
        bcell_per_ul=88,
    ),
    visit("B", 120, bcell_pct_lymphocytes=3.0, bcell_per_ul=120),
    # C: low native IgG on day 60
    visit("C", 28, disease_status="CR", mrd_sample="BM", mrd_flow_fraction=0.0),
    visit("C", 60, igg_mg_dl=300, ivig_within_30d=False),
    visit("C", 90, mrd_sample="BM", mrd_flow_fraction=0.0),
]
STAGE_2 = [
    visit("A", 200, mrd_sample="BM", mrd_ngs_fraction=5e-4),
    visit(
        "A",
        240,
        disease_status="relapse",
        bm_blasts_pct=40,
        mrd_sample="BM",
        mrd_flow_fraction=0.3,
        cd19_status="negative",
    ),
    visit("B", 180, mrd_sample="BM", mrd_flow_fraction=0.0, igg_mg_dl=350),
    visit("C", 180, mrd_sample="BM", mrd_flow_fraction=0.0),
]


def _csv(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_csv(path)
    return path


def upload(store: Store, tmp_path: Path, visits: list[dict[str, Any]], name: str) -> None:
    patients = _csv(tmp_path / f"patients-{name}.csv", patients_frame(*PATIENTS))
    visits_csv = _csv(tmp_path / f"visits-{name}.csv", visits_frame(*visits))
    ingest_files(store, [patients, visits_csv], user="dm")


def by_key(queue: pl.DataFrame) -> dict[tuple[str, str, date], dict[str, Any]]:
    return {(r["patient_id"], r["rule"], r["triggered_on"]): r for r in queue.iter_rows(named=True)}


@pytest.fixture
def staged(store: Store, tmp_path: Path) -> Store:
    upload(store, tmp_path, STAGE_1, "1")
    return store


def test_scenario_over_time(staged: Store, tmp_path: Path):
    store = staged
    first = alerts_with_status(store, as_of=d(150), status="all")
    assert set(by_key(first)) == {
        ("A", "mrd_reemergence", d(150)),
        ("B", "early_bcell_recovery", d(90)),
        ("C", "hypogammaglobulinemia", d(60)),
    }
    assert set(first["status"]) == {"open"}
    ids = by_key(first)
    b_id = ids[("B", "early_bcell_recovery", d(90))]["alert_id"]
    c_id = ids[("C", "hypogammaglobulinemia", d(60))]["alert_id"]
    version = store.data_version()
    acknowledge(store, b_id, "dr_b", "reinfusion planned", as_of=d(150))
    acknowledge(store, c_id, "dr_c", "IVIG started", as_of=d(150))
    assert store.data_version() == version + 2
    audit = store.audit_log()
    assert audit.filter(pl.col("action") == "acknowledge_alert").height == 2

    # recomputation: same ids, same statuses
    again = alerts_with_status(store, as_of=d(150), status="all")
    assert again["alert_id"].to_list() == first["alert_id"].to_list()
    assert set(alerts_with_status(store, as_of=d(150), status="open")["alert_id"]) == {
        ids[("A", "mrd_reemergence", d(150))]["alert_id"]
    }

    # new visits: the acknowledged stay acknowledged, only new alerts appear, all dated later
    upload(store, tmp_path, STAGE_1 + STAGE_2, "2")
    second = alerts_with_status(store, as_of=d(260), status="all")
    keyed = by_key(second)
    assert set(first["alert_id"]) <= set(second["alert_id"])
    new = second.filter(~pl.col("alert_id").is_in(first["alert_id"].to_list()))
    assert set(zip(new["patient_id"], new["rule"], new["triggered_on"], strict=True)) == {
        ("A", "mrd_rising", d(200)),
        ("A", "relapse", d(240)),
        ("A", "antigen_escape", d(240)),
        ("B", "hypogammaglobulinemia", d(180)),
    }
    assert set(new["status"]) == {"open"}
    b_row = keyed[("B", "early_bcell_recovery", d(90))]
    assert (b_row["status"], b_row["acknowledged_by"], b_row["ack_note"]) == (
        "acknowledged",
        "dr_b",
        "reinfusion planned",
    )
    assert keyed[("A", "mrd_reemergence", d(150))]["status"] == "open"

    # an identical re-upload changes nothing
    upload(store, tmp_path, STAGE_1 + STAGE_2, "3")
    third = alerts_with_status(store, as_of=d(260), status="all")
    assert third.select("alert_id", "status").equals(second.select("alert_id", "status"))

    # a worsening signal with a new triggering date is a new, open alert
    upload(store, tmp_path, [visit("C", 250, mrd_sample="BM", mrd_ngs_fraction=1e-4)], "4")
    fourth = by_key(alerts_with_status(store, as_of=d(260), status="all"))
    assert fourth[("C", "mrd_reemergence", d(250))]["status"] == "open"
    assert fourth[("C", "hypogammaglobulinemia", d(60))]["status"] == "acknowledged"

    # the queue is sorted by severity then date
    ranks = {"critical": 0, "high": 1, "medium": 2, "data": 3}
    keys = [(ranks[s], t) for s, t in zip(second["severity"], second["triggered_on"], strict=True)]
    assert keys == sorted(keys)


def test_reacknowledgement_adds_a_row(staged: Store):
    queue = alerts_with_status(staged, as_of=d(150), status="all")
    target = queue["alert_id"][0]
    acknowledge(staged, target, "dr_a", "seen", as_of=d(150))
    acknowledge(staged, target, "dr_b", "discussed at tumour board", as_of=d(150))
    history = acknowledgement_history(staged, target)
    assert history["user_name"].to_list() == ["dr_a", "dr_b"]
    assert acknowledgement_history(staged).height == 2
    row = alerts_with_status(staged, as_of=d(150), status="acknowledged").row(0, named=True)
    assert (row["acknowledged_by"], row["ack_note"], row["ack_count"]) == (
        "dr_b",
        "discussed at tumour board",
        2,
    )


def test_acknowledge_errors(staged: Store):
    target = alerts_with_status(staged, as_of=d(150))["alert_id"][0]
    with pytest.raises(NotFoundError):
        acknowledge(staged, "0000000000000000", "dr_a", "seen", as_of=d(150))
    with pytest.raises(UsageError):
        acknowledge(staged, target, "dr_a", "   ", as_of=d(150))
    with pytest.raises(UsageError):
        alerts_with_status(staged, as_of=d(150), status="closed")
    assert acknowledgement_history(staged).height == 0


def test_flags_join_the_queue(staged: Store):
    flag_id = flag_patient(staged, "A", "dr_a", "high", "weight loss", raised_on=d(140))
    queue = by_key(alerts_with_status(staged, as_of=d(150), status="all"))
    flag = queue[("A", "physician_flag", d(140))]
    assert flag["alert_id"] == flag_id and flag["severity"] == "high"
    assert "dr_a" in flag["message"] and "weight loss" in flag["message"]
    acknowledge(staged, flag_id, "dr_b", "seen in clinic", as_of=d(150))
    assert by_key(alerts_with_status(staged, as_of=d(150), status="all"))[
        ("A", "physician_flag", d(140))
    ]["status"] == ("acknowledged")
    with pytest.raises(NotFoundError):
        flag_patient(staged, "ZZZ", "dr_a", "high", "who?")
    with pytest.raises(UsageError):
        flag_patient(staged, "A", "dr_a", "data", "not a physician severity")
    with pytest.raises(UsageError):
        flag_patient(staged, "A", "dr_a", "high", "")
    assert staged.audit_log().filter(pl.col("action") == "flag_patient").height == 1


def test_open_alert_count_and_status(staged: Store, capsys: pytest.CaptureFixture[str]):
    # as of today every stage-1 alert exists (plus data alerts for missed windows / contact)
    count = open_alert_count(staged)
    assert count == alerts_with_status(staged, status="open").height > 0
    assert main(["--db", str(staged.engine.url), "status", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["open_alerts"] == count


# ---- CLI -----------------------------------------------------------------------------------
def _cli_json(db: str, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["--db", db, "alerts", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_alerts_ack_flag(staged: Store, capsys: pytest.CaptureFixture[str]):
    db = str(staged.engine.url)
    items = _cli_json(db, capsys, "--as-of", d(150).isoformat(), "--status", "all")
    assert len(items) == 3
    for item in items:
        assert set(item) == {
            "alert_id",
            "patient_id",
            "rule",
            "severity",
            "triggered_on",
            "message",
            "evidence",
            "status",
            "first_seen_at",
        }
        assert isinstance(item["evidence"], dict) and item["status"] == "open"
    reemergence = next(i for i in items if i["rule"] == "mrd_reemergence")
    assert reemergence["triggered_on"] == d(150).isoformat()
    assert reemergence["evidence"]["mrd_ngs_fraction"] == pytest.approx(2e-5)

    assert (
        main(["--db", db, "ack", reemergence["alert_id"], "--user", "dr_a", "--note", "BM repeat"])
        == 0
    )
    assert "acknowledged " + reemergence["alert_id"] in capsys.readouterr().out
    acked = _cli_json(db, capsys, "--as-of", d(150).isoformat(), "--status", "acknowledged")
    assert [i["alert_id"] for i in acked] == [reemergence["alert_id"]]
    still_open = _cli_json(db, capsys, "--as-of", d(150).isoformat())
    assert reemergence["alert_id"] not in {i["alert_id"] for i in still_open}
    assert len(still_open) == 2

    assert main(["--db", db, "ack", "ffffffffffffffff", "--user", "dr_a", "--note", "x"]) == 2
    assert "no alert" in capsys.readouterr().err
    assert main(["--db", db, "ack", reemergence["alert_id"], "--user", "dr_a", "--note", " "]) == 2
    capsys.readouterr()

    assert (
        main(
            ["--db", db, "flag", "B", "--user", "dr_b", "--severity", "critical", "--note", "fever"]
        )
        == 0
    )
    assert "flagged B (critical)" in capsys.readouterr().out
    today = _cli_json(db, capsys, "--status", "open")
    flag = next(i for i in today if i["rule"] == "physician_flag")
    assert (flag["patient_id"], flag["severity"], flag["triggered_on"]) == (
        "B",
        "critical",
        date.today().isoformat(),
    )
    assert (
        main(["--db", db, "flag", "NOPE", "--user", "dr_b", "--severity", "high", "--note", "x"])
        == 2
    )
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--db", db, "flag", "B", "--user", "dr_b", "--severity", "data", "--note", "x"])
    capsys.readouterr()

    assert main(["--db", db, "alerts", "--as-of", d(150).isoformat(), "--status", "all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("alert_id,patient_id,rule,severity,triggered_on,day,message")
    assert len(lines) == 4

    assert (
        main(
            [
                "--db",
                db,
                "alerts",
                "--as-of",
                d(150).isoformat(),
                "--status",
                "all",
                "--format",
                "fhir",
            ]
        )
        == 0
    )
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 3


# ---- FHIR ----------------------------------------------------------------------------------
def test_fhir_bundle_shape(staged: Store):
    queue = alerts_with_status(staged, as_of=d(150), status="all")
    acknowledge(staged, queue["alert_id"][0], "dr_a", "seen", as_of=d(150))
    queue = alerts_with_status(staged, as_of=d(150), status="all")
    bundle = alerts_to_fhir_bundle(queue)
    json.dumps(bundle)  # serialisable
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert len(bundle["entry"]) == queue.height
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls) and all(
        u.startswith("urn:uuid:") for u in full_urls
    )
    statuses = {}
    for entry, alert in zip(bundle["entry"], queue.iter_rows(named=True), strict=True):
        issue = entry["resource"]
        assert issue["resourceType"] == "DetectedIssue"
        assert issue["id"] == alert["alert_id"]
        assert issue["status"] in {"preliminary", "final"}
        assert issue["severity"] in {"high", "moderate", "low"}
        assert issue["patient"] == {"reference": f"Patient/{alert['patient_id']}"}
        assert issue["identifiedDateTime"] == alert["triggered_on"].isoformat()
        coding = issue["code"]["coding"][0]
        assert coding["system"] == RULE_SYSTEM and coding["code"] == alert["rule"]
        assert coding["display"]
        assert issue["detail"] == alert["message"]
        assert json.loads(issue["evidence"][0]["code"][0]["text"]) == json.loads(alert["evidence"])
        statuses[alert["alert_id"]] = issue
    acked = statuses[queue.filter(pl.col("status") == "acknowledged")["alert_id"][0]]
    assert acked["status"] == "final"
    mitigation = acked["mitigation"][0]
    assert mitigation["action"]["text"] == "seen" and mitigation["author"] == {"display": "dr_a"}
    assert mitigation["date"]
    opened = [i for i in statuses.values() if i["status"] == "preliminary"]
    assert opened and all("mitigation" not in i for i in opened)
    severities = {
        a["rule"]: statuses[a["alert_id"]]["severity"] for a in queue.iter_rows(named=True)
    }
    assert severities == {
        "mrd_reemergence": "high",
        "early_bcell_recovery": "high",
        "hypogammaglobulinemia": "moderate",
    }
