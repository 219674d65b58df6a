"""Big row inserts into SQLite at C speed, still inside the upload's one transaction.

Binding rows one Python value at a time costs the first ingest most of its time (4.8 s of
`executemany` for 594 000 visits). Instead, before the write transaction opens, the big frames
are written through ADBC (Arrow columns bound in C, 1 s) into a private scratch database beside
the store. The write transaction ATTACHes it (SQLite allows that only outside a transaction) and
copies each frame with one `INSERT … SELECT`, so what lands and when is unchanged: all of the
upload in one commit, or nothing. The scratch file is deleted when the write ends; one a crash
left behind is deleted by the next upload that stages (its process is gone).

The stored values are the ones the row path writes: dates as ISO text, booleans 0/1, the
table's column affinities applied by the same INSERT (`tests/test_staging.py`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import sqlalchemy as sa

from monitoring.errors import StoreWriteError
from monitoring.store import columnar
from monitoring.store.private_files import FILE_MODE

if TYPE_CHECKING:  # imported when an upload stages (`_write`)
    from adbc_driver_manager import AdbcConnection

_log = logging.getLogger(__name__)

# below this many rows (about 0.15 s of binding) a scratch file and its ATTACH are not worth it
STAGE_AT_ROWS = 20_000
# rows handed to ADBC at once: bounds the Arrow copy of the frame (strings) in memory
_BATCH_ROWS = 100_000
ALIAS = "staging"
_PREFIX = ".staging-"


@dataclass(frozen=True)
class Staged:
    """A scratch database holding frames under their names, to be ATTACHed as `ALIAS`."""

    path: Path
    names: frozenset[str]

    def has(self, name: str) -> bool:
        return name in self.names


def sqlite_values(frame: pl.DataFrame) -> pl.DataFrame:
    """The storage SQLAlchemy's Date/Boolean use on SQLite: ISO text and 0/1."""
    return frame.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%d") for c, d in frame.schema.items() if d == pl.Date]
        + [pl.col(c).cast(pl.Int8) for c, d in frame.schema.items() if d == pl.Boolean]
        + [
            pl.col(c).cast(pl.String)
            for c, d in frame.schema.items()
            if isinstance(d, pl.Categorical | pl.Enum)
        ]
    )


@contextlib.contextmanager
def staged(engine: sa.Engine, frames: Mapping[str, pl.DataFrame]) -> Iterator[Staged | None]:
    """The frames of at least `STAGE_AT_ROWS` rows written to a scratch database beside the
    store (None when there is none, or the store is not a SQLite file); deleted afterwards."""
    database = columnar.database_file(engine)
    big = {name: f for name, f in frames.items() if f.height >= STAGE_AT_ROWS}
    if database is None or not big:
        yield None
        return
    _sweep(database)
    path = database.with_name(f"{_PREFIX}{database.name}.{os.getpid()}.{uuid.uuid4().hex}")
    try:
        # created here 0600 so that ADBC opens an existing private file (an empty file is an
        # empty database); with the journal off, SQLite writes no other file beside it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
            _write(path, big)
        except (OSError, adbc_error()) as exc:  # a full disk, a folder gone read-only
            _log.error("upload staging failed: %s", type(exc).__name__)
            raise StoreWriteError(
                "The upload could not be written: its rows could not be set down beside the "
                f"database ({type(exc).__name__}); nothing was written. Check the free disk "
                "space, and tell the administrator the time of this upload if it happens again."
            ) from None
        yield Staged(path, frozenset(big))
    finally:
        for leftover in (path, path.with_name(path.name + "-journal")):
            leftover.unlink(missing_ok=True)


def adbc_error() -> type[Exception]:
    import adbc_driver_manager

    # typed here: mypy sees Any where the driver's stubs are missing
    error: type[Exception] = adbc_driver_manager.Error
    return error


def _write(path: Path, frames: Mapping[str, pl.DataFrame]) -> None:
    # the low-level ADBC API: its DB-API module imports pandas and pyarrow.dataset (1 s)
    import adbc_driver_manager as adbc
    import adbc_driver_sqlite

    with adbc_driver_sqlite.connect(str(path)) as database, adbc.AdbcConnection(database) as conn:
        # scratch data: a crash discards the file, so neither a journal nor fsync is needed
        for pragma in ("PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF"):
            with adbc.AdbcStatement(conn) as statement:
                statement.set_sql_query(pragma)
                statement.execute_update()
        for name, frame in frames.items():
            for start in range(0, frame.height, _BATCH_ROWS):
                # converted batch by batch: no second whole copy of the date columns as text
                write_batch(conn, name, sqlite_values(frame.slice(start, _BATCH_ROWS)))


def write_batch(conn: AdbcConnection, name: str, batch: pl.DataFrame) -> None:
    """Append the batch to table `name` (created by the first batch), from Arrow memory."""
    import adbc_driver_manager as adbc

    with adbc.AdbcStatement(conn) as statement:
        statement.set_options(
            **{
                adbc.INGEST_OPTION_TARGET_TABLE: name,
                adbc.INGEST_OPTION_MODE: "adbc.ingest.mode.create_append",
            }
        )
        statement.bind_stream(batch)  # the frame's Arrow C stream: no copy through pyarrow
        statement.execute_update()


def copy_statement(
    table: str,
    name: str,
    columns: list[str],
    new_key: str | None = None,
    constants: list[str] | tuple[str, ...] = (),
) -> str:
    """Copy the staged frame `name` into `table`; with `new_key`, only the rows whose key the
    table does not hold yet. `constants` are columns of one value for every row, not staged:
    bound as the statement's parameters, in that order."""
    names = ", ".join(f'"{c}"' for c in [*columns, *constants])
    selected = ", ".join([*(f'"{c}"' for c in columns), *("?" for _ in constants)])
    statement = f'INSERT INTO main."{table}" ({names}) SELECT {selected} FROM {ALIAS}."{name}"'
    if new_key is not None:
        statement += f' WHERE "{new_key}" NOT IN (SELECT "{new_key}" FROM main."{table}")'
    return statement


@contextlib.contextmanager
def indexes_built_after(conn: sa.Connection, table: str) -> Iterator[None]:
    """SQLite, inside a write transaction: the table's own indexes (not its primary key's)
    dropped for a bulk load and created again after it by their stored definitions, in the same
    transaction (all or nothing: a failure rolls the drop back with the rows)."""
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL ORDER BY name",
        (table,),
    ).all()
    for name, _definition in indexes:
        conn.exec_driver_sql(f'DROP INDEX main."{name}"')
    yield
    for _name, definition in indexes:
        conn.exec_driver_sql(str(definition))


def _sweep(database: Path) -> None:
    """Delete scratch files whose process is gone (a crash mid-upload)."""
    for leftover in database.parent.glob(f"{_PREFIX}{database.name}.*"):
        pid = leftover.name.removeprefix(f"{_PREFIX}{database.name}.").split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
