"""The database side of `ltfu backup` / `ltfu restore`: a consistent copy of the whole store, and a
restore that cannot destroy it (the checksum file and the order of checks: `monitoring.backup`).

    copy_out(store, target)          SQLite online backup API / `pg_dump -Fc`; the file 0600
    backup_problem(store, source)    None, or why the file is not a backup this store may take
    copy_in(store, source)           replace the store, with a safety copy; BackupRefusedError

Restore (`copy_in`) after `backup_problem` found nothing; any failure is `BackupRefusedError`
(exit 2, one sentence) with the store as it was:
1. SQLite: copy the backup to a scratch file beside the store and open it as a store there
   (older versions migrate now, not in the live store) and check it (`store_problem`);
2. keep the current store as a safety copy (`<store>.before-restore`, or a `pg_dump` of it);
3. replace the store (SQLite backup API: one transaction; `pg_restore --single-transaction`);
4. open it and check it (`backup_check.store_problem`); when that fails, put the safety copy
   back. The safety copy is deleted only after the restored store has passed.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitoring.errors import BackupRefusedError, UsageError
from monitoring.store.backup_check import (
    CORE_TABLES,
    sqlite_backup_problem,
    store_problem,
    version_problem,
)
from monitoring.store.private_files import private_file
from monitoring.store.store import Store


def refusal(source: Path, why: str) -> BackupRefusedError:
    """The one sentence of a refused restore."""
    return BackupRefusedError(f"{source}: {why}; nothing was restored.")


def _sqlite_path(store: Store) -> str:
    database = store.engine.url.database
    if not database or database == ":memory:":
        raise UsageError("an in-memory store cannot be backed up or restored")
    return database


def _pg_args(store: Store) -> list[str]:
    url = store.engine.url
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-d", url.database or ""]
    if url.username:
        args += ["-U", url.username]
    return args


def _pg_env(store: Store) -> dict[str, str]:
    env = dict(os.environ)
    if store.engine.url.password:
        env["PGPASSWORD"] = str(store.engine.url.password)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise UsageError(f"{name} is not installed; install Debian's postgresql-client")
    return found


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _sqlite_copy(source: str | Path, target: str | Path) -> None:
    """A consistent page-by-page copy (the online backup API; one transaction on the target)."""
    src = sqlite3.connect(str(source))
    dest = sqlite3.connect(str(target))
    try:
        with dest:
            src.backup(dest)
    finally:
        dest.close()
        src.close()


def _pg_dump(store: Store, target: Path) -> None:
    result = subprocess.run(
        [_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(target), *_pg_args(store)],
        capture_output=True,
        text=True,
        env=_pg_env(store),
    )
    if result.returncode:
        raise UsageError(f"pg_dump failed: {_last_line(result.stderr)}")


def _pg_restore(store: Store, source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            *_pg_args(store),
            str(source),
        ],
        capture_output=True,
        text=True,
        env=_pg_env(store),
    )


# ---- backup -------------------------------------------------------------------------------------
def copy_out(store: Store, target: Path) -> None:
    """Write the whole store to `target` (its folder exists), a fresh file created 0600."""
    if target.exists():
        target.unlink()
    private_file(target)
    if store.engine.dialect.name == "sqlite":
        _sqlite_copy(_sqlite_path(store), target)
    else:
        _pg_dump(store, target)


# ---- verification -------------------------------------------------------------------------------
def _pg_problem(source: Path) -> str | None:
    """`pg_restore --list` reads the archive; it holds ltfu's tables and a known version."""
    listing = subprocess.run(
        [_tool("pg_restore"), "--list", str(source)], capture_output=True, text=True
    )
    if listing.returncode:
        return "it is not a PostgreSQL backup made by `ltfu backup` (pg_restore cannot read it)"
    for name in CORE_TABLES:
        if not re.search(rf"\bTABLE \S+ {name}\b", listing.stdout):
            return f"it is not an ltfu store (no table {name})"
    data = subprocess.run(
        [_tool("pg_restore"), "--data-only", "--table=schema_migrations", "-f", "-", str(source)],
        capture_output=True,
        text=True,
    )
    versions: list[int] = []
    in_copy = False
    for line in data.stdout.splitlines():
        if line.startswith("COPY ") and "schema_migrations" in line:
            in_copy = True
        elif in_copy and line == "\\.":
            in_copy = False
        elif in_copy and line.split("\t", 1)[0].isdigit():
            versions.append(int(line.split("\t", 1)[0]))
    return version_problem(max(versions) if versions else None)


def backup_problem(store: Store, source: Path) -> str | None:
    """Every check of the file that needs no change to the store."""
    if store.engine.dialect.name == "sqlite":
        return sqlite_backup_problem(source)
    return _pg_problem(source)


# ---- restore ------------------------------------------------------------------------------------
@contextmanager
def _scratch(folder: Path, suffix: str) -> Iterator[Path]:
    """A private scratch file in `folder`, removed afterwards with SQLite's companions."""
    handle, name = tempfile.mkstemp(prefix=".ltfu-restore-", suffix=suffix, dir=folder)
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        for extra in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{extra}").unlink(missing_ok=True)


def copy_in(store: Store, source: Path) -> None:
    """Replace the store with a backup that passed `backup_problem`; unchanged when anything
    fails."""
    if store.engine.dialect.name == "sqlite":
        _restore_sqlite(store, source)
    else:
        _restore_postgres(store, source)


def _restore_sqlite(store: Store, source: Path) -> None:
    live = Path(_sqlite_path(store))
    with _scratch(live.parent, ".db") as staged:
        _sqlite_copy(source, staged)
        try:
            candidate = Store.open(f"sqlite:///{staged}")  # migrates an older version here
            problem = store_problem(candidate)
            candidate.close()
        except Exception as exc:  # any failure to open is a refusal, not a traceback
            problem = f"it cannot be opened as a store ({type(exc).__name__})"
        if problem:
            raise refusal(source, problem)
        safety = live.with_name(live.name + ".before-restore")
        private_file(safety)
        _sqlite_copy(live, safety)
        store.engine.dispose()
        try:
            _sqlite_copy(staged, live)
            problem = store_problem(store)
        except Exception as exc:
            problem = f"replacing the store failed ({type(exc).__name__})"
        if problem:
            store.engine.dispose()
            _sqlite_copy(safety, live)
            raise BackupRefusedError(
                f"{source}: {problem}, so the store was put back as it was (kept in {safety})."
            )
        safety.unlink()


def _restore_postgres(store: Store, source: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ltfu-restore-") as folder:
        safety = Path(folder) / "before-restore.dump"
        private_file(safety)
        _pg_dump(store, safety)
        store.engine.dispose()
        result = _pg_restore(store, source)
        if result.returncode:
            # --single-transaction: nothing of the failed restore was committed
            raise refusal(source, f"pg_restore failed ({_last_line(result.stderr)})")
        try:
            store.migrate()
            problem = store_problem(store)
        except Exception as exc:  # any failure to open is a rollback, not a traceback
            problem = f"the restored store cannot be opened ({type(exc).__name__})"
        if problem:
            store.engine.dispose()
            back = _pg_restore(store, safety)
            if back.returncode:
                kept = Path(tempfile.mkdtemp(prefix="ltfu-safety-")) / "before-restore.dump"
                shutil.copy2(safety, kept)
                raise BackupRefusedError(
                    f"{source}: {problem}, and putting the store back failed; the previous store "
                    f"is kept in {kept}."
                )
            raise BackupRefusedError(f"{source}: {problem}, so the store was put back as it was.")
