"""`ltfu status` counts open alerts without evaluating every rule when another process has
already evaluated the same commit today, and never shows a count older than the committed data:
commits made through one process are counted by the next `status` of another, on both backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import polars as pl

from monitoring.alert_queue import (
    acknowledge,
    acknowledgement_history,
    alerts_with_status,
    read_flags,
)
from monitoring.alerts import evaluate_alerts
from monitoring.cli.data import status_dict
from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.synthetic import make_cohort, write_csv

# a process whose rule evaluation fails: it can print a count only from an earlier evaluation
_STATUS_WITHOUT_RULES = """
import sys
from monitoring import alert_evaluation
from monitoring.cli import main

def no_rules(*args, **kwargs):
    raise SystemExit("evaluated every rule")

alert_evaluation.evaluate_alerts = no_rules
raise SystemExit(main(["--db", sys.argv[1], "status", "--format", "json"]))
"""


def _ltfu(url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "monitoring.cli", "--db", url, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _status(url: str) -> int:
    return int(json.loads(_ltfu(url, "status", "--format", "json"))["open_alerts"])


def _truth(url: str) -> int:
    """Open alerts of the committed data as of today, evaluated from scratch (no cache)."""
    with closing(Store.open(url)) as store:
        _version, patients, visits = store.snapshot()
        alerts = evaluate_alerts(patients, visits, store.today(), flags=read_flags(store))
        acked = acknowledgement_history(store)["alert_id"].unique()
        return alerts.filter(~pl.col("alert_id").is_in(acked.implode())).height


def test_status_counts_every_commit_of_another_process(store_url: str, tmp_path: Path):
    with closing(Store.open(store_url)) as store:
        ingest_files(store, list(write_csv(make_cohort(40, seed=3), tmp_path / "csv")))
    first = _status(store_url)
    assert first == _truth(store_url) > 0

    # the evaluation is kept (in the database: both backends) for the next process of the day
    reread = subprocess.run(
        [sys.executable, "-c", _STATUS_WITHOUT_RULES, store_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert reread.returncode == 0, reread.stderr
    assert json.loads(reread.stdout)["open_alerts"] == first

    # an acknowledgement committed here is counted by the next status of another process
    with closing(Store.open(store_url)) as store:
        target = alerts_with_status(store).row(0, named=True)
        acknowledge(store, target["alert_id"], "dr a", "seen")
    assert _status(store_url) == first - 1 == _truth(store_url)

    # a flag raised by another process is counted here at once
    patient = target["patient_id"]
    _ltfu(store_url, "flag", patient, "--user", "dr b", "--severity", "high", "--note", "call")
    with closing(Store.open(store_url)) as store:
        assert status_dict(store)["open_alerts"] == first == _truth(store_url)

    # an upload through another process that changes the alerts: counted by the next status
    with closing(Store.open(store_url)) as store:
        visits = store.visits().filter(pl.col("patient_id") == patient)
    relapse = visits.with_columns(disease_status=pl.lit("relapse"), bm_blasts_pct=pl.lit(80.0))
    relapse.write_csv(tmp_path / "relapse.csv")
    _ltfu(store_url, "ingest", str(tmp_path / "relapse.csv"), "--user", "dm")
    after = _status(store_url)
    assert after == _truth(store_url)
    assert after != first  # the relapse ended some alerts and raised others
