"""`ltfu worklist` (CONTRACT §5, §4.1)."""

from __future__ import annotations

import argparse
import json
import sys

from monitoring.cli.common import Subparsers, add_command, open_store, parse_date, write_table


def cmd_worklist(args: argparse.Namespace) -> int:
    from monitoring.errors import UsageError
    from monitoring.worklist import worklist

    if args.within < 0:
        raise UsageError(f"--within must be 0 or more days, not {args.within}")
    with open_store(args) as store:
        _version, patients, visits = store.snapshot()
        day = args.as_of or store.today()
    table = worklist(patients, visits, day, within_days=args.within)
    if args.format == "json":
        rows = [
            {
                key: value.isoformat() if hasattr(value, "isoformat") else value
                for key, value in row.items()
            }
            for row in table.iter_rows(named=True)
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        write_table(table, "csv")
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    from monitoring.config import DEFAULT_WITHIN_DAYS

    p = add_command(
        sub, "worklist", cmd_worklist, "assessments due as of a date, by due date (CONTRACT §4.1)"
    )
    p.add_argument("--as-of", type=parse_date, help="evaluation date YYYY-MM-DD (default today)")
    p.add_argument(
        "--within",
        type=int,
        default=DEFAULT_WITHIN_DAYS,
        metavar="DAYS",
        help=f"also list MRD windows opening within DAYS days (default {DEFAULT_WITHIN_DAYS})",
    )
    p.add_argument("--format", choices=["csv", "json"], default="csv")
