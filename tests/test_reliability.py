"""Concurrency and backup/restore, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from monitoring.cli import main
from monitoring.store import Store


def _cohort_files(folder: Path, prefix: str, n: int, visits_each: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"{prefix}-{i:04d}" for i in range(n)]
    pl.DataFrame({"patient_id": ids, "infusion_date": [date(2023, 1, 1)] * n}).write_csv(
        folder / "patients.csv"
    )
    pl.DataFrame(
        {
            "patient_id": [pid for pid in ids for _ in range(visits_each)],
            "visit_date": [
                date(2023, 1, 1) + timedelta(days=29 * k) for _ in ids for k in range(visits_each)
            ],
            "bcell_per_ul": [float(k) for _ in ids for k in range(visits_each)],
        }
    ).write_csv(folder / "visits.csv")
    return [folder / "patients.csv", folder / "visits.csv"]


def test_two_ingests_and_reads_at_once(tmp_path: Path, store_url: str):
    store = Store.open(store_url)
    uploads = [_cohort_files(tmp_path / name, name, 1500, 10) for name in ("A", "B")]
    errors: list[BaseException] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        try:
            while not stop.is_set():
                _version, patients, visits = store.snapshot()
                # a snapshot is consistent: every visit's patient is there
                assert visits.join(patients, on="patient_id", how="anti").height == 0
                reads += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "monitoring.cli", "--db", store_url, "ingest", *map(str, files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for files in uploads
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    stop.set()
    thread.join(60)
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("locked" in err for _out, err in outputs)
    assert not errors, errors
    assert reads > 0
    counts = store.counts()
    assert counts == {"patients": 3000, "visits": 30000, "uploads": 4}
    assert store.data_version() == 2
    store.close()


def _status(url: str, capsys) -> str:
    capsys.readouterr()
    main(["--db", url, "status", "--format", "json"])
    main(
        [
            "--db",
            url,
            "durability",
            "--endpoint",
            "os",
            "--summary",
            "--format",
            "json",
            "--as-of",
            "2026-06-30",
        ]
    )
    return capsys.readouterr().out


def test_backup_and_restore_give_the_same_answers(tmp_path: Path, store_url: str, capsys):
    assert main(["--db", store_url, "demo", "--patients", "40", "--seed", "4"]) == 0
    before = _status(store_url, capsys)
    backup_path = tmp_path / "backup.bin"
    assert main(["--db", store_url, "backup", str(backup_path)]) == 0
    # damage the store after the backup: a new upload
    extra = _cohort_files(tmp_path / "extra", "X", 3, 2)
    assert main(["--db", store_url, "ingest", *map(str, extra)]) == 0
    assert _status(store_url, capsys) != before
    assert main(["--db", store_url, "restore", str(backup_path)]) == 0
    after = _status(store_url, capsys)
    # the restore adds its own audit entry but data, counts and curves are as at backup time
    assert after == before


def test_restore_refuses_a_non_backup(tmp_path: Path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a database")
    assert main(["--db", url, "restore", str(junk)]) == 2
    assert "no checksum file junk.bin.sha256" in capsys.readouterr().err
    # with a matching checksum file it is still refused: not an SQLite database
    import hashlib

    digest = hashlib.sha256(junk.read_bytes()).hexdigest()
    (tmp_path / "junk.bin.sha256").write_text(f"{digest}  junk.bin\n", encoding="utf-8")
    assert main(["--db", url, "restore", str(junk)]) == 2
    assert "it is not an SQLite database; nothing was restored." in capsys.readouterr().err


@pytest.mark.parametrize(
    "text", ["x'); DROP TABLE visits; --", 'Robert"); DELETE FROM patients;--', "=cmd|'/c calc'!A1"]
)
def test_injection_strings_are_stored_verbatim(store: Store, tmp_path: Path, text: str):
    from monitoring.ingest import ingest_files

    path = tmp_path / "patients.csv"
    quoted = '"' + text.replace('"', '""') + '"'
    path.write_text(
        f"patient_id,site,product,infusion_date\nP-1,{quoted},{quoted},2024-01-01\n",
        encoding="utf-8",
    )
    ingest_files(store, [path])
    row = store.patients().row(0, named=True)
    assert row["site"] == text and row["product"] == text
    assert store.counts()["patients"] == 1
