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


def _big_upload(folder: Path, prefix: str = "K") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"{prefix}-{i:05d}" for i in range(N_PATIENTS)]
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

    rng = random.Random(20261122)
    postgres = url.startswith("postgresql")
    inside = completed = 0
    for attempt in range(KILLS):
        # new patients each time, so that every attempt really writes
        p, v = _big_upload(tmp_path / str(attempt), prefix=f"K{attempt}")
        proc = _ingest(url, p, v)
        assert proc.stdout is not None
        # PostgreSQL: the upload writes 11 chunks in one transaction; kill while a random one
        # of the first 9 is being written, so at least two chunks and the commit are still to
        # come. SQLite: the visits go to a scratch database first (10 `stage` lines, before
        # the transaction), then the transaction writes the patients (line 11) and copies the
        # visits (line 12): kill while staging or at the start of either
        target = rng.randint(1, 9) if postgres else rng.choice([rng.randint(1, 9), 11, 12])
        for seen, _line in enumerate(proc.stdout, start=1):
            if seen == target:
                break
        time.sleep(rng.uniform(0.0, 0.01))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        after = _fingerprint(store)
        if url.startswith("sqlite"):
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        if after == before:
            inside += 1
            continue
        # all or nothing: if the kill came after the commit, the whole upload is there
        counts, old = after[0], before[0]
        assert counts == {  # type: ignore[comparison-overlap]
            "patients": old["patients"] + N_PATIENTS,  # type: ignore[index]
            "visits": old["visits"] + N_PATIENTS * VISITS_EACH,  # type: ignore[index]
            "uploads": old["uploads"] + 2,  # type: ignore[index]
        }, (before, after)
        completed += 1
        before = after
    backend = url.split(":", 1)[0]
    print(f"\n{backend}: {inside} kills inside the write, {completed} after the commit")
    assert inside >= max(1, (3 * KILLS) // 4), f"{inside} kills inside the write, {completed} after"
    # still usable: a new upload succeeds whole
    p, v = _big_upload(tmp_path / "final", prefix="F")
    old_counts = store.counts()
    assert _finish(_ingest(url, p, v)) == 0
    counts = store.counts()
    assert counts["patients"] == old_counts["patients"] + N_PATIENTS
    assert counts["visits"] == old_counts["visits"] + N_PATIENTS * VISITS_EACH
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM uploads")).scalar()
            == old_counts["uploads"] + 2
        )
    if not postgres:  # the scratch files of killed uploads were deleted by the next one
        database = Path(sa.engine.make_url(url).database or "")
        assert not list(database.parent.glob(f".staging-{database.name}.*"))
    store.close()
