"""The `ltfu` command line: exit codes 0 / 1 / 2 and what it prints."""

from __future__ import annotations

import io
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


def test_every_error_class_has_one_exit_code_and_subclasses_inherit_it():
    import monitoring.errors as errors_module
    from monitoring.cli.exit_codes import EXIT_CODES, exit_code
    from monitoring.errors import LtfuError, RejectedUploadError, UnreadableFileError

    declared = {
        obj
        for obj in vars(errors_module).values()
        if isinstance(obj, type) and issubclass(obj, LtfuError)
    }
    assert declared == set(EXIT_CODES), "a new error in errors.py needs its exit code"

    class TooLarge(UnreadableFileError):
        pass

    assert exit_code(TooLarge("x")) == 2
    assert exit_code(RejectedUploadError("x")) == 1


def test_every_store_a_command_opens_is_closed(db: str, monkeypatch, capsys):
    from monitoring.store import Store

    opened: list[Store] = []
    closed: list[Store] = []
    real_open, real_close = Store.open, Store.close

    def tracking_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        store = real_open(*args, **kwargs)
        opened.append(store)
        return store

    def tracking_close(self):  # type: ignore[no-untyped-def]
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(Store, "open", tracking_open)
    monkeypatch.setattr(Store, "close", tracking_close)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    for argv in (
        ["init"],
        ["status"],
        ["user", "add", "ana", "--role", "viewer"],
        ["user", "list"],
        ["user", "disable", "ana"],
        ["user", "disable", "nobody"],  # fails: the store is closed all the same
        ["alerts", "--as-of", "2025-01-01"],
        ["ack", "NOPE", "--user", "u", "--note", "n"],
    ):
        main(["--db", db, *argv])
    assert len(opened) == 8 and {id(s) for s in opened} <= {id(s) for s in closed}


def test_profile_draft_writes_into_a_missing_folder_privately_and_refuses_an_unwritable_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    export = Path(__file__).resolve().parents[1] / "sample_data" / "redcap" / "export_raw.csv"
    out = tmp_path / "profiles" / "site.toml"
    assert main(["profile", "draft", str(export), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").strip()
    assert out.stat().st_mode & 0o777 == 0o600 and out.parent.stat().st_mode & 0o777 == 0o700
    # a folder that is a file: one sentence and exit 2, not a traceback
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    capsys.readouterr()
    assert main(["profile", "draft", str(export), "--out", str(blocker / "site.toml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot write" in err and str(blocker) in err
