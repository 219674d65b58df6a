"""The database side of `ltfu backup` / `ltfu restore`: a consistent copy of the whole store.

SQLite: the online backup API (safe while others read or write). PostgreSQL: `pg_dump -Fc` and
`pg_restore --clean`, with the server's own client tools.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa

from monitoring.errors import UsageError
from monitoring.store.store import Store


def _sqlite_path(store: Store) -> str:
    database = store.engine.url.database
    if not database or database == ":memory:":
        raise UsageError("an in-memory store cannot be backed up")
    return database


def _pg_args(store: Store) -> list[str]:
    url = store.engine.url
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-d", url.database or ""]
    if url.username:
        args += ["-U", url.username]
    return args


def _pg_env(store: Store) -> dict[str, str]:
    import os

    env = dict(os.environ)
    if store.engine.url.password:
        env["PGPASSWORD"] = str(store.engine.url.password)
    return env


def _tool(name: str) -> str:
    import glob

    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise UsageError(f"{name} is not installed; install Debian's postgresql-client")
    return found


def copy_out(store: Store, target: Path) -> None:
    """Write the whole store to `target` (its folder exists)."""
    if store.engine.dialect.name == "sqlite":
        source = sqlite3.connect(_sqlite_path(store))
        dest = sqlite3.connect(str(target))
        try:
            with dest:
                source.backup(dest)
        finally:
            dest.close()
            source.close()
    else:
        result = subprocess.run(
            [_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(target), *_pg_args(store)],
            capture_output=True,
            text=True,
            env=_pg_env(store),
        )
        if result.returncode:
            raise UsageError(f"pg_dump failed: {result.stderr.strip().splitlines()[-1]}")


def copy_in(store: Store, source: Path) -> None:
    """Replace the whole store with the backup at `source` (an existing file)."""
    if store.engine.dialect.name == "sqlite":
        with source.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise UsageError(f"{source}: not an ltfu SQLite backup")
        store.engine.dispose()
        src = sqlite3.connect(str(source))
        dest = sqlite3.connect(_sqlite_path(store))
        try:
            with dest:
                src.backup(dest)
        finally:
            dest.close()
            src.close()
    else:
        store.engine.dispose()
        result = subprocess.run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                *_pg_args(store),
                str(source),
            ],
            capture_output=True,
            text=True,
            env=_pg_env(store),
        )
        if result.returncode:
            raise UsageError(f"pg_restore failed: {result.stderr.strip().splitlines()[-1]}")
    with store.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
