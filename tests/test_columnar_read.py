"""The columnar read path never serves data older than the committed version, on both backends.

A commit made by one process is read at once by another (whose own earlier read left a snapshot
behind), and a process killed between its commit and any snapshot write, or while a reader writes
the snapshot, leaves nothing stale or broken behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl

from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.store.columnar import snapshot_dir
from tests.conftest import VISITS_HEADER, write_csv

TODAY = date(2026, 11, 22)

# a process that commits one changed value and dies at once (SIGKILL): no clean-up, no reads
_COMMIT_AND_DIE = """
import os, signal, sys
from datetime import date
from monitoring.ingest import ingest_files
from monitoring.store import Store
store = Store.open(sys.argv[1])
ingest_files(store, [sys.argv[2]], today=date(2026, 11, 22))
os.kill(os.getpid(), signal.SIGKILL)
"""

# a reader that is killed while it writes the snapshot file
_READ_AND_DIE_WHILE_WRITING = """
import sys, time
import polars as pl
from monitoring.store import Store

def stuck_write(self, target, **kwargs):
    target.write(b"PAR1 half a file")
    target.flush()
    print("writing", flush=True)
    time.sleep(60)

pl.DataFrame.write_parquet = stuck_write
Store.open(sys.argv[1]).snapshot()
"""


def _igg(store: Store, patient: str = "P-001") -> float:
    visits = store.visits()
    return float(visits.filter(pl.col("patient_id") == patient)["igg_mg_dl"].item())


def _visits(folder: Path, igg: int) -> Path:
    return write_csv(
        folder / f"visits-{igg}.csv", VISITS_HEADER, f"P-001,2024-02-07,CR,1,BM,0,0.1,{igg},no"
    )


def _commit_and_die(url: str, upload: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _COMMIT_AND_DIE, url, str(upload)], capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_commit_in_one_process_is_read_at_once_in_another(
    store: Store, store_url: str, tmp_path: Path, two_patients: Path
):
    ingest_files(store, [two_patients, _visits(tmp_path, 450)], today=TODAY)
    assert _igg(store) == 450.0  # leaves a snapshot of this version behind (SQLite)
    _commit_and_die(store_url, _visits(tmp_path, 520))
    assert _igg(store) == 520.0  # the same reader process, its engine and pool kept
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from monitoring.store import Store; import polars as pl;"
            "v = Store.open(sys.argv[1]).visits();"
            "print(v.filter(pl.col('patient_id') == 'P-001')['igg_mg_dl'].item())",
            store_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert fresh.stdout.strip() == "520.0"


def test_snapshot_equals_the_database_and_is_private(tmp_path: Path, two_patients: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    ingest_files(store, [two_patients, _visits(tmp_path, 450)], today=TODAY)
    _v, patients, visits = store.snapshot()  # from the database; writes the snapshot
    folder = snapshot_dir(store.engine)
    assert folder is not None
    files = sorted(folder.iterdir())
    assert [f.name.split(".", 1)[1] for f in files] == ["patients.parquet", "visits.parquet"]
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)
    _v2, cached_patients, cached_visits = store.snapshot()  # from the files
    assert cached_patients.equals(patients) and cached_visits.equals(visits)
    assert cached_patients.schema == patients.schema
    ingest_files(store, [_visits(tmp_path, 460)], today=TODAY)
    store.snapshot()
    assert len(list(folder.iterdir())) == 2  # the older version's files are gone
    store.close()


def test_reader_killed_while_writing_the_snapshot_leaves_nothing_served(
    tmp_path: Path, two_patients: Path
):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    ingest_files(store, [two_patients, _visits(tmp_path, 450)], today=TODAY)
    # the upload's first-seen ledger may already have built the snapshot: start without one
    built = snapshot_dir(store.engine)
    assert built is not None
    shutil.rmtree(built, ignore_errors=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", _READ_AND_DIE_WHILE_WRITING, url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert _igg(store) == 450.0
    folder = snapshot_dir(store.engine)
    assert folder is not None
    snapshots = [p for p in folder.iterdir() if p.suffix == ".parquet" and "alerts-" not in p.name]
    assert len(snapshots) == 2
    store.close()


def test_unreadable_snapshot_of_the_current_version_is_rebuilt(tmp_path: Path, two_patients: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    ingest_files(store, [two_patients, _visits(tmp_path, 450)], today=TODAY)
    store.snapshot()
    folder = snapshot_dir(store.engine)
    assert folder is not None
    visits_file = next(p for p in folder.iterdir() if p.name.endswith(".visits.parquet"))
    visits_file.write_bytes(visits_file.read_bytes()[:40])  # as if cut short by a crash
    assert _igg(store) == 450.0
    # the rebuilt file is a whole Parquet file again
    assert pl.read_parquet(visits_file).height == 1
    store.close()


def test_crash_between_commit_and_snapshot_write(
    store: Store, store_url: str, tmp_path: Path, two_patients: Path
):
    """A writer killed right after its commit: no reader anywhere sees the older data."""
    ingest_files(store, [two_patients, _visits(tmp_path, 450)], today=TODAY)
    version = store.data_version()
    store.snapshot()
    _commit_and_die(store_url, _visits(tmp_path, 470))
    reopened = Store.open(store_url)
    assert reopened.data_version() == version + 1
    assert _igg(reopened) == 470.0
    reopened.close()
