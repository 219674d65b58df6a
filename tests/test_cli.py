"""The `ltfu` command line: exit codes 0 / 1 / 2 and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitoring.cli import main
from tests.conftest import VISITS_HEADER, write_csv


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_init_and_status(db: str, capsys: pytest.CaptureFixture[str]):
    assert main(["--db", db, "init"]) == 0
    assert main(["--db", db, "status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert {"patients": 0, "visits": 0, "uploads": 0}.items() <= status.items()
    assert "open_alerts" in status


def test_ingest_ok_then_unchanged(db: str, two_patients: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--db", db, "ingest", str(two_patients)]) == 0
    assert "patients: 2 new, 0 changed, 0 unchanged" in capsys.readouterr().out
    assert main(["--db", db, "ingest", str(two_patients)]) == 0
    assert "patients: 0 new, 0 changed, 2 unchanged" in capsys.readouterr().out


def test_rejected_ingest_exits_1_and_writes_report(
    db: str, tmp_path: Path, two_patients: Path, capsys
):
    bad = write_csv(tmp_path / "visits.csv", VISITS_HEADER, "P-001,2024-02-07,CR,1,BM,5,0.1,450,no")
    report = tmp_path / "report.csv"
    assert main(["--db", db, "ingest", str(two_patients), str(bad), "--report", str(report)]) == 1
    err = capsys.readouterr().err
    assert "Nothing was written" in err and "mrd_flow_fraction" in err
    text = report.read_text(encoding="utf-8").splitlines()
    assert text[0] == "file,row,patient_id,column,value,problem,severity"
    assert text[1].startswith("visits.csv,2,P-001,mrd_flow_fraction,5,")
    assert main(["--db", db, "status", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["patients"] == 0


def test_dry_run_and_kind(db: str, two_patients: Path, capsys):
    assert main(["--db", db, "ingest", str(two_patients), "--dry-run", "--kind", "patients"]) == 0
    assert "dry run, nothing written" in capsys.readouterr().out
    main(["--db", db, "status", "--format", "json"])
    assert json.loads(capsys.readouterr().out)["patients"] == 0


@pytest.mark.parametrize(
    "args",
    [["ingest", "missing.csv"], ["ingest"], ["bogus"], ["ingest", "x.csv", "--date-format", "YMD"]],
)
def test_usage_and_unreadable_exit_2(db: str, args: list[str], capsys):
    try:
        code = main(["--db", db, *args])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_demo_out_writes_csvs(tmp_path: Path):
    assert main(["demo", "--patients", "12", "--seed", "3", "--out", str(tmp_path / "demo")]) == 0
    assert (
        (tmp_path / "demo" / "patients.csv").read_text(encoding="utf-8").startswith("patient_id,")
    )
    assert (tmp_path / "demo" / "visits.csv").exists()


def test_demo_loads_into_store(db: str, capsys):
    assert main(["--db", db, "demo", "--patients", "20", "--seed", "5"]) == 0
    capsys.readouterr()
    main(["--db", db, "status", "--format", "json"])
    status = json.loads(capsys.readouterr().out)
    assert status["patients"] == 20 and status["visits"] > 20


def test_database_url_from_environment(tmp_path: Path, monkeypatch, two_patients: Path, capsys):
    monkeypatch.setenv("LTFU_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert main(["ingest", str(two_patients)]) == 0
    assert (tmp_path / "env.db").exists()
