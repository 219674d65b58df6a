"""Restore that cannot destroy (issue 16, item 3), on SQLite and PostgreSQL: corrupt, foreign,
empty, truncated and other-version backups are refused with one sentence (exit 2) and the store
unchanged, row for row; a good backup restores; a restore that fails after the replacement puts
the safety copy back."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitoring.backup import BackupRefusedError, backup, checksum_path, restore
from monitoring.cli import main
from monitoring.ingest import ingest_tables
from monitoring.ingest.read import read_bytes
from monitoring.store import Store
from monitoring.store import backup as store_backup
from monitoring.store import tables as t
from monitoring.store.engine import make_engine

PATIENTS = b"patient_id,infusion_date\nP-1,2024-01-01\nP-2,2024-02-01\n"
VISITS = b"patient_id,visit_date,disease_status\nP-1,2024-02-02,CR\nP-2,2024-03-01,CR\n"


def row_hashes(store: Store) -> dict[str, str]:
    """sha256 of every table's rows in key order."""
    hashes: dict[str, str] = {}
    with store.engine.connect() as conn:
        for name, table in sorted(t.metadata.tables.items()):
            rows = conn.execute(sa.select(table).order_by(*table.columns)).fetchall()
            hashes[name] = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    return hashes


def _seal(path: Path) -> Path:
    """A checksum file that matches the file as it is now (so deeper checks must refuse it)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    checksum_path(path).write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return path


@pytest.fixture
def filled(store: Store, tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    ingest_tables(store, [read_bytes(PATIENTS, "patients.csv")])
    good = backup(store, tmp_path / "backups" / "good.bak")
    ingest_tables(store, [read_bytes(VISITS, "visits.csv")])  # the store moves on
    yield store, good


def _corrupt(good: Path, folder: Path) -> Path:
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 512] = b"\xa5" * 512
    (path := folder / "corrupt.bak").write_bytes(bytes(data))
    checksum_path(path).write_text(checksum_path(good).read_text().replace("good", "corrupt"))
    return path  # the old checksum: refused by it


def _corrupt_sealed(good: Path, folder: Path) -> Path:
    data = bytearray(good.read_bytes())
    if data.startswith(b"SQLite format 3"):
        page = int.from_bytes(data[16:18], "big") or 65536
        for start in range(page, len(data), page):  # every page after the first: its b-tree
            data[start : start + 12] = b"\xa5" * 12  # header (an invalid page type)
    else:
        for start in range(1024, len(data), 1024):  # the archive's table of contents and data
            data[start : start + 64] = b"\xa5" * 64
    (path := folder / "corrupt_sealed.bak").write_bytes(bytes(data))
    return _seal(path)


def _foreign(store: Store, folder: Path) -> Path:
    path = folder / "foreign.bak"
    if store.engine.dialect.name == "sqlite":
        other = sqlite3.connect(path)
        other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        other.execute("INSERT INTO notes (text) VALUES ('another program')")
        other.commit()
        other.close()
        return _seal(path)
    from tests.postgres_server import fresh_database

    admin = store.engine.url.render_as_string(hide_password=False)
    engine = make_engine(fresh_database(admin.replace("+psycopg", "")))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id integer PRIMARY KEY, text text)")
    foreign_store = Store(engine)
    backup(foreign_store, path)
    foreign_store.close()
    return path


def _empty(folder: Path) -> Path:
    (path := folder / "empty.bak").write_bytes(b"")
    return _seal(path)


def _truncated(good: Path, folder: Path) -> Path:
    (path := folder / "truncated.bak").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return _seal(path)


def _other_version(store: Store, folder: Path) -> Path:
    with store.engine.begin() as conn:
        conn.execute(
            t.schema_migrations.insert().values(version=999, description="future", applied_at="x")
        )
    path = backup(store, folder / "future.bak")
    with store.engine.begin() as conn:
        conn.execute(t.schema_migrations.delete().where(t.schema_migrations.c.version == 999))
    return path


def _unsealed(good: Path, folder: Path) -> Path:
    (path := folder / "unsealed.bak").write_bytes(good.read_bytes())
    return path


_PG_UNREADABLE = "it is not a PostgreSQL backup made by `ltfu backup` (pg_restore cannot read it)"
CASES: dict[str, tuple[str | tuple[str, ...], ...]] = {  # case → reason (SQLite, PostgreSQL)
    "corrupt": ("its checksum does not match corrupt.bak.sha256",) * 2,
    "corrupt_sealed": ("SQLite cannot read it", (_PG_UNREADABLE, "pg_restore failed")),
    "foreign": ("it is not an ltfu store (no table schema_migrations)",) * 2,
    "empty": ("the file is empty",) * 2,
    "truncated": ("SQLite cannot read it", _PG_UNREADABLE),
    "other_version": ("it was written by a newer ltfu (schema version 999",) * 2,
    "unsealed": ("there is no checksum file unsealed.bak.sha256 beside it",) * 2,
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_backups_are_refused_and_the_store_is_unchanged(
    filled: tuple[Store, Path], tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store, good = filled
    folder = good.parent
    build = {
        "corrupt": lambda: _corrupt(good, folder),
        "corrupt_sealed": lambda: _corrupt_sealed(good, folder),
        "foreign": lambda: _foreign(store, folder),
        "empty": lambda: _empty(folder),
        "truncated": lambda: _truncated(good, folder),
        "other_version": lambda: _other_version(store, folder),
        "unsealed": lambda: _unsealed(good, folder),
    }[case]
    path = build()
    before = row_hashes(store)
    with pytest.raises(BackupRefusedError) as caught:
        restore(store, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and message.endswith("nothing was restored."), message
    expected = CASES[case][store.engine.dialect.name == "postgresql"]
    reasons = (expected,) if isinstance(expected, str) else expected
    assert any(reason in message for reason in reasons), message
    assert row_hashes(store) == before
    # the command line: exit 2 and the same sentence
    url = store.engine.url.render_as_string(hide_password=False)
    assert main(["--db", url, "restore", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert row_hashes(store) == before
    assert not list(Path(tmp_path).rglob("*.before-restore"))


def test_a_good_backup_restores(filled: tuple[Store, Path]) -> None:
    store, good = filled
    assert store.counts()["visits"] == 2
    restore(store, good)
    assert store.counts() == {"patients": 2, "visits": 0, "uploads": 1}
    assert not list(good.parent.parent.rglob("*.before-restore"))


def test_a_restore_failing_after_the_replacement_puts_the_store_back(
    filled: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, good = filled
    before = row_hashes(store)
    calls: list[int] = []
    real = store_backup.store_problem

    def fails_on_the_live_store(candidate: Store) -> str | None:
        calls.append(1)
        return "the restored store fails a check" if candidate is store else real(candidate)

    monkeypatch.setattr(store_backup, "store_problem", fails_on_the_live_store)
    with pytest.raises(BackupRefusedError) as caught:
        restore(store, good)
    assert "put back as it was" in str(caught.value)
    assert row_hashes(store) == before


def test_backup_files_are_private(store: Store, tmp_path: Path) -> None:
    import os

    previous = os.umask(0o022)
    try:
        path = backup(store, tmp_path / "new-folder" / "b.bak")
    finally:
        os.umask(previous)
    assert (path.stat().st_mode & 0o777, checksum_path(path).stat().st_mode & 0o777) == (
        0o600,
        0o600,
    )
    assert path.parent.stat().st_mode & 0o777 == 0o700
