"""Acknowledging several alerts with one note (CONTRACT §4, §5 `ltfu ack`).

`acknowledge_ids` takes alert ids (every one must exist as of the evaluation date, or nothing
is written); `acknowledge_matching` takes filters and acknowledges every open alert that
matches all of them, refusing when no filter is given. Either way each alert gets its own
acknowledgement record and audit entry, in one transaction: all of them or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from monitoring.alerts import SEVERITIES
from monitoring.config import Config
from monitoring.errors import NotFoundError, UsageError
from monitoring.store import Store
from monitoring.store.alert_ledger import AckTarget, insert_acknowledgements


@dataclass(frozen=True)
class AckFilter:
    """Filters of `ltfu ack --all`; an alert must match every one given."""

    rule: str | None = None
    severity: str | None = None
    triggered_before: date | None = None
    patient_id: str | None = None

    def is_empty(self) -> bool:
        return (
            self.rule is None
            and self.severity is None
            and self.triggered_before is None
            and self.patient_id is None
        )

    def apply(self, queue: pl.DataFrame) -> pl.DataFrame:
        if self.severity is not None and self.severity not in SEVERITIES:
            raise UsageError(
                f"severity must be one of {', '.join(SEVERITIES)}, not '{self.severity}'"
            )
        if self.rule is not None:
            queue = queue.filter(pl.col("rule") == self.rule)
        if self.severity is not None:
            queue = queue.filter(pl.col("severity") == self.severity)
        if self.triggered_before is not None:
            queue = queue.filter(pl.col("triggered_on") < self.triggered_before)
        if self.patient_id is not None:
            queue = queue.filter(pl.col("patient_id") == self.patient_id)
        return queue


@dataclass(frozen=True)
class BulkAckResult:
    count: int
    alert_ids: tuple[str, ...]
    at: str  # UTC ISO time recorded on every acknowledgement


def _require_text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise UsageError(f"{what} must not be empty")
    return text


def _targets(frame: pl.DataFrame) -> list[AckTarget]:
    return [
        AckTarget(alert_id=a, patient_id=p, rule=r, triggered_on=t)
        for a, p, r, t in frame.select("alert_id", "patient_id", "rule", "triggered_on").iter_rows()
    ]


def acknowledge_frame(
    store: Store, alerts: pl.DataFrame, user: str, note: str, *, bulk: bool = True
) -> BulkAckResult:
    """Acknowledge exactly the alerts of `alerts` (alert_id, patient_id, rule, triggered_on):
    the dashboard passes the rows it showed, so what is acknowledged is what was named."""
    user = _require_text(user, "the user name")
    note = _require_text(note, "the acknowledgement note (what was decided or done)")
    targets = _targets(alerts.unique("alert_id", keep="first", maintain_order=True))
    at = insert_acknowledgements(store, targets, user, note, bulk=bulk)
    return BulkAckResult(len(targets), tuple(t.alert_id for t in targets), at)


def acknowledge_ids(
    store: Store,
    alert_ids: Sequence[str],
    user: str,
    note: str,
    *,
    as_of: date | None = None,
    config: Config | None = None,
) -> BulkAckResult:
    """Acknowledge each of `alert_ids` (open or not: a second acknowledgement adds a record).
    Unknown ids are named and nothing is written."""
    from monitoring.alert_queue import evaluate_store

    if not alert_ids:
        raise UsageError("name at least one alert id, or use --all with filters")
    _require_text(user, "the user name")
    _require_text(note, "the acknowledgement note (what was decided or done)")
    day = as_of or store.today()
    alerts = evaluate_store(store, day, config)
    found = alerts.filter(pl.col("alert_id").is_in(list(alert_ids)))
    missing = [a for a in dict.fromkeys(alert_ids) if a not in set(found["alert_id"].to_list())]
    if missing:
        raise NotFoundError(
            f"no alert {', '.join(repr(m) for m in missing)} as of {day.isoformat()}; nothing "
            "was acknowledged. List them with `ltfu alerts --status all`"
        )
    order = {a: i for i, a in enumerate(dict.fromkeys(alert_ids))}
    found = found.sort(pl.col("alert_id").replace_strict(order, return_dtype=pl.Int64))
    return acknowledge_frame(store, found, user, note, bulk=len(order) > 1)


def acknowledge_matching(
    store: Store,
    ack_filter: AckFilter,
    user: str,
    note: str,
    *,
    as_of: date | None = None,
    config: Config | None = None,
) -> BulkAckResult:
    """Acknowledge every open alert matching all filters (refused without a filter)."""
    from monitoring.alert_queue import alerts_with_status

    if ack_filter.is_empty():
        raise UsageError(
            "--all needs at least one filter (--rule, --severity, --triggered-before or "
            "--patient); nothing was acknowledged"
        )
    _require_text(user, "the user name")
    _require_text(note, "the acknowledgement note (what was decided or done)")
    queue = alerts_with_status(store, as_of or store.today(), "open", config)
    return acknowledge_frame(store, ack_filter.apply(queue), user, note)


__all__ = [
    "AckFilter",
    "BulkAckResult",
    "acknowledge_frame",
    "acknowledge_ids",
    "acknowledge_matching",
]
