"""Who saw what: the audit log's client address and its reader (issue 16, item 7).

Every entry of the append-only `audit_log` carries the client address it came from: the
dashboard registers a source once (`set_client_source`, the browser's address as the server
saw it, the forwarded one behind a trusted proxy); the command line records `cli`. Patient
record views, downloads and exports (what, with which filters), and rejected uploads (with the
report's size) are recorded by the dashboard beside sign-ins, uploads and changes.

`read_log` answers "who saw what" filtered by user, patient and dates; `ltfu audit` and the
admin page show it. The log holds ids and actions, never patient values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

from monitoring.store.client import CLI_CLIENT as CLI_CLIENT
from monitoring.store.client import client_address as client_address
from monitoring.store.client import set_client_source as set_client_source

if TYPE_CHECKING:
    from monitoring.store import Store

COLUMNS = ["audit_id", "at", "user_name", "action", "client", "patient_id", "detail"]


@dataclass(frozen=True)
class AuditQuery:
    """Filters of `read_log`; dates are inclusive UTC calendar days."""

    user: str | None = None
    patient: str | None = None
    since: date | None = None
    until: date | None = None


def read_log(store: Store, query: AuditQuery) -> pl.DataFrame:
    """Entries matching every filter given, newest first, with `client` and `patient_id`
    lifted out of the entry's detail."""
    since = query.since.isoformat() if query.since else None
    until = (query.until + timedelta(days=1)).isoformat() if query.until else None
    rows = store.audit_entries(user=query.user, since=since, before=until)
    clients, patients = [], []
    for detail in rows["detail"].to_list():
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        clients.append(_text(parsed.get("client")))
        patients.append(_text(parsed.get("patient_id")))
    frame = rows.with_columns(
        pl.Series("client", clients, dtype=pl.String),
        pl.Series("patient_id", patients, dtype=pl.String),
    ).select(COLUMNS)
    if query.patient:
        frame = frame.filter(pl.col("patient_id") == query.patient)
    return frame


#: the readable table's headers, in order (the CSV download and `ltfu audit` keep COLUMNS)
READABLE_COLUMNS = ["When (UTC)", "User", "Action", "Client", "Patient", "Details"]
# already a column of their own in the readable table
_LIFTED = frozenset({"client", "patient_id"})


def readable_log(log: pl.DataFrame) -> pl.DataFrame:
    """`read_log`'s entries for a person to read: headers in words, the action's words
    ("view patient", not `view_patient`), the detail as `key: value` pairs instead of JSON,
    and nothing where a value is missing (not "None")."""
    details = [_detail_text(detail) for detail in log["detail"].to_list()]
    return log.select(
        pl.col("at").str.replace("T", " ").str.replace(r"\+00:00$", "").alias("When (UTC)"),
        pl.col("user_name").alias("User"),
        pl.col("action").str.replace_all("_", " ").alias("Action"),
        pl.col("client").fill_null("").alias("Client"),
        pl.col("patient_id").fill_null("").alias("Patient"),
        pl.Series("Details", details, dtype=pl.String),
    )


def _detail_text(detail: object) -> str:
    try:
        parsed = json.loads(str(detail))
    except ValueError:
        return str(detail)
    if not isinstance(parsed, dict):
        return str(parsed)
    return " · ".join(
        f"{key.replace('_', ' ')}: {_value_text(value)}"
        for key, value in parsed.items()
        if key not in _LIFTED and value not in (None, "", [], {})
    )


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value_text(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value_text(v)}" for k, v in value.items())
    return str(value)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
