"""The columnar read path: patients and visits as polars frames without a Python object per row.

Chosen by measurement (`bench/results.md`, 594 000 visits on this machine): the SQLite cursor
alone takes 1.2–1.4 s and building frames from its tuples another 0.6 s; the ADBC SQLite driver
0.9–1.4 s; a Parquet file of the same rows reads in 0.06 s. So:

SQLite      a Parquet snapshot beside the database (`<db>.columnar/<token>.{patients,visits}
            .parquet`), keyed on the store's clinical token: a random value that every committed
            change of patients or visits replaces in the same transaction
            (`store.clinical_version.record_commit`; acknowledgements and flags keep it). A token
            names exactly one content, so a file named after the token read inside the reader's
            own transaction can never be older than what that transaction sees. A missing,
            partial or unreadable file (a crash between the commit and the file's write, a crash
            while writing it) is a miss: the reader loads from the database in the same
            transaction and writes the file for the next reader (temp file, fsync, rename; 0600).
PostgreSQL  `COPY (SELECT …) TO STDOUT (FORMAT csv)` on the reader's own connection, parsed by
            polars' CSV reader: the same transaction (and so the same snapshot) as every other
            read of that connection, with no file that could fall behind another instance.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

SNAPSHOT_SUFFIX = ".columnar"
KINDS = ("patients", "visits")


def new_token() -> str:
    return secrets.token_hex(16)


def database_file(engine: sa.Engine) -> Path | None:
    """The SQLite store's file; None for PostgreSQL or an in-memory database."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def snapshot_dir(engine: sa.Engine) -> Path | None:
    """Where the SQLite store keeps its Parquet snapshots; None for PostgreSQL or in-memory."""
    db = database_file(engine)
    return None if db is None else db.with_name(db.name + SNAPSHOT_SUFFIX)


def _path(folder: Path, token: str, kind: str) -> Path:
    return folder / f"{token}.{kind}.parquet"


def load_snapshot(
    folder: Path, token: str, schemas: dict[str, dict[str, pl.DataType]]
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """Both frames of `token`, or None when either file is missing, partial or of another shape."""
    frames: list[pl.DataFrame] = []
    for kind in KINDS:
        try:
            frame = pl.read_parquet(_path(folder, token, kind))
        except Exception:  # missing, truncated or not Parquet at all: rebuild from the database
            return None
        if list(frame.schema.items()) != list(schemas[kind].items()):
            return None
        frames.append(frame)
    return frames[0], frames[1]


def save_snapshot(folder: Path, token: str, patients: pl.DataFrame, visits: pl.DataFrame) -> None:
    """Write both files atomically (temp, fsync, rename) and drop other tokens' files.

    Best effort: a reader that cannot write (read-only folder, full disk) still has its frames.
    """
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        for kind, frame in zip(KINDS, (patients, visits), strict=True):
            final = _path(folder, token, kind)  # replaced even when there: it failed to read
            temp = folder / f".{token}.{kind}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                # lz4: 0.06 s less to write both tables of 50 000 patients than zstd, and
                # faster to read; the files are about half as large again (11 MB against 7)
                frame.write_parquet(f, statistics=False, compression="lz4")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, final)
        for old in folder.iterdir():
            if token not in old.name:  # another version's snapshot or cached alerts
                with contextlib.suppress(OSError):
                    old.unlink()
    except OSError:
        return


def copy_frame(
    conn: sa.Connection, query: sa.Select[Any], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """PostgreSQL: the rows of `query` through COPY … TO STDOUT as CSV, parsed by polars."""
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    raw: Any = conn.connection.driver_connection
    buffer = io.BytesIO()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            buffer.write(block)
    if not buffer.tell():
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    return pl.read_csv(
        buffer,
        has_header=False,
        schema=schema,  # COPY writes NULL as an unquoted empty field, polars reads that as null
    )


_READ_CHUNK = 50_000


def read_frame(
    conn: sa.Connection, query: sa.Select[Any], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """The rows of `query` as a frame of `schema`, inside the caller's transaction, without a
    Python object per row: COPY on PostgreSQL; on SQLite the driver's plain tuples in chunks
    (a registry's rows as Python tuples at once would take gigabytes)."""
    if conn.dialect.name == "postgresql":
        return copy_frame(conn, query, schema)
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    raw: Any = conn.connection.driver_connection
    cursor: Any = raw.execute(sql)
    chunks = [pl.DataFrame(schema=schema)]
    while rows := cursor.fetchmany(_READ_CHUNK):
        chunks.append(pl.DataFrame(rows, schema=schema, orient="row"))
    return pl.concat(chunks, rechunk=True)
