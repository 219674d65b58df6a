"""Connections: SQLite (embedded default, WAL) or PostgreSQL, through SQLAlchemy Core.

Writes take the database's write lock at the start of the transaction (SQLite `BEGIN IMMEDIATE`),
so concurrent uploads are serialised; a writer waits a bounded time for the lock and then raises
`StoreBusyError` with a sentence for the user instead of "database is locked".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from monitoring.errors import StoreBusyError, UsageError
from monitoring.store.private_files import private_dir, private_file, tighten
from monitoring.store.staging import ALIAS, Staged

DEFAULT_DIR = Path("ltfu-data")
BUSY_WAIT_SECONDS = 30.0
_WRITE = "ltfu_write"


def resolve_url(url: str | None = None) -> str:
    """`--db` beats `LTFU_DATABASE_URL` beats the embedded file under ./ltfu-data/."""
    chosen = url or os.environ.get("LTFU_DATABASE_URL")
    if chosen:
        if chosen.startswith("postgres://"):
            chosen = "postgresql://" + chosen.removeprefix("postgres://")
        if chosen.startswith("postgresql://"):
            chosen = "postgresql+psycopg://" + chosen.removeprefix("postgresql://")
        return chosen
    return f"sqlite:///{DEFAULT_DIR / 'ltfu.db'}"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            # the store holds patient data: its folder 0700, the file (and so SQLite's -wal and
            # -shm, which copy the database's mode) 0600, whatever the umask
            private_dir(Path(database).parent)
            if Path(database).parent.resolve() == DEFAULT_DIR.resolve():
                tighten(DEFAULT_DIR)
            private_file(database)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_WAIT_SECONDS})
        _sqlite_pragmas(engine)
        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_pre_ping=True)
    raise UsageError(
        f"unsupported database URL '{url.split(':', 1)[0]}:…'; use sqlite:/// or postgresql://"
    )


def _sqlite_pragmas(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 64 MiB of page cache at most (SQLite's default is 2 MiB): a big upload's transaction
        # otherwise spills and re-reads its pages (a first ingest of 50 000 patients wrote
        # 4.6 times the database's size to the WAL); the cache grows only as pages are used
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_WAIT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):  # type: ignore[no-untyped-def]
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (
        "database is locked" in text
        or "database is busy" in text
        or "could not obtain lock" in text
    )


# the PostgreSQL advisory lock every writer holds (one writer at a time across instances)
_WRITE_LOCK = 461900


@contextmanager
def write_transaction(engine: sa.Engine, attach: Staged | None = None) -> Iterator[sa.Connection]:
    """One all-or-nothing write; serialised against other writers. With `attach` (SQLite), the
    scratch database of `staging.staged` is attached for the transaction as `staging`."""
    try:
        with (
            engine.connect().execution_options(**{_WRITE: True}) as conn,
            _attached(conn, attach),
            conn.begin(),
        ):
            if conn.dialect.name == "postgresql":
                # one writer at a time across every dashboard instance and CLI
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
            yield conn
    except sa.exc.OperationalError as exc:
        if _is_busy(exc):
            raise StoreBusyError(
                f"The store stayed busy with another upload for {BUSY_WAIT_SECONDS:.0f} s; "
                "nothing was written. Try again in a minute."
            ) from None
        raise


@contextmanager
def _attached(conn: sa.Connection, staged: Staged | None) -> Iterator[None]:
    """SQLite: ATTACH before the transaction begins and DETACH after it ended (SQLite refuses
    both inside one); the pooled connection goes back without it, and without the pages the
    write filled its cache with (up to 64 MiB each, held while the connection is pooled)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    if staged is not None:
        raw.execute(f"ATTACH DATABASE ? AS {ALIAS}", (str(staged.path),))
    try:
        yield
    finally:
        if staged is not None:
            raw.execute(f"DETACH DATABASE {ALIAS}")
        raw.execute("PRAGMA shrink_memory")


@contextmanager
def brief_write_transaction(engine: sa.Engine, wait_seconds: float) -> Iterator[sa.Connection]:
    """`write_transaction` for a write nobody waits for (a reader keeping what it derived):
    it waits at most `wait_seconds` for the write lock, then raises `StoreBusyError`."""
    if engine.dialect.name != "sqlite":
        try:
            with engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
                locked = conn.exec_driver_sql(
                    f"SELECT pg_try_advisory_xact_lock({_WRITE_LOCK})"
                ).scalar()
                if not locked:
                    raise StoreBusyError("another write holds the store")
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreBusyError("the store is busy") from exc
        return
    with engine.connect() as outer:
        raw = outer.connection.driver_connection
        assert raw is not None
        raw.execute(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
        try:
            with outer.execution_options(**{_WRITE: True}).begin():
                yield outer
        except sa.exc.OperationalError as exc:
            if _is_busy(exc):
                raise StoreBusyError("another write holds the store") from None
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(BUSY_WAIT_SECONDS * 1000)}")


@contextmanager
def read_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One consistent snapshot for reads: every SELECT inside sees the same committed state.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction (its default, READ COMMITTED, takes a
    new snapshot per statement, so a commit between the patients and the visits SELECT would be
    half visible). SQLite: one deferred transaction; in WAL mode its snapshot is taken at the
    first read and held to the end. The settings last for this transaction only: the pooled
    connection goes back with the engine's defaults.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn
