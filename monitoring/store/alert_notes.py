"""SQL of what people add to alerts: acknowledgements (append-only) and physician flags.

The queue logic (evaluation, status, ordering) lives in `monitoring.alert_queue`; every write
here is one transaction with its audit entry and a new `data_version`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl
import sqlalchemy as sa

from monitoring.store import columnar
from monitoring.store import tables as t
from monitoring.store.engine import read_connection, write_transaction
from monitoring.store.store import Store

ACK_COLUMNS: tuple[str, ...] = ("ack_id", "alert_id", "user_name", "at", "note")

Row = tuple[object, ...]


def _rows(conn: sa.Connection, query: sa.Select[Any]) -> list[Row]:
    return [tuple(r) for r in conn.execute(query).fetchall()]


def _in_scope(store: Store, patient_id: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """True for a patient the store's site scope lets it read."""
    if store.scope.sites is None:
        return sa.true()
    return patient_id.in_(
        sa.select(t.patients.c.patient_id).where(t.patients.c.site.in_(sorted(store.scope.sites)))
    )


def flag_rows(store: Store, columns: Sequence[str]) -> list[Row]:
    """Every physician flag (oldest first) of the store's scope, as tuples of `columns`."""
    query = (
        sa.select(*[t.flags.c[name] for name in columns])
        .where(_in_scope(store, t.flags.c.patient_id))
        .order_by(t.flags.c.flag_id)
    )
    with read_connection(store.engine) as conn:
        return _rows(conn, query)


def acknowledgement_rows(store: Store, alert_id: str | None = None) -> list[Row]:
    """Every acknowledgement (oldest first), or those of one alert, as tuples of ACK_COLUMNS."""
    query = sa.select(*[t.acknowledgements.c[name] for name in ACK_COLUMNS]).order_by(
        t.acknowledgements.c.ack_id
    )
    if alert_id is not None:
        query = query.where(t.acknowledgements.c.alert_id == alert_id)
    with read_connection(store.engine) as conn:
        return _rows(conn, query)


def acknowledged_ids(store: Store) -> pl.Series:
    """The distinct alert ids with at least one acknowledgement."""
    query = sa.select(t.acknowledgements.c.alert_id).distinct()
    with read_connection(store.engine) as conn:
        frame = columnar.read_frame(conn, query, {"alert_id": pl.String()})
    return frame["alert_id"]


def insert_acknowledgement(
    store: Store, alert_id: str, user: str, at: str, note: str, audit: dict[str, Any]
) -> None:
    with write_transaction(store.engine) as conn:
        conn.execute(
            t.acknowledgements.insert().values(alert_id=alert_id, user_name=user, at=at, note=note)
        )
        Store.audit(conn, user, "acknowledge_alert", audit)
        Store.bump_version(conn)


def insert_flag(
    store: Store,
    patient_id: str,
    user: str,
    severity: str,
    note: str,
    raised_on: date,
    at: str,
    audit: dict[str, Any],
) -> bool:
    """Store a flag; False (nothing written) when the patient is not in the store or not in the
    store's site scope (the caller cannot tell the two apart)."""
    with write_transaction(store.engine) as conn:
        known = conn.execute(
            sa.select(t.patients.c.patient_id).where(
                t.patients.c.patient_id == patient_id, _in_scope(store, t.patients.c.patient_id)
            )
        ).first()
        if known is None:
            return False
        conn.execute(
            t.flags.insert().values(
                patient_id=patient_id,
                user_name=user,
                severity=severity,
                note=note,
                raised_on=raised_on,
                at=at,
            )
        )
        Store.audit(conn, user, "flag_patient", audit)
        Store.bump_version(conn)
    return True
