"""PostgreSQL's bulk insert sends the frame as CSV text through COPY (`Store._copy_csv`): every
cell must land as the row-by-row COPY (`write_row`) lands it, text that looks like CSV, NULL or
an escape included, and floats to the last bit."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from monitoring.store import Store
from monitoring.store import store as store_module

pytestmark = pytest.mark.postgres

_HOSTILE_TEXT = [
    "",
    " ",
    "plain",
    ' lead and trail "quoted" ',
    "comma, and ; semicolon",
    'only "',
    '""',
    "line\nbreak",
    "carriage\r\nreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "end\n\\.\nof data",
    "\\.\n",
    "NULL",
    "null",
    "=1+1",
    "tab\there",
    "ünïcödé — ✓ 日本",
    "123",
    "1e5",
    "true",
    "2024-01-02",
]


def _frame(rows: int, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    floats: list[float | None] = [
        0.1,
        1 / 3,
        -0.0,
        5e-324,
        1.7976931348623157e308,
        1e-7,
        123456789.123456789,
        2.5e-6,
        None,
    ]
    while len(floats) < rows:
        floats.append(
            None if rng.random() < 0.1 else rng.uniform(-1, 1) * 10 ** rng.randint(-12, 12)
        )
    return pl.DataFrame(
        {
            "id": list(range(rows)),
            "label": [
                None if i % 7 == 3 else _HOSTILE_TEXT[i % len(_HOSTILE_TEXT)] for i in range(rows)
            ],
            "value": floats[:rows],
            "day": [
                None if i % 11 == 5 else date(2019, 1, 1) + timedelta(days=rng.randint(0, 3000))
                for i in range(rows)
            ],
            "flag": [None if i % 5 == 2 else bool(i % 2) for i in range(rows)],
            "count": [
                None if i % 13 == 1 else rng.randint(-(2**31), 2**31 - 1) for i in range(rows)
            ],
        },
        schema={
            "id": pl.Int64,
            "label": pl.String,
            "value": pl.Float64,
            "day": pl.Date,
            "flag": pl.Boolean,
            "count": pl.Int64,
        },
    )


def _table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.Text),
        sa.Column("value", sa.Float(precision=53)),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
        sa.Column("count", sa.BigInteger),
    )


def _copy_rows(conn: sa.Connection, table_name: str, frame: pl.DataFrame) -> None:
    """The reference: psycopg's row-by-row COPY, each Python value adapted by the driver (the
    store's bulk insert before it sent CSV text)."""
    raw: Any = conn.connection.driver_connection
    names = ", ".join(frame.columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({names}) FROM STDIN") as copy:
        for row in frame.rows():
            copy.write_row(row)


def _rows(conn: sa.Connection, table: sa.Table) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def test_csv_copy_lands_every_cell_as_row_copy_does(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.postgres_server import fresh_database

    store = Store.open(fresh_database(postgres_admin_url))
    # several COPY batches, the last one short
    monkeypatch.setattr(store_module, "_COPY_ROWS", 150)
    frame = _frame(1000, seed=20261130)
    metadata = sa.MetaData()
    by_csv, by_rows = _table(metadata, "copied_as_csv"), _table(metadata, "copied_by_row")
    try:
        with store.engine.begin() as conn:
            metadata.create_all(conn)
            Store._insert(conn, by_csv, frame)
            _copy_rows(conn, by_rows.name, frame)
        with store.engine.connect() as conn:
            csv_rows, row_rows = _rows(conn, by_csv), _rows(conn, by_rows)
    finally:
        store.close()
    assert len(csv_rows) == frame.height
    assert csv_rows == row_rows
    # and both are the frame's own values: floats to the bit, -0.0 keeps its sign
    assert csv_rows == frame.rows()
    for stored, sent in zip(csv_rows, frame.rows(), strict=True):
        if sent[2] is not None:
            assert math.copysign(1.0, stored[2]) == math.copysign(1.0, sent[2])
    labels = {r[1] for r in csv_rows}
    assert "" in labels and None in labels and "\\N" in labels and "line\nbreak" in labels
