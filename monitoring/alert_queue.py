"""The alert queue over the store: evaluated alerts + physician flags, with acknowledgements.

Alerts are derived from the canonical tables (`monitoring.alert_evaluation`: kept per clinical
version, date and settings, never stored as facts); nothing about an alert is stored except what
people add to it:

    flags             a physician's hand-raised flag → rule `physician_flag` on `raised_on`
    acknowledgements  (alert_id, user_name, at, note), append-only: a re-acknowledgement adds a
                      row, nothing is ever deleted

Both key on the stable `alert_id` (patient|rule|triggered_on), so an acknowledgement survives
recomputation and re-upload, and a worsening signal with a new triggering date is a new alert.
Every write is audit-logged and bumps the store's `data_version` in the same transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import polars as pl

from monitoring.alerts import (
    ALERT_COLUMNS,
    FLAG_COLUMNS,
    FLAG_SEVERITIES,
    alert_id,
    empty_flags,
    severity_rank,
)
from monitoring.config import Config
from monitoring.errors import NotFoundError, UsageError
from monitoring.store import Store, alert_notes
from monitoring.store.store import utc_now

Status = Literal["open", "acknowledged", "all"]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "all")

QUEUE_COLUMNS: tuple[str, ...] = (
    *ALERT_COLUMNS,
    "status",
    "acknowledged_by",
    "acknowledged_at",
    "ack_note",
    "ack_count",
)
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "ack_id": pl.Int64(),
    "alert_id": pl.String(),
    "user_name": pl.String(),
    "at": pl.String(),
    "note": pl.String(),
}


def read_flags(store: Store) -> pl.DataFrame:
    """The `flags` table as a frame (patient_id, user_name, severity, note, raised_on, at)."""
    rows = alert_notes.flag_rows(store, FLAG_COLUMNS)
    if not rows:
        return empty_flags()
    return pl.DataFrame(rows, schema=empty_flags().schema, orient="row")


def _acknowledgement_rows(store: Store, alert_id: str | None = None) -> pl.DataFrame:
    rows = alert_notes.acknowledgement_rows(store, alert_id)
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row")


def acknowledgement_history(store: Store, alert_id: str | None = None) -> pl.DataFrame:
    """Every acknowledgement (oldest first), or those of one alert; through a site-limited
    store only those of its patients' alerts (today's, and every one the first-seen ledger
    holds for them: an alert id is a hash, so the patient is found through the alert)."""
    history = _acknowledgement_rows(store, alert_id)
    if store.scope.is_every_site or history.is_empty():
        return history
    from monitoring.store.alert_ledger import alert_ids_in_scope

    visible = pl.concat([evaluate_store(store)["alert_id"], alert_ids_in_scope(store)])
    return history.filter(pl.col("alert_id").is_in(visible.implode()))


def evaluate_store(
    store: Store, as_of: date | None = None, config: Config | None = None
) -> pl.DataFrame:
    """All alerts (rules + physician flags) of the store's current data as of `as_of`: the
    rules evaluated once per clinical version, day and thresholds, and after a commit only for
    the patients it changed (`monitoring.alert_evaluation`); flags joined as they are now."""
    from monitoring.alert_evaluation import queue_alerts

    return queue_alerts(store, as_of or store.today(), config, read_flags(store))


def alerts_with_status(
    store: Store,
    as_of: date | None = None,
    status: str = "open",
    config: Config | None = None,
) -> pl.DataFrame:
    """The queue: alerts with status, acknowledged_by/at and ack_note of the latest
    acknowledgement, and ack_count; sorted by severity (critical first), then triggered_on
    (oldest first), patient and rule."""
    if status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}, not '{status}'")
    alerts = evaluate_store(store, as_of, config)
    history = _acknowledgement_rows(store)  # joined to the (scoped) alerts below
    latest = history.group_by("alert_id").agg(
        pl.col("user_name").sort_by("ack_id").last().alias("acknowledged_by"),
        pl.col("at").sort_by("ack_id").last().alias("acknowledged_at"),
        pl.col("note").sort_by("ack_id").last().alias("ack_note"),
        pl.len().cast(pl.Int64).alias("ack_count"),
    )
    queue = alerts.join(latest, on="alert_id", how="left").with_columns(
        status=pl.when(pl.col("acknowledged_by").is_not_null())
        .then(pl.lit("acknowledged"))
        .otherwise(pl.lit("open")),
        ack_count=pl.col("ack_count").fill_null(0),
    )
    if status != "all":
        queue = queue.filter(pl.col("status") == status)
    return (
        queue.with_columns(_rank=severity_rank())
        .sort("_rank", "triggered_on", "patient_id", "rule")
        .select(QUEUE_COLUMNS)
    )


_COUNT_COLUMNS = ["alert_id", "patient_id", "rule", "severity", "triggered_on"]


def open_alert_count(store: Store, as_of: date | None = None) -> int:
    """How many alerts are open (`alerts_with_status(store, as_of, "open").height`), reading
    only the ids of kept alerts and the acknowledged ids."""
    from monitoring.alert_evaluation import queue_alerts

    day = as_of or store.today()
    alerts = queue_alerts(store, day, None, read_flags(store), _COUNT_COLUMNS)
    acknowledged = alert_notes.acknowledged_ids(store)
    return alerts.filter(~pl.col("alert_id").is_in(acknowledged.implode())).height


def _require_text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise UsageError(f"{what} must not be empty")
    return text


def acknowledge(
    store: Store,
    alert_id: str,
    user: str,
    note: str,
    *,
    as_of: date | None = None,
) -> dict[str, object]:
    """Record that `user` acknowledged `alert_id` with `note`; returns the alert's row.

    The alert must exist in the evaluation as of `as_of` (default today). A second
    acknowledgement adds a row; none is ever deleted.
    """
    user = _require_text(user, "the user name")
    note = _require_text(note, "the acknowledgement note (what was decided or done)")
    alerts = evaluate_store(store, as_of).filter(pl.col("alert_id") == alert_id)
    if not alerts.height:
        raise NotFoundError(
            f"no alert '{alert_id}' as of {(as_of or store.today()).isoformat()}; "
            "list them with `ltfu alerts --status all`"
        )
    row = alerts.row(0, named=True)
    at = utc_now()
    audit = {
        "alert_id": alert_id,
        "patient_id": row["patient_id"],
        "rule": row["rule"],
        "triggered_on": row["triggered_on"],
        "note": note,
    }
    alert_notes.insert_acknowledgement(store, alert_id, user, at, note, audit)
    return {**row, "acknowledged_by": user, "acknowledged_at": at, "ack_note": note}


def flag_patient(
    store: Store,
    patient_id: str,
    user: str,
    severity: str,
    note: str,
    raised_on: date | None = None,
) -> str:
    """Raise a physician flag; returns its alert_id (patient|physician_flag|raised_on)."""
    user = _require_text(user, "the user name")
    note = _require_text(note, "the flag note")
    if severity not in FLAG_SEVERITIES:
        raise UsageError(f"severity must be one of {', '.join(FLAG_SEVERITIES)}, not '{severity}'")
    raised = raised_on or store.today()
    new_id = alert_id(patient_id, "physician_flag", raised)
    audit = {
        "patient_id": patient_id,
        "severity": severity,
        "note": note,
        "raised_on": raised,
        "alert_id": new_id,
    }
    if not alert_notes.insert_flag(
        store, patient_id, user, severity, note, raised, utc_now(), audit
    ):
        raise NotFoundError(f"no patient '{patient_id}' in the store")
    return new_id


__all__ = [
    "QUEUE_COLUMNS",
    "STATUSES",
    "acknowledge",
    "acknowledgement_history",
    "alerts_with_status",
    "evaluate_store",
    "flag_patient",
    "open_alert_count",
    "read_flags",
]
