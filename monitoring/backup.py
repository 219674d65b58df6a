"""`ltfu backup PATH` / `ltfu restore PATH`: a consistent copy of the whole store.

SQLite: the online backup API (safe while others read or write). PostgreSQL: `pg_dump -Fc` and
`pg_restore --clean`, with the server's own client tools (both in `monitoring.store.backup`).
"""

from __future__ import annotations

from pathlib import Path

from monitoring.errors import UsageError
from monitoring.store import Store
from monitoring.store.backup import copy_in, copy_out


def backup(store: Store, target: str | Path) -> Path:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    copy_out(store, target)
    return target


def restore(store: Store, source: str | Path) -> None:
    source = Path(source)
    if not source.is_file():
        raise UsageError(f"{source}: no such backup file")
    copy_in(store, source)
