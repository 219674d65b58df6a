"""Evaluated alerts are reused until the next commit, and never outlive the data they came from."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring import alert_evaluation, alert_queue
from monitoring.alert_queue import acknowledge, alerts_with_status, evaluate_store, open_alert_count
from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.synthetic import make_cohort, write_csv

AS_OF = date(2026, 6, 30)


@pytest.fixture
def cohort_store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    ingest_files(store, list(write_csv(make_cohort(120, seed=3), tmp_path / "csv")), today=AS_OF)
    return store


def _no_evaluation(*_args: object, **_kwargs: object) -> pl.DataFrame:
    raise AssertionError("evaluated every rule again")


def test_second_reader_of_the_day_reuses_the_evaluation(
    cohort_store: Store, monkeypatch: pytest.MonkeyPatch
):
    first = evaluate_store(cohort_store, AS_OF)
    assert first.height > 0
    monkeypatch.setattr(alert_evaluation, "evaluate_alerts", _no_evaluation)
    again = evaluate_store(cohort_store, AS_OF)
    assert again.equals(first) and again.schema == first.schema
    assert alerts_with_status(cohort_store, as_of=AS_OF).height > 0  # the queue reuses it too
    with pytest.raises(AssertionError, match="evaluated every rule again"):
        evaluate_store(cohort_store, date(2026, 7, 1))  # another day is another evaluation


def test_a_commit_makes_the_next_reader_evaluate(cohort_store: Store):
    first = evaluate_store(cohort_store, AS_OF)
    row = first.row(0, named=True)
    before = alerts_with_status(cohort_store, as_of=AS_OF).height
    acknowledge(cohort_store, row["alert_id"], "dr a", "seen", as_of=AS_OF)
    assert alerts_with_status(cohort_store, as_of=AS_OF).height == before - 1
    # a changed visit: the cached evaluation of the older data is not served
    visits = cohort_store.visits().filter(pl.col("patient_id") == row["patient_id"])
    changed = visits.with_columns(disease_status=pl.lit("relapse"), bm_blasts_pct=pl.lit(80.0))
    path = Path(cohort_store.engine.url.database or "").parent / "relapse.csv"
    changed.write_csv(path)
    ingest_files(cohort_store, [path], today=AS_OF)
    after = evaluate_store(cohort_store, AS_OF)
    assert not after.equals(first)


def test_a_commit_during_an_evaluation_is_seen_by_the_next_reader(
    cohort_store: Store, monkeypatch: pytest.MonkeyPatch
):
    real = alert_evaluation.evaluate_alerts
    acked: list[str] = []

    def commit_meanwhile(*args: object, **kwargs: object) -> pl.DataFrame:
        alerts = real(*args, **kwargs)  # type: ignore[arg-type]
        if not acked:
            acked.append(alerts["alert_id"][0])
            alert_queue.flag_patient(
                cohort_store, alerts["patient_id"][0], "dr b", "high", "x", AS_OF
            )
        return alerts

    monkeypatch.setattr(alert_evaluation, "evaluate_alerts", commit_meanwhile)
    evaluate_store(cohort_store, AS_OF)
    # the flag committed during that evaluation is in the next one: nothing stale was kept
    rules = evaluate_store(cohort_store, AS_OF)["rule"].to_list()
    assert "physician_flag" in rules
    assert open_alert_count(cohort_store) >= 1
