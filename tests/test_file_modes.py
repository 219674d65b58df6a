"""Everything ltfu creates is private (issue 16, item 6): files 0600 and folders 0700 whatever the
umask, because the store, reports and backups hold patient data."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitoring.cli import main
from monitoring.ingest import ingest_tables
from monitoring.ingest.read import read_bytes
from monitoring.store import Store


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
        for p in [root, *root.rglob("*")]
        if p != root
    }


def test_a_store_opened_as_a_library_is_private(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "ltfu-data"
    store = Store.open(f"sqlite:///{folder / 'ltfu.db'}")
    ingest_tables(store, [read_bytes(b"patient_id,infusion_date\nP-1,2024-01-01\n", "p.csv")])
    modes = _modes(tmp_path)
    folders = {n for n in modes if (tmp_path / n).is_dir()}
    store.close()
    assert modes["ltfu-data"] == 0o700
    files = {name: mode for name, mode in modes.items() if name not in folders}
    assert {"ltfu-data/ltfu.db", "ltfu-data/ltfu.db-wal"} <= set(files)
    assert set(files.values()) == {0o600}, files
    assert {modes[n] for n in folders} == {0o700}, folders  # the columnar snapshot's folder too


def test_an_existing_loose_store_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "old.db"
    Store.open(f"sqlite:///{path}").close()
    path.chmod(0o644)
    Store.open(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_file_the_command_line_writes_is_private(
    tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LTFU_DATABASE_URL", raising=False)
    try:
        assert main(["init"]) == 0  # the default ./ltfu-data/
        assert main(["demo", "--patients", "5", "--out", "exports/demo"]) == 0
        bad = tmp_path / "exports" / "bad.csv"
        bad.write_bytes(b"patient_id,visit_date\nNOPE,2024-01-01\n")
        assert main(["ingest", str(bad), "--report", "reports/report.csv"]) == 1
        assert main(["backup", "backups/b.bak"]) == 0
    finally:
        os.umask(0o022)
    bad.unlink()  # written by the test itself
    modes = _modes(tmp_path)
    for name in ("ltfu-data", "exports/demo", "reports", "backups"):
        assert modes[name] == 0o700, (name, oct(modes[name]))
    files = {n: m for n, m in modes.items() if not stat.S_ISDIR((tmp_path / n).stat().st_mode)}
    assert {"reports/report.csv", "backups/b.bak", "backups/b.bak.sha256"} <= set(files)
    loose = {n: oct(m) for n, m in files.items() if m != 0o600}
    assert not loose, loose
