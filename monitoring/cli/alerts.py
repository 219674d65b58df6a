"""`ltfu alerts`, `ltfu ack` and `ltfu flag` (CONTRACT.md §5)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import polars as pl

from monitoring.alerts import FLAG_SEVERITIES, evidence_object
from monitoring.cli.common import (
    Subparsers,
    acting_user,
    add_command,
    open_store,
    parse_date,
    write_table,
)

JSON_FIELDS: tuple[str, ...] = (
    "alert_id",
    "patient_id",
    "rule",
    "severity",
    "triggered_on",
    "message",
    "evidence",
    "status",
)


def alerts_json(queue: pl.DataFrame) -> list[dict[str, Any]]:
    """CONTRACT §5 shape; evidence as a JSON object, dates as YYYY-MM-DD."""
    out: list[dict[str, Any]] = []
    for row in queue.iter_rows(named=True):
        item = {name: row[name] for name in JSON_FIELDS}
        item["triggered_on"] = row["triggered_on"].isoformat()
        item["evidence"] = evidence_object(row["evidence"])
        out.append(item)
    return out


def cmd_alerts(args: argparse.Namespace) -> int:
    from monitoring.alert_queue import alerts_with_status

    with open_store(args) as store:
        queue = alerts_with_status(store, as_of=args.as_of, status=args.status)
    if args.format == "json":
        from monitoring.alerts_json import alerts_json_text

        sys.stdout.write(alerts_json_text(queue, JSON_FIELDS))
    elif args.format == "fhir":
        from monitoring.fhir import alerts_to_fhir_bundle

        bundle = alerts_to_fhir_bundle(queue)
        sys.stdout.write(json.dumps(bundle, ensure_ascii=False, indent=2) + "\n")
    else:
        write_table(queue, "csv")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    from monitoring.alert_queue import acknowledge

    with open_store(args) as store:
        row = acknowledge(store, args.alert_id, acting_user(args), args.note)
    print(
        f"acknowledged {row['alert_id']} ({row['rule']}, {row['patient_id']}, "
        f"{row['triggered_on']}) by {row['acknowledged_by']}"
    )
    return 0


def cmd_flag(args: argparse.Namespace) -> int:
    from monitoring.alert_queue import flag_patient

    with open_store(args) as store:
        new_id = flag_patient(store, args.patient_id, acting_user(args), args.severity, args.note)
    print(f"flagged {args.patient_id} ({args.severity}): alert {new_id}")
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "alerts", cmd_alerts, "the alert queue as of a date (open alerts by default)"
    )
    p.add_argument("--as-of", type=parse_date, help="evaluation date YYYY-MM-DD (default today)")
    p.add_argument("--status", choices=["open", "acknowledged", "all"], default="open")
    p.add_argument("--format", choices=["csv", "json", "fhir"], default="csv")

    p = add_command(
        sub, "ack", cmd_ack, "acknowledge an alert (who, when and a note; never deletes it)"
    )
    p.add_argument("alert_id", metavar="ALERT_ID")
    p.add_argument("--user", required=True)
    p.add_argument("--note", required=True, help="what was decided or done")

    p = add_command(sub, "flag", cmd_flag, "flag a patient by hand: joins the alert queue")
    p.add_argument("patient_id", metavar="PATIENT_ID")
    p.add_argument("--user", required=True)
    p.add_argument("--severity", required=True, choices=list(FLAG_SEVERITIES))
    p.add_argument("--note", required=True)
