"""Uploads serialised end to end (issue 16, item 5): two uploads that change the same cell at the
same moment each record a true history, and a database error is one sentence without data."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from monitoring.errors import StoreWriteError
from monitoring.ingest import ingest_tables
from monitoring.ingest.read import read_bytes
from monitoring.store import Store

PATIENTS = b"patient_id,infusion_date\nP-1,2024-01-01\n"


def _visit(value: str) -> bytes:
    return f"patient_id,visit_date,bm_blasts_pct\nP-1,2024-02-02,{value}\n".encode()


def _both_snapshot_first(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """Each thread's first snapshot waits until the other has taken its own (the race)."""
    barrier = threading.Barrier(2, timeout=30)
    waited: set[int] = set()
    original: Callable[[Any], Any] = store.snapshot_of

    def snapshot_of(patient_ids: Any) -> Any:
        taken = original(patient_ids)
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            barrier.wait()
        return taken

    # ingest reads through store.unscoped(), a copy of the store that keeps this attribute
    monkeypatch.setattr(store, "snapshot_of", snapshot_of)


def test_concurrent_uploads_of_one_cell_keep_a_true_history(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_tables(store, [read_bytes(PATIENTS, "p.csv")])
    ingest_tables(store, [read_bytes(_visit("1"), "v0.csv")], user="first")
    _both_snapshot_first(monkeypatch, store)
    errors: list[BaseException] = []

    def upload(value: str) -> None:
        try:
            ingest_tables(store, [read_bytes(_visit(value), f"v{value}.csv")], user=f"u{value}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    history = store.history("P-1").filter(column_name="bm_blasts_pct")
    steps = list(zip(history["old_value"], history["new_value"], strict=True))
    assert len(steps) == 2, steps
    # a chain: the first change replaced the stored 1, the second replaced the first's value
    assert float(steps[0][0]) == 1 and steps[1][0] == steps[0][1], steps
    assert {float(steps[0][1]), float(steps[1][1])} == {2, 3}
    assert store.visits()["bm_blasts_pct"].to_list() == [float(steps[1][1])]


def test_a_database_error_is_one_sentence_without_data(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ingest_tables(store, [read_bytes(PATIENTS, "p.csv")])

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise sa.exc.IntegrityError(
            "INSERT INTO visits (patient_id) VALUES ('P-1')", {"patient_id": "P-1"}, Exception()
        )

    monkeypatch.setattr(Store, "_insert", staticmethod(fail))
    with caplog.at_level(logging.ERROR), pytest.raises(StoreWriteError) as caught:
        ingest_tables(store, [read_bytes(_visit("4"), "v.csv")])
    message = str(caught.value)
    assert "P-1" not in message and "INSERT" not in message and "IntegrityError" in message
    assert "nothing was written" in message
    assert caplog.records and all("P-1" not in r.getMessage() for r in caplog.records)
    assert store.counts()["visits"] == 0
