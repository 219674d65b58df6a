"""Kept rule evaluations (`alert_evaluations`): the rule alerts of one clinical version, one
evaluation date and one set of settings, as Parquet in the database itself.

In the database, not in a file beside it, so that PostgreSQL and several `ltfu serve` instances
share them, a backup and its restore carry them along with the data they describe, and an entry
is written in one transaction (a crash leaves none or a whole one, never a partial one).

Key: the clinical token (replaced by every commit that changes patients or visits, and only by
those: acknowledgements and flags are joined at read time), the evaluation date, and a hash of the
settings' text and the code of `monitoring` itself (an upgraded rule never serves an older rule's
alerts). An entry holds every patient's alerts (as `evaluate_alerts(..., kept=True)` makes them:
with their text, or, evaluated for a count, the raw values a reader that shows them makes the
text of); a site-limited read keeps its sites' patients
(`monitoring.alert_evaluation`), so the scope is not part of the key. Entries are written only by
an evaluation whose clinical state did not move while it read (`write_entry`'s caller checks), and
the clinical version beside the token lets a later version start from an older entry and
re-evaluate only the patients changed since (`store.clinical_version.changed_since`).

An entry is whole (every patient's rows) or a delta: a whole entry (`base_entry`, of any
clinical version or date) with the rows of the patients in `replaced` replaced by the entry's
own. Its writer vouches that every other patient's rows are the same in both. So an upload of
some patients, a reader bringing an older entry up to date, and a new day write only the rows
that moved; a delta always names a whole entry (never another delta), and a writer whose
delta would replace too many patients writes a whole entry instead (compaction). A delta whose
base is gone is a miss; deleting entries keeps the bases of the entries kept.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from monitoring.errors import StoreBusyError
from monitoring.store import tables as t
from monitoring.store.clinical_version import (
    ClinicalState,
    changed_since,
    patient_count,
    read_state,
)
from monitoring.store.engine import brief_write_transaction, read_connection
from monitoring.store.store import Store, utc_now

_KEEP_ENTRIES = 6  # the newest entries kept over every date and setting
_WAIT_SECONDS = 0.5  # a reader does not queue behind an upload to keep its evaluation


@functools.cache
def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()


def settings_key(settings: str) -> str:
    """The settings' text (thresholds in force) and the code, as one short key."""
    return hashlib.sha256(f"{settings}|{_code_fingerprint()}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Delta:
    """What a delta entry replaces in its whole entry: the rows of the `replaced` patients."""

    base_entry: int
    replaced: pl.Series  # patient ids
    alerts: pl.DataFrame  # the replaced patients' rows
    facts: pl.DataFrame


@dataclass(frozen=True)
class KeptEvaluation:
    """An entry as read: for a delta entry, `alerts` and `facts` are its whole entry's and
    `delta` what replaces some of their rows (the caller merges)."""

    version: int
    token: str
    alerts: pl.DataFrame
    facts: pl.DataFrame
    as_of: date
    entry_id: int
    delta: Delta | None = None


def _frame(blob: bytes, columns: list[str] | None) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(blob), columns=columns)


def _blob(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # zstd at level 1: as fast to encode and decode as snappy for 159 000 alerts (0.11 s,
    # 0.045 s) and half its size (6 vs 11 MB), so the entry's write costs less (0.22 → 0.20 s
    # of CPU); zstd's default level took twice as long
    frame.write_parquet(buffer, statistics=False, compression="zstd", compression_level=1)
    return buffer.getvalue()


def _patients(blob: bytes) -> pl.Series:
    return _frame(blob, None)["patient_id"].cast(pl.String)


def _read(
    conn: sa.Connection,
    head: Sequence[Any],
    columns: list[str] | None,
    fact_columns: list[str] | None,
    whole_rows: bool = True,
) -> KeptEvaluation | None:
    """The entry `head` names (entry_id, version, token, as_of, base_entry): its rows, and a
    delta's whole entry's. With `whole_rows` False no whole entry's rows are read (a whole
    entry comes with empty frames, a delta with its own rows only). None when it cannot be
    read or a delta's whole entry is gone."""
    e = t.alert_evaluations
    entry_id, version, token, as_of, base_entry = head

    def rows(entry: int) -> tuple[pl.DataFrame, pl.DataFrame, bytes | None] | None:
        blobs = conn.execute(
            sa.select(e.c.alerts, e.c.facts, e.c.replaced).where(e.c.entry_id == entry)
        ).first()
        if blobs is None:
            return None
        alerts = _frame(bytes(blobs[0]), columns)
        facts = _frame(bytes(blobs[1]), fact_columns)
        return alerts, facts, None if blobs[2] is None else bytes(blobs[2])

    try:
        day = date.fromisoformat(str(as_of))
        if base_entry is None and not whole_rows:
            empty = (pl.DataFrame(), pl.DataFrame())
            return KeptEvaluation(int(version), str(token), *empty, day, int(entry_id))
        own = rows(int(entry_id))
        if own is None:
            return None
        if base_entry is None:
            return KeptEvaluation(int(version), str(token), own[0], own[1], day, int(entry_id))
        if own[2] is None:
            return None
        delta = Delta(int(base_entry), _patients(own[2]), own[0], own[1])
        base_rows = (delta.alerts.clear(), delta.facts.clear())
        if whole_rows:
            found = rows(delta.base_entry)
            if found is None or found[2] is not None:  # gone, or not a whole entry
                return None
            base_rows = (found[0], found[1])
        return KeptEvaluation(int(version), str(token), *base_rows, day, int(entry_id), delta)
    except Exception:  # unreadable: evaluate again (and a later write replaces it)
        return None


def read_entry(
    conn: sa.Connection,
    as_of: date,
    key: str,
    *,
    token: str | None = None,
    below_version: int | None = None,
    columns: list[str] | None = None,
    fact_columns: list[str] | None = None,
    other_day: bool = False,
    whole_rows: bool = True,
) -> KeptEvaluation | None:
    """The entry of `token`, or (with `below_version`) the newest entry of an older clinical
    version, or (with `other_day`) the entry kept for the date nearest to `as_of`; None when
    there is none or it cannot be read. `columns` / `fact_columns` read
    only those columns of its alerts / facts; `whole_rows` False reads no whole entry's rows
    (of a delta entry only its own)."""
    e = t.alert_evaluations
    query = sa.select(
        e.c.entry_id, e.c.clinical_version, e.c.clinical_token, e.c.as_of, e.c.base_entry
    ).where(e.c.settings == key)
    if token is not None:
        query = query.where(e.c.clinical_token == token)
    if below_version is not None:
        query = query.where(e.c.clinical_version < below_version)
    if other_day:  # the entry of the same token kept for the nearest other date (newest)
        heads = conn.execute(query.where(e.c.as_of != as_of.isoformat())).all()
        if not heads:
            return None

        def distance(head: Sequence[Any]) -> tuple[int, int]:
            return abs((date.fromisoformat(str(head[3])) - as_of).days), -int(head[0])

        return _read(conn, min(heads, key=distance), columns, fact_columns, whole_rows)
    query = query.where(e.c.as_of == as_of.isoformat())
    head = conn.execute(query.order_by(e.c.clinical_version.desc()).limit(1)).first()
    if head is None:
        return None
    return _read(conn, head, columns, fact_columns, whole_rows)


@dataclass(frozen=True)
class Lookup:
    """What one read transaction found for an evaluation date and settings."""

    state: ClinicalState  # the clinical state the reader sees
    hit: KeptEvaluation | None  # the entry of that state
    base: KeptEvaluation | None  # else the newest entry of an older clinical version
    changed: pl.Series | None  # the patients changed since `base`
    stored_patients: int
    other_day: KeptEvaluation | None = None  # else an entry of this state for another date


def lookup(
    store: Store,
    as_of: date,
    key: str,
    columns: list[str] | None = None,
    fact_columns: list[str] | None = None,
    *,
    base: bool = True,
) -> Lookup:
    """The kept entry of the current clinical state, or (with `base`) the newest older one and
    the patients changed since it, all read in one transaction."""
    with read_connection(store.engine) as conn:
        state, stored = read_state(conn), patient_count(conn)
        if state.token is None:
            return Lookup(state, None, None, None, stored)
        hit = read_entry(
            conn, as_of, key, token=state.token, columns=columns, fact_columns=fact_columns
        )
        if hit is not None or not base:
            return Lookup(state, hit, None, None, stored)
        older = read_entry(conn, as_of, key, below_version=state.version)
        changed = changed_since(conn, older.version) if older is not None else None
        day = read_entry(conn, as_of, key, token=state.token, other_day=True)
        return Lookup(state, None, older, changed, stored, day)


@dataclass(frozen=True)
class Head:
    """The newest entry of an older clinical version (a delta: with its own rows only) and the
    patients changed since it, read in one transaction."""

    state: ClinicalState
    entry: KeptEvaluation
    changed: pl.Series


def newest_older(store: Store, as_of: date, key: str) -> Head | None:
    """What a commit's delta entry may be written over, without reading any whole entry's rows:
    the newest entry for `as_of` older than the current clinical state (None: none)."""
    with read_connection(store.engine) as conn:
        state = read_state(conn)
        older = read_entry(conn, as_of, key, below_version=state.version, whole_rows=False)
        if older is None:
            return None
        return Head(state, older, changed_since(conn, older.version))


def clinical_state(store: Store) -> ClinicalState:
    with read_connection(store.engine) as conn:
        return read_state(conn)


def write_entry(
    store: Store,
    state: ClinicalState,
    as_of: date,
    key: str,
    alerts: pl.DataFrame,
    facts: pl.DataFrame,
    delta_of: int | None = None,
    replaced: pl.Series | None = None,
) -> None:
    """Keep the evaluation of `state` (one transaction; best effort: a store busy with another
    write for more than half a second, or another process that kept the same entry first, is
    no error) and drop older ones. With `delta_of` (a whole entry) and `replaced`: a delta
    entry, `alerts` and `facts` being the replaced patients' rows; nothing is kept when that
    whole entry is gone."""
    if state.token is None:
        return
    e = t.alert_evaluations
    alerts_blob, facts_blob = _blob(alerts), _blob(facts)
    replaced_blob = None
    if delta_of is not None and replaced is not None:
        replaced_blob = _blob(replaced.cast(pl.String).alias("patient_id").to_frame())
    busy = (StoreBusyError, sa.exc.IntegrityError, sa.exc.OperationalError)
    with contextlib.suppress(*busy), brief_write_transaction(store.engine, _WAIT_SECONDS) as conn:
        exists = conn.execute(
            sa.select(e.c.entry_id).where(
                e.c.clinical_token == state.token,
                e.c.as_of == as_of.isoformat(),
                e.c.settings == key,
            )
        ).first()
        if exists is not None:
            return
        if replaced_blob is not None:
            base = conn.execute(
                sa.select(e.c.entry_id).where(e.c.entry_id == delta_of, e.c.base_entry.is_(None))
            ).first()
            if base is None:
                return
        conn.execute(
            e.insert().values(
                clinical_version=state.version,
                clinical_token=state.token,
                as_of=as_of.isoformat(),
                settings=key,
                alerts=alerts_blob,
                facts=facts_blob,
                written_at=utc_now(),
                base_entry=delta_of if replaced_blob is not None else None,
                replaced=replaced_blob,
            )
        )
        older = e.delete().where(
            e.c.as_of == as_of.isoformat(),
            e.c.settings == key,
            e.c.clinical_version < state.version,
        )
        if replaced_blob is not None:
            older = older.where(e.c.entry_id != delta_of)
        conn.execute(older)
        newest = sa.select(e.c.entry_id).order_by(e.c.entry_id.desc()).limit(_KEEP_ENTRIES)
        # the whole entries the newest deltas name are kept with them
        bases = sa.select(e.c.base_entry).where(
            e.c.entry_id.in_(newest), e.c.base_entry.is_not(None)
        )
        conn.execute(e.delete().where(e.c.entry_id.not_in(newest), e.c.entry_id.not_in(bases)))
        # a delta whose whole entry is gone can never be read
        conn.execute(
            e.delete().where(
                e.c.base_entry.is_not(None), e.c.base_entry.not_in(sa.select(e.c.entry_id))
            )
        )


__all__ = [
    "Delta",
    "Head",
    "KeptEvaluation",
    "Lookup",
    "clinical_state",
    "lookup",
    "newest_older",
    "read_entry",
    "settings_key",
    "write_entry",
]
