"""What is new in the alert queue (CONTRACT §4, `first_seen_*`).

Each committed upload records the alerts that first appear with it, evaluated as of its commit
date (`record_upload`, called by ingest after the commit). The queue then carries:

    first_seen_upload   the upload an alert first appeared with (null: not recorded)
    first_seen_at       that upload's commit time (UTC ISO); for a physician flag the time it was
                        raised; for an alert not recorded yet (one that appeared with the passing
                        of time, such as a window that has closed) the evaluation date YYYY-MM-DD

The times are ISO text in UTC, so they order as text: a date sorts as the start of its day.
`inbox` orders the queue as the Alerts page opens it: most severe first, then newest first.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from monitoring.alerts import alert_id, severity_rank
from monitoring.config import Config
from monitoring.store import Store
from monitoring.store.alert_ledger import (
    read_first_seen,
    record_first_seen,
    upload_commit_time,
)

ALERTS_PAGE = "alerts"


def record_upload(
    store: Store,
    upload_id: int,
    patient_ids: pl.Series,
    config: Config | None = None,
    *,
    rows: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    clinical_version: int | None = None,
) -> int:
    """Record the alerts that first appear with `upload_id` (evaluated as of its commit date)
    for the patients it touched (only their data changed; evaluating only them keeps a small
    upload fast); returns how many were new.

    `rows`: those patients' (patients, visits) after the commit, when the caller holds them (the
    store is not read again). With `clinical_version` (the version the upload's commit made),
    the same evaluation also keeps the whole store's rule alerts for that date when the upload
    touched every stored patient (`alert_evaluation.keep_committed`): the first `ltfu status` or
    alert queue after the upload reads them. After a smaller upload the first reader merges its
    patients into the kept evaluation, so the upload costs what it holds."""
    from monitoring.alert_evaluation import evaluate_patients, keep_committed
    from monitoring.config import get_config
    from monitoring.store.clinical_version import keep_snapshot

    committed = upload_commit_time(store, upload_id)
    if committed is None or patient_ids.is_empty():
        return 0
    cfg = config or get_config()
    day = date.fromisoformat(committed[:10])
    if rows is None:
        # every touched patient, whatever the uploader's scope (the kept evaluation is everyone's)
        _version, patients, visits = store.unscoped().snapshot_of(patient_ids)
    else:
        patients, visits = rows
    fresh = evaluate_patients(patients, visits, day, cfg)
    new = record_first_seen(store, upload_id, committed, fresh.hits)  # ids: no text needed
    if clinical_version is not None:
        keep_committed(store, clinical_version, day, cfg, patient_ids, fresh)
        if rows is not None:  # a first ingest holds every row: the next reader's snapshot
            keep_snapshot(store.engine, clinical_version, patients, visits)
    return new


def _flag_times(store: Store) -> pl.DataFrame:
    """alert_id → when the first flag of that patient and day was raised."""
    from monitoring.alert_queue import read_flags

    flags = read_flags(store)
    if flags.is_empty():
        return pl.DataFrame(schema={"alert_id": pl.String(), "flag_at": pl.String()})
    first = flags.group_by("patient_id", "raised_on").agg(pl.col("at").min().alias("flag_at"))
    ids = [
        alert_id(pid, "physician_flag", raised)
        for pid, raised in first.select("patient_id", "raised_on").iter_rows()
    ]
    return first.select(pl.Series("alert_id", ids, pl.String()), pl.col("flag_at").cast(pl.String))


def with_first_seen(store: Store, queue: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """`queue` (any frame with alert_id and rule) plus first_seen_upload and first_seen_at."""
    ledger = read_first_seen(store)
    flags = _flag_times(store)
    return (
        queue.join(ledger, on="alert_id", how="left")
        .join(flags, on="alert_id", how="left")
        .with_columns(
            first_seen_upload=pl.when(pl.col("rule") == "physician_flag")
            .then(None)
            .otherwise(pl.col("first_seen_upload")),
            first_seen_at=pl.when(pl.col("rule") == "physician_flag")
            .then(pl.col("flag_at"))
            .otherwise(pl.col("first_seen_at"))
            .fill_null(as_of.isoformat()),
        )
        .drop("flag_at")
    )


def queue_with_first_seen(
    store: Store,
    as_of: date | None = None,
    status: str = "open",
    config: Config | None = None,
) -> pl.DataFrame:
    """`alerts_with_status` (same order) with first_seen_upload and first_seen_at."""
    from monitoring.alert_queue import alerts_with_status

    day = as_of or store.today()
    return with_first_seen(store, alerts_with_status(store, day, status, config), day)


def inbox(queue: pl.DataFrame) -> pl.DataFrame:
    """Most severe first; within a severity newest first (first seen, then triggered), so what
    an upload just brought is at the top of its severity."""
    return (
        queue.with_columns(_rank=severity_rank())
        .sort(
            ["_rank", "first_seen_at", "triggered_on", "patient_id", "rule"],
            descending=[False, True, True, False, False],
        )
        .drop("_rank")
    )


def mark_new(queue: pl.DataFrame, since: str | None) -> pl.DataFrame:
    """Adds `new`: first seen after `since` (a UTC ISO time or a date); all False without one
    (a user who never opened the page has no "since")."""
    if since is None:
        return queue.with_columns(new=pl.lit(False))
    return queue.with_columns(new=pl.col("first_seen_at") > pl.lit(since))


def first_seen_since(
    queue: pl.DataFrame, *, upload_id: int | None = None, since: str | None = None
) -> pl.DataFrame:
    """Alerts first seen with upload `upload_id` or a later one (a flag or an unrecorded alert:
    at or after `since`, that upload's commit time), or first seen at or after `since` (a date
    YYYY-MM-DD or a UTC ISO time) when no upload is given."""
    if upload_id is None:
        if since is None:
            return queue
        return queue.filter(pl.col("first_seen_at") >= pl.lit(since))
    by_time = pl.col("first_seen_at") >= pl.lit(since) if since is not None else pl.lit(False)
    return queue.filter(
        pl.when(pl.col("first_seen_upload").is_not_null())
        .then(pl.col("first_seen_upload") >= upload_id)
        .otherwise(by_time)
    )


__all__ = [
    "ALERTS_PAGE",
    "first_seen_since",
    "inbox",
    "mark_new",
    "queue_with_first_seen",
    "record_upload",
    "with_first_seen",
]
