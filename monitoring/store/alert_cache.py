"""Evaluated alerts kept beside the SQLite store's columnar snapshot, so `ltfu status` (and every
other reader of the same day's alerts) does not evaluate every rule again.

Key: the store's data token (replaced by every commit, flags and acknowledgements included), the
evaluation date, the thresholds in force, the store's site scope (a site-limited account's alerts
are of its sites only and must never be served to another account) and the code of `monitoring` itself (an upgraded rule
never serves an older rule's alerts). An entry is written only when the token read before
the evaluation is still the token after it: nothing committed in between, so the frame is the
alerts of exactly that token. A missing or unreadable entry is evaluated again; PostgreSQL (no
folder beside the database, several instances) always evaluates.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from monitoring.store.columnar import snapshot_dir
from monitoring.store.store import Store

_PREFIX = "alerts-"


@functools.cache
def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _entry(folder: Path, token: str, as_of: date, settings: str) -> Path:
    key = hashlib.sha256(f"{settings}|{_code_fingerprint()}".encode()).hexdigest()[:16]
    return folder / f"{_PREFIX}{token}.{as_of.isoformat()}.{key}.parquet"


def cached_alerts(
    store: Store, as_of: date, settings: str, evaluate: Callable[[], pl.DataFrame]
) -> pl.DataFrame:
    """The alerts of the store's current data as of `as_of` under `settings` (the thresholds'
    text, part of the key; the store knows no configuration): from the cache or `evaluate()`."""
    folder = snapshot_dir(store.engine)
    token = store.data_token() if folder is not None else None
    if folder is None or token is None:
        return evaluate()
    entry = _entry(folder, token, as_of, f"{settings}|{store.scope.key()}")
    with contextlib.suppress(Exception):  # missing or unreadable: evaluate again
        return pl.read_parquet(entry)
    alerts = evaluate()
    if store.data_token() == token:
        _write(folder, entry, alerts)
    return alerts


def _write(folder: Path, entry: Path, alerts: pl.DataFrame) -> None:
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        temp = folder / f".{entry.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            alerts.write_parquet(f, statistics=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, entry)
    except OSError:
        return
