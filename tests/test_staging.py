"""Big SQLite inserts go through a scratch database (`monitoring/store/staging.py`): the store
holds exactly what the row-by-row insert stores, and the scratch file is private and gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from monitoring.errors import StoreWriteError
from monitoring.ingest import ingest_files
from monitoring.store import Store, staging
from monitoring.store.changes import Changes
from monitoring.store.store import SnapshotChangedError
from monitoring.synthetic import make_cohort, write_csv

AS_OF = date(2026, 6, 30)


def _stored(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the clinical tables with each cell's SQLite storage class."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with store.engine.connect() as conn:
        for table in ("patients", "visits", "alert_first_seen"):
            names = [
                r[1]
                for r in conn.exec_driver_sql(f"PRAGMA table_info({table})")
                if r[1] != "first_seen_at"  # the clock of each ingest
            ]
            cells = ", ".join(f'"{n}", typeof("{n}")' for n in names)
            keys = ", ".join(f'"{n}"' for n in names[:2])
            query = f"SELECT {cells} FROM {table} ORDER BY {keys}"
            out[table] = [tuple(r) for r in conn.exec_driver_sql(query)]
    return out


def _schema(store: Store) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        return [tuple(r) for r in conn.exec_driver_sql(query)]


def _ingest(tmp_path: Path, name: str, threshold: int) -> tuple[Store, list[Path]]:
    store = Store.open(f"sqlite:///{tmp_path / name / 'store.db'}")
    files = list(write_csv(make_cohort(150, seed=5), tmp_path / "csv"))
    original = staging.STAGE_AT_ROWS
    staging.STAGE_AT_ROWS = threshold
    try:
        ingest_files(store, files, today=AS_OF)
    finally:
        staging.STAGE_AT_ROWS = original
    return store, files


def test_staged_and_row_inserts_store_the_same_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    copies: list[str] = []
    original = staging.copy_statement

    def counting(table: str, *args: Any, **kwargs: Any) -> str:
        copies.append(table)
        return original(table, *args, **kwargs)

    monkeypatch.setattr(staging, "copy_statement", counting)
    by_rows, _ = _ingest(tmp_path, "rows", threshold=10**9)
    assert copies == []
    staged, _ = _ingest(tmp_path, "staged", threshold=1)
    # the three went through the scratch database
    assert sorted(copies) == ["alert_first_seen", "patients", "visits"]
    rows, copied = _stored(by_rows), _stored(staged)
    assert len(rows["visits"]) > 1000 and len(rows["alert_first_seen"]) > 0
    assert copied == rows
    # the ledger's patient index, dropped for the first copy, is back as it was, and whole
    assert _schema(staged) == _schema(by_rows)
    assert any(name == "alert_first_seen_patient" for _t, name, _tb, _sql in _schema(staged))
    with staged.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    # nulls, ISO dates, 0/1 booleans and reals are all present, stored alike
    classes = {c for row in copied["patients"] + copied["visits"] for c in row[1::2]}
    assert {"null", "text", "real", "integer"} <= classes
    assert not list((tmp_path / "staged").glob(".staging-*"))


def test_the_scratch_file_is_private_while_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    seen: list[tuple[Path, int]] = []
    original = staging.write_batch

    def watching(conn: object, name: str, batch: pl.DataFrame) -> None:
        for path in (tmp_path / "private").glob(".staging-*"):
            seen.append((path, stat.S_IMODE(path.stat().st_mode)))
        original(conn, name, batch)

    monkeypatch.setattr(staging, "write_batch", watching)
    os.umask(0o022)  # a library caller's umask: the file is private all the same
    try:
        _ingest(tmp_path, "private", threshold=1)
    finally:
        os.umask(0o077)
    assert seen and {mode for _path, mode in seen} == {0o600}
    assert not any(path.exists() for path, _mode in seen)


def test_a_refused_write_leaves_no_rows_and_no_scratch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store, _files = _ingest(tmp_path, "refused", threshold=10**9)
    before = _stored(store)
    frame = pl.DataFrame(
        {"patient_id": [f"NEW-{i}" for i in range(30)], "infusion_date": [AS_OF] * 30}
    )
    change = Changes(
        "patients", new=frame, changed=frame.clear(), cells=pl.DataFrame(), unchanged=0
    )
    monkeypatch.setattr(staging, "STAGE_AT_ROWS", 1)
    # another upload landed meanwhile: refused inside the transaction, after the staging
    with pytest.raises(SnapshotChangedError):
        store.apply_upload([("p.csv", "0" * 64, change)], user="t", expected_version=-1)
    assert _stored(store) == before
    assert not list((tmp_path / "refused").glob(".staging-*"))
    with store.engine.connect() as conn:  # the pooled connection went back detached
        attached = [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")]
    assert "main" in attached and staging.ALIAS not in attached


def test_a_dead_uploads_scratch_file_is_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store, _files = _ingest(tmp_path, "sweep", threshold=10**9)
    database = Path(store.engine.url.database or "")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    leftover = database.with_name(f".staging-{database.name}.{dead}.abc")
    mine = database.with_name(f".staging-{database.name}.{os.getpid()}.running")
    leftover.write_bytes(b"")
    mine.write_bytes(b"")
    frame = pl.DataFrame({"patient_id": ["X-1"], "infusion_date": [AS_OF]})
    monkeypatch.setattr(staging, "STAGE_AT_ROWS", 1)
    with staging.staged(store.engine, {"a": frame}) as staged_rows:
        assert staged_rows is not None and staged_rows.path.exists()
    assert not leftover.exists()  # its process is gone
    assert mine.exists()  # a live process's upload is left alone


def test_the_staged_ledger_write_adds_only_alerts_not_seen_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from monitoring.store.alert_ledger import record_first_seen

    store, _files = _ingest(tmp_path, "ledger", threshold=1)
    before = _stored(store)["alert_first_seen"]
    with store.engine.connect() as conn:
        known = pl.DataFrame(
            [
                tuple(r)
                for r in conn.exec_driver_sql(
                    "SELECT alert_id, patient_id, rule, triggered_on FROM alert_first_seen"
                )
            ],
            schema=["alert_id", "patient_id", "rule", "triggered_on"],
            orient="row",
        ).with_columns(pl.col("triggered_on").str.to_date())
    fresh = known.head(1).with_columns(alert_id=pl.lit("ffffffffffffffff"))
    monkeypatch.setattr(staging, "STAGE_AT_ROWS", 1)
    with store.engine.connect() as conn:
        upload_id = int(conn.exec_driver_sql("SELECT max(upload_id) FROM uploads").scalar() or 0)
    at = "2026-06-30T00:00:00Z"
    assert record_first_seen(store, upload_id, at, pl.concat([known, fresh])) == 1
    after = _stored(store)["alert_first_seen"]
    assert len(after) == len(before) + 1 and set(before) <= set(after)


def test_a_full_disk_while_staging_is_one_sentence_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store, _files = _ingest(tmp_path, "full", threshold=10**9)
    before = _stored(store)

    def full(conn: object, name: str, batch: pl.DataFrame) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(staging, "write_batch", full)
    monkeypatch.setattr(staging, "STAGE_AT_ROWS", 1)
    frame = pl.DataFrame({"patient_id": ["NEW-1"], "infusion_date": [AS_OF]})
    change = Changes(
        "patients", new=frame, changed=frame.clear(), cells=pl.DataFrame(), unchanged=0
    )
    with pytest.raises(StoreWriteError) as refused:
        store.apply_upload([("p.csv", "0" * 64, change)], user="t")
    sentence = str(refused.value)
    assert "nothing was written" in sentence and "OSError" in sentence
    assert str(tmp_path) not in sentence  # no path in the sentence
    assert _stored(store) == before
    assert not list((tmp_path / "full").glob(".staging-*"))
