"""`Store.content_key` names the patients' and visits' content: the dashboard keeps what it
derives from the two tables under it, so it must move with every change of either table and
with nothing else (an acknowledgement or a flag), on both backends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from monitoring.alert_queue import acknowledge, alerts_with_status, flag_patient
from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.synthetic import make_cohort, write_csv


def test_content_key_moves_with_patients_and_visits_only(store: Store, tmp_path: Path) -> None:
    empty = store.content_key()
    cohort = make_cohort(12, seed=3)
    patients, visits = write_csv(cohort, tmp_path / "all")
    ingest_files(store, [patients, visits], user="test")
    loaded = store.content_key()
    assert loaded != empty

    open_alerts = alerts_with_status(store, date.today(), "open")
    acknowledge(store, str(open_alerts["alert_id"][0]), "test", "seen")
    flag_patient(store, str(cohort.patients["patient_id"][0]), "test", "high", "watch")
    assert store.content_key() == loaded

    one = tmp_path / "one.csv"
    cohort.visits.head(1).with_columns(
        pl.col("disease_status").replace_strict({"CR": "PR"}, default="CR")
    ).write_csv(one)
    ingest_files(store, [one], user="test")
    assert store.content_key() != loaded
