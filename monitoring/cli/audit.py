"""`ltfu audit [--user] [--patient] [--since] [--until] [--format csv|json]`: who saw what."""

from __future__ import annotations

import argparse

from monitoring.cli.common import Subparsers, add_command, open_store, parse_date, write_table
from monitoring.errors import UsageError


def cmd_audit(args: argparse.Namespace) -> int:
    from monitoring.audit import AuditQuery, read_log

    if args.since and args.until and args.since > args.until:
        raise UsageError(f"--since {args.since} is after --until {args.until}")
    query = AuditQuery(user=args.user, patient=args.patient, since=args.since, until=args.until)
    with open_store(args) as store:
        write_table(read_log(store, query), args.format)
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "audit", cmd_audit, "read the audit log: who saw, downloaded or changed what"
    )
    p.add_argument("--user", help="only this user's entries")
    p.add_argument("--patient", help="only entries about this patient (views, downloads, flags)")
    p.add_argument("--since", type=parse_date, help="from this UTC day on (YYYY-MM-DD)")
    p.add_argument("--until", type=parse_date, help="up to and including this UTC day (YYYY-MM-DD)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
