"""`ltfu audit [--user] [--patient] [--since] [--until] [--format csv|json]`: who saw what."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import Any

from monitoring.errors import UsageError


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD") from None


def cmd_audit(args: argparse.Namespace) -> int:
    from monitoring.audit import AuditQuery, read_log
    from monitoring.cli import _store, write_table

    if args.since and args.until and args.since > args.until:
        raise UsageError(f"--since {args.since} is after --until {args.until}")
    query = AuditQuery(user=args.user, patient=args.patient, since=args.since, until=args.until)
    write_table(read_log(_store(args), query), args.format)
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("audit", cmd_audit, "read the audit log: who saw, downloaded or changed what")
    p.add_argument("--user", help="only this user's entries")
    p.add_argument("--patient", help="only entries about this patient (views, downloads, flags)")
    p.add_argument("--since", type=_day, help="from this UTC day on (YYYY-MM-DD)")
    p.add_argument("--until", type=_day, help="up to and including this UTC day (YYYY-MM-DD)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
