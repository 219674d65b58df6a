"""`ltfu backup PATH` / `ltfu restore PATH`: a consistent copy of the whole store, and a restore
that cannot destroy it.

Backup: SQLite through the online backup API (safe while others read or write); PostgreSQL with
`pg_dump -Fc` (the server's own client tools; both in `monitoring.store.backup`). Beside the
backup goes `PATH.sha256` in `sha256sum` format. Both files are 0600, the folder 0700.

Restore verifies the file before anything is touched, in this order: it exists and is not empty;
the checksum file matches; SQLite: the header, `PRAGMA integrity_check`, ltfu's tables and a
schema version this ltfu knows; PostgreSQL: `pg_restore --list` reads the archive, it holds ltfu's
tables and a known schema version. Then `store.backup.copy_in` replaces the store with a safety
copy kept until the restored store has passed. Any failure is `BackupRefusedError` (exit 2, one
sentence) with the store as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from monitoring.errors import BackupRefusedError as BackupRefusedError  # callers catch it here
from monitoring.store import Store
from monitoring.store.backup import backup_problem, copy_in, copy_out, refusal
from monitoring.store.private_files import private_dir, private_file


def checksum_path(backup_path: Path) -> Path:
    return backup_path.with_name(backup_path.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def backup(store: Store, target: str | Path) -> Path:
    """Write the backup and its checksum file, both 0600."""
    target = Path(target)
    private_dir(target.parent)
    copy_out(store, target)
    check = checksum_path(target)
    if check.exists():
        check.unlink()
    private_file(check).write_text(f"{_sha256(target)}  {target.name}\n", encoding="utf-8")
    return target


def _verify_checksum(source: Path) -> None:
    check = checksum_path(source)
    if not check.is_file():
        raise refusal(
            source, f"there is no checksum file {check.name} beside it (`ltfu backup` writes one)"
        )
    recorded = check.read_text(encoding="utf-8", errors="replace").split()
    if not recorded or recorded[0].lower() != _sha256(source):
        raise refusal(
            source,
            f"its checksum does not match {check.name}, so it is damaged or was changed after "
            "`ltfu backup` wrote it",
        )


def verify_backup(store: Store, source: str | Path) -> None:
    """Every check that needs no change to the store; BackupRefusedError on the first failure."""
    source = Path(source)
    if not source.is_file():
        raise refusal(source, "there is no such backup file")
    if source.stat().st_size == 0:
        raise refusal(source, "the file is empty")
    _verify_checksum(source)
    problem = backup_problem(store, source)
    if problem:
        raise refusal(source, problem)


def restore(store: Store, source: str | Path) -> None:
    """Replace the store with a verified backup; the store is unchanged when anything fails."""
    source = Path(source)
    verify_backup(store, source)
    copy_in(store, source)
