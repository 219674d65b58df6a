"""`clinical_version.record_commit` sets each changed patient's revision to the new clinical
version, on SQLite and PostgreSQL: new patients get a row, known ones are moved on, others keep
theirs (the set-based statement must write what one upsert per patient wrote)."""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from monitoring.store import Store
from monitoring.store import tables as t
from monitoring.store.clinical_version import changed_since, read_state, record_commit
from monitoring.store.engine import read_connection, write_transaction


def _revisions(store: Store) -> list[tuple[str, int]]:
    query = sa.select(t.patient_revisions.c.patient_id, t.patient_revisions.c.revision)
    with read_connection(store.engine) as conn:
        return [(str(p), int(r)) for p, r in conn.execute(query.order_by("patient_id"))]


def test_record_commit_upserts_each_patients_revision(store: Store) -> None:
    odd = ['P-"1"', "P-ü\\2", "P-'3'"]  # quotes, a backslash, non-ASCII: bound, not spliced
    first = pl.Series("patient_id", ["P-2", "P-1", None, "P-2", *odd])
    with write_transaction(store.engine) as conn:
        one = record_commit(conn, first)
    with write_transaction(store.engine) as conn:
        two = record_commit(conn, pl.Series("patient_id", ["P-1", "P-4"]))
    with write_transaction(store.engine) as conn:
        assert record_commit(conn, pl.Series("patient_id", [], pl.String)) == two + 1
    assert two == one + 1
    expected = sorted([("P-1", two), ("P-2", one), ("P-4", two)] + [(pid, one) for pid in odd])
    assert _revisions(store) == expected
    with read_connection(store.engine) as conn:
        assert read_state(conn).version == two + 1
        assert sorted(changed_since(conn, one).to_list()) == ["P-1", "P-4"]
        assert changed_since(conn, two).to_list() == []


def test_record_commit_of_many_patients(store: Store) -> None:
    ids = pl.Series("patient_id", [f"P-{i:06d}" for i in range(12_345)])
    with write_transaction(store.engine) as conn:
        version = record_commit(conn, ids.reverse())
    assert _revisions(store) == [(pid, version) for pid in ids.to_list()]
