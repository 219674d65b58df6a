"""The clinical data version: what changes only when patients or visits change.

    meta.clinical_version   counts the commits that changed patients or visits
    meta.clinical_token     a random value each of those commits replaces (one token names
                            exactly one content of the two tables)
    patient_revisions       patient_id → the clinical version that last changed its rows

Acknowledgements and flags move `data_version` but not these: what is derived
from patients and visits alone (the rule alerts, the columnar snapshot) stays valid across
them. `patient_revisions` tells an evaluation kept at version k which patients changed since:
those whose revision is above k (every rule is per patient, `monitoring.alert_evaluation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa

from monitoring.store import columnar
from monitoring.store import tables as t
from monitoring.store.engine import read_connection

VERSION_KEY = "clinical_version"
TOKEN_KEY = "clinical_token"


@dataclass(frozen=True)
class ClinicalState:
    version: int
    token: str | None  # None: no clinical commit yet


def read_state(conn: sa.Connection) -> ClinicalState:
    """The clinical version and token, inside the caller's transaction."""
    rows = {
        str(key): str(value)
        for key, value in conn.execute(
            sa.select(t.meta.c.key, t.meta.c.value).where(
                t.meta.c.key.in_((VERSION_KEY, TOKEN_KEY))
            )
        )
    }
    return ClinicalState(int(rows.get(VERSION_KEY) or 0), rows.get(TOKEN_KEY))


def _set(conn: sa.Connection, key: str, value: str) -> None:
    updated = conn.execute(t.meta.update().where(t.meta.c.key == key).values(value=value))
    if not updated.rowcount:
        conn.execute(t.meta.insert().values(key=key, value=value))


def record_commit(conn: sa.Connection, patient_ids: pl.Series) -> int:
    """Count a commit that changed these patients' rows (inside its transaction): a new
    clinical version and token, and each patient's revision set to it. Returns the version."""
    version = read_state(conn).version + 1
    _set(conn, VERSION_KEY, str(version))
    _set(conn, TOKEN_KEY, columnar.new_token())
    ids = patient_ids.drop_nulls().cast(pl.String).unique().sort()
    if ids.is_empty():
        return version
    # one statement over one bound JSON array of the ids (no Python row per patient)
    text = json.dumps(ids.to_list())
    source: Any
    statement: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        values = sa.func.json_array_elements_text(sa.cast(sa.literal(text), sa.JSON))
        source = sa.select(values, sa.literal(version, sa.Integer))
        statement = pg_insert(t.patient_revisions)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        source = (
            sa.select(sa.literal_column("value"), sa.literal(version, sa.Integer))
            .select_from(sa.func.json_each(sa.literal(text)))
            .where(sa.true())  # SQLite: an upsert's SELECT needs a WHERE (parser ambiguity)
        )
        statement = sqlite_insert(t.patient_revisions)
    statement = statement.from_select(["patient_id", "revision"], source)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["patient_id"], set_={"revision": statement.excluded.revision}
        )
    )
    return version


def keep_snapshot(
    engine: sa.Engine, committed_version: int, patients: pl.DataFrame, visits: pl.DataFrame
) -> bool:
    """Write the columnar snapshot of clinical version `committed_version` from frames the
    caller holds (every stored row, in key order: a first ingest's rows), unless another commit
    landed since; SQLite only (`columnar.snapshot_dir`). The next reader then reads the
    Parquet file instead of the database."""
    folder = columnar.snapshot_dir(engine)
    if folder is None:
        return False
    with read_connection(engine) as conn:
        state, stored = read_state(conn), patient_count(conn)
    if state.version != committed_version or state.token is None or patients.height != stored:
        return False
    columnar.save_snapshot(folder, state.token, patients, visits)
    return True


def changed_since(conn: sa.Connection, version: int) -> pl.Series:
    """The patients whose rows changed after clinical version `version`."""
    query = sa.select(t.patient_revisions.c.patient_id).where(
        t.patient_revisions.c.revision > version
    )
    frame = columnar.read_frame(conn, query, {"patient_id": pl.String()})
    return frame["patient_id"]


def patient_count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(t.patients)).scalar() or 0)


__all__ = [
    "ClinicalState",
    "changed_since",
    "keep_snapshot",
    "patient_count",
    "read_state",
    "record_commit",
]
