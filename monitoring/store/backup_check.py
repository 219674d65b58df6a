"""What a backup must be before `ltfu restore` lets it replace a store, and whether a store passes.

    sqlite_backup_problem(path)        None, or why an SQLite file is not an ltfu backup
    store_problem(store)               None, or why an opened store is not whole (after a restore)
    known_schema_version()             the newest schema version this ltfu can migrate to

An ltfu store has `schema_migrations` and the canonical tables; a version above the newest this
ltfu knows means the backup was written by a newer ltfu and would be misread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from monitoring.store import tables as t

if TYPE_CHECKING:
    from monitoring.store import Store

SQLITE_HEADER = b"SQLite format 3\x00"
CORE_TABLES = ("schema_migrations", "meta", "patients", "visits", "uploads", "audit_log")


def known_schema_version() -> int:
    return max(version for version, _description, _step in t.MIGRATIONS)


def version_problem(version: int | None) -> str | None:
    if version is None:
        return "it has no schema version (an empty schema_migrations table)"
    if version > known_schema_version():
        return (
            f"it was written by a newer ltfu (schema version {version}; this ltfu knows up to "
            f"{known_schema_version()})"
        )
    return None


def sqlite_backup_problem(path: Path) -> str | None:
    """Open the file read-only and check SQLite's integrity, ltfu's tables and the version."""
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return "it is not an SQLite database"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return "SQLite cannot open it"
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
        if [tuple(r) for r in rows] != [("ok",)]:
            return "it fails SQLite's integrity check"
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = [name for name in CORE_TABLES if name not in tables]
        if missing:
            return f"it is not an ltfu store (no table {missing[0]})"
        version = connection.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        return version_problem(None if version is None else int(version))
    except sqlite3.Error as exc:
        return f"SQLite cannot read it ({type(exc).__name__})"
    finally:
        connection.close()


def store_problem(store: Store) -> str | None:
    """After a restore: the store opens, holds every table of this version, counts its rows,
    and (SQLite) passes the integrity check."""
    try:
        with store.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("PRAGMA integrity_check").fetchall()
                if [tuple(r) for r in rows] != [("ok",)]:
                    return "the restored store fails SQLite's integrity check"
            present = set(sa.inspect(conn).get_table_names())
            missing = [name for name in t.metadata.tables if name not in present]
            if missing:
                return f"the restored store has no table {missing[0]}"
            version = conn.execute(sa.select(sa.func.max(t.schema_migrations.c.version))).scalar()
            if version != known_schema_version():
                return f"the restored store is at schema version {version}"
            for table in t.metadata.tables.values():
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    except sa.exc.SQLAlchemyError as exc:
        return f"the restored store cannot be read ({type(exc).__name__})"
    return None
