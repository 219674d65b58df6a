"""`ltfu alerts`, `ltfu ack` and `ltfu flag` (CONTRACT.md §5)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from monitoring.cli.common import (
    Subparsers,
    acting_user,
    add_command,
    open_store,
    parse_date,
    write_table,
)
from monitoring.severities import FLAG_SEVERITIES, SEVERITIES

JSON_FIELDS: tuple[str, ...] = (
    "alert_id",
    "patient_id",
    "rule",
    "severity",
    "triggered_on",
    "message",
    "evidence",
    "status",
    "first_seen_at",
)

if TYPE_CHECKING:
    import polars as pl


def alerts_json(queue: pl.DataFrame) -> list[dict[str, Any]]:
    """CONTRACT §5 shape; evidence as a JSON object, dates as YYYY-MM-DD."""
    from monitoring.alerts import evidence_object

    out: list[dict[str, Any]] = []
    for row in queue.iter_rows(named=True):
        item = {name: row.get(name) for name in JSON_FIELDS}
        item["triggered_on"] = row["triggered_on"].isoformat()
        item["evidence"] = evidence_object(row["evidence"])
        out.append(item)
    return out


def cmd_alerts(args: argparse.Namespace) -> int:
    if args.performance:
        from monitoring.rule_performance import store_rule_performance

        with open_store(args) as store:
            table = store_rule_performance(store, as_of=args.as_of)
        write_table(table, "json" if args.format == "json" else "csv")
        return 0
    from monitoring.first_seen import queue_with_first_seen

    with open_store(args) as store:
        queue = queue_with_first_seen(store, as_of=args.as_of, status=args.status)
    if args.format == "json":
        from monitoring.alerts_json import write_alerts_json

        write_alerts_json(queue, JSON_FIELDS, sys.stdout)
    elif args.format == "fhir":
        from monitoring.fhir import alerts_to_fhir_bundle

        bundle = alerts_to_fhir_bundle(queue)
        sys.stdout.write(json.dumps(bundle, ensure_ascii=False, indent=2) + "\n")
    else:
        write_table(queue, "csv")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    from monitoring.bulk_ack import AckFilter, acknowledge_ids, acknowledge_matching
    from monitoring.errors import UsageError

    user = acting_user(args)
    ack_filter = AckFilter(
        rule=args.rule,
        severity=args.severity,
        triggered_before=args.triggered_before,
        patient_id=args.patient,
    )
    if args.all:
        if args.alert_ids:
            raise UsageError("give alert ids or --all with filters, not both")
        with open_store(args) as store:
            result = acknowledge_matching(store, ack_filter, user, args.note)
        print(f"acknowledged {result.count} alert(s) by {user}")
        return 0
    if not ack_filter.is_empty():
        raise UsageError("--rule, --severity, --triggered-before and --patient need --all")
    if not args.alert_ids:
        raise UsageError("name at least one ALERT_ID, or use --all with filters")
    if len(args.alert_ids) == 1:
        from monitoring.alert_queue import acknowledge

        with open_store(args) as store:
            row = acknowledge(store, args.alert_ids[0], user, args.note)
        print(
            f"acknowledged {row['alert_id']} ({row['rule']}, {row['patient_id']}, "
            f"{row['triggered_on']}) by {row['acknowledged_by']}"
        )
        return 0
    with open_store(args) as store:
        result = acknowledge_ids(store, args.alert_ids, user, args.note)
    print(f"acknowledged {result.count} alert(s) by {user}: {', '.join(result.alert_ids)}")
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
    p.add_argument(
        "--performance",
        action="store_true",
        help="per rule: alerts per patient-year, PPV, sensitivity, lead time (CONTRACT §4.2)",
    )

    p = add_command(
        sub,
        "ack",
        cmd_ack,
        "acknowledge alerts (who, when and a note; never deletes them): ids, or --all with filters",
    )
    p.add_argument("alert_ids", metavar="ALERT_ID", nargs="*")
    p.add_argument("--all", action="store_true", help="every open alert matching all filters")
    p.add_argument("--rule")
    p.add_argument("--severity", choices=list(SEVERITIES))
    p.add_argument("--triggered-before", type=parse_date, metavar="DATE")
    p.add_argument("--patient", metavar="ID")
    p.add_argument("--user", required=True)
    p.add_argument("--note", required=True, help="what was decided or done")

    p = add_command(sub, "flag", cmd_flag, "flag a patient by hand: joins the alert queue")
    p.add_argument("patient_id", metavar="PATIENT_ID")
    p.add_argument("--user", required=True)
    p.add_argument("--severity", required=True, choices=list(FLAG_SEVERITIES))
    p.add_argument("--note", required=True)
