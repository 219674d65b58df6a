"""An ingest killed with SIGKILL mid-write leaves the store exactly as it was, and usable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from monitoring.store import Store

N_PATIENTS = 4000
# kills per backend; LTFU_CRASH_KILLS=50 for a longer soak
KILLS = int(os.environ.get("LTFU_CRASH_KILLS", "4"))
VISITS_EACH = 12


def _big_upload(folder: Path) -> tuple[Path, Path]:
    ids = [f"K-{i:05d}" for i in range(N_PATIENTS)]
    patients = pl.DataFrame({"patient_id": ids, "infusion_date": [date(2022, 1, 1)] * N_PATIENTS})
    visits = pl.DataFrame(
        {
            "patient_id": [pid for pid in ids for _ in range(VISITS_EACH)],
            "visit_date": [
                date(2022, 1, 1) + timedelta(days=30 * k) for _ in ids for k in range(VISITS_EACH)
            ],
            "disease_status": ["CR"] * (N_PATIENTS * VISITS_EACH),
            "bcell_per_ul": [float(k) for _ in ids for k in range(VISITS_EACH)],
        }
    )
    p, v = folder / "patients.csv", folder / "visits.csv"
    patients.write_csv(p)
    visits.write_csv(v)
    return p, v


def _fingerprint(store: Store) -> tuple[object, ...]:
    return (
        store.counts(),
        store.data_version(),
        store.patients().hash_rows().sum(),
        store.visits().hash_rows().sum(),
    )


def _ingest(url: str, *files: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_ingest", "--db", url, "ingest", *map(str, files)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> int:
    proc.communicate(timeout=300)
    return proc.returncode


def test_sigkill_mid_write_leaves_store_unchanged(tmp_path: Path, store_url: str):
    url = store_url
    store = Store.open(url)
    # some data already stored, so "unchanged" means something
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    (seed_dir / "patients.csv").write_text(
        "patient_id,infusion_date\nSEED-1,2021-05-05\n", encoding="utf-8"
    )
    assert _finish(_ingest(url, seed_dir / "patients.csv")) == 0
    before = _fingerprint(store)
    p, v = _big_upload(tmp_path)

    rng = random.Random(20261122)
    kills = 0
    for _ in range(KILLS):
        proc = _ingest(url, p, v)
        assert proc.stdout is not None
        # the upload writes ~11 chunks in one transaction; kill after a random one of them
        target = rng.randint(1, 10)
        for seen, _line in enumerate(proc.stdout, start=1):
            if seen == target:
                break
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        kills += 1
        assert _fingerprint(store) == before
        if url.startswith("sqlite"):
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert kills == KILLS
    # still usable: the same upload now succeeds whole
    assert _finish(_ingest(url, p, v)) == 0
    counts = store.counts()
    assert counts["patients"] == N_PATIENTS + 1 and counts["visits"] == N_PATIENTS * VISITS_EACH
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM uploads")).scalar() == 3
    store.close()
