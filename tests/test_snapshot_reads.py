"""Reads are one consistent snapshot on both backends (issue 10, point 9).

The timing-dependent concurrency test (tests/test_reliability.py) only catches a torn read when
an ingest happens to commit between the patients SELECT and the visits SELECT. Here that commit
is forced: the store's table loader is wrapped so that, right after the patients are read and
before the visits are, another connection commits a new patient with a visit. A snapshot read
must see neither; a READ COMMITTED read sees the visit without its patient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from monitoring.store import Store
from monitoring.store import tables as t
from monitoring.store.engine import read_connection, write_transaction


def _commit_patient_with_visit(store_url: str, patient_id: str) -> None:
    """A complete upload from another connection (own engine), committed at once."""
    other = Store.open(store_url)
    try:
        with write_transaction(other.engine) as conn:
            conn.execute(
                t.patients.insert().values(patient_id=patient_id, infusion_date=date(2024, 1, 1))
            )
            conn.execute(
                t.visits.insert().values(patient_id=patient_id, visit_date=date(2024, 2, 1))
            )
            Store.bump_version(conn)
    finally:
        other.close()


@pytest.fixture
def seeded(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    _commit_patient_with_visit(store_url, "P-first")
    yield store
    store.close()


def _commit_between_patients_and_visits(
    monkeypatch: pytest.MonkeyPatch, store_url: str
) -> list[str]:
    """Wrap `Store._load`: after the patients are read, commit P-late (once)."""
    original: Callable[..., pl.DataFrame] = Store._load
    done: list[str] = []

    def load(self: Store, conn: sa.Connection, kind: Any) -> pl.DataFrame:
        frame = original(self, conn, kind)
        if kind == "patients" and not done:
            done.append("committed")
            _commit_patient_with_visit(store_url, "P-late")
        return frame

    monkeypatch.setattr(Store, "_load", load)
    return done


def test_snapshot_does_not_see_a_commit_between_its_selects(
    seeded: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _commit_between_patients_and_visits(monkeypatch, store_url)
    version, patients, visits = seeded.snapshot()
    assert done == ["committed"]  # the commit really landed between the two SELECTs
    # every visit's patient is there, and the late patient is wholly absent
    assert visits.join(patients, on="patient_id", how="anti").is_empty()
    assert patients["patient_id"].to_list() == ["P-first"]
    assert visits["patient_id"].to_list() == ["P-first"]
    assert version == 1
    # the next read sees the whole commit
    version, patients, visits = seeded.snapshot()
    assert patients["patient_id"].to_list() == ["P-first", "P-late"]
    assert visits["patient_id"].to_list() == ["P-first", "P-late"]
    assert version == 2


def test_read_connection_is_one_read_only_snapshot_transaction(seeded: Store) -> None:
    with read_connection(seeded.engine) as conn:
        conn.execute(sa.select(t.meta.c.value)).all()
        if conn.dialect.name == "postgresql":
            isolation = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
            read_only = conn.exec_driver_sql("SHOW transaction_read_only").scalar()
            assert (isolation, read_only) == ("repeatable read", "on")
            with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
                conn.execute(t.meta.update().values(value="99"))
        else:
            # one open transaction: in WAL mode its snapshot holds from the first read to the end
            assert conn.connection.driver_connection.in_transaction  # type: ignore[union-attr]
    assert seeded.data_version() == 1


def test_read_connection_returns_to_the_pool_writable(seeded: Store, store_url: str) -> None:
    """The snapshot settings end with the read: a later write on a pooled connection works."""
    for _ in range(3):
        with read_connection(seeded.engine) as conn:
            conn.execute(sa.select(t.meta.c.value)).all()
    with write_transaction(seeded.engine) as conn:
        Store.bump_version(conn)
        if conn.dialect.name == "postgresql":
            assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"
    assert seeded.data_version() == 2
