"""The `ltfu` command line (CONTRACT.md §5). Parses arguments, calls the core, formats output;
the core's errors become exit codes in one place (`exit_codes`): 0 done, 1 rejected input
(report written), 2 usage or unreadable file.

Every command lives in one module of this package with a `register(sub)` function; `COMMANDS`
lists them in the order `ltfu --help` shows them.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Sequence

from monitoring.cli import (
    accounts,
    alerts,
    audit,
    backup,
    data,
    durability,
    profile,
    report,
    serve,
    worklist,
)
from monitoring.cli.common import Subparsers
from monitoring.cli.exit_codes import DONE, exit_code
from monitoring.errors import LtfuError, RejectedUploadError

COMMANDS: tuple[Callable[[Subparsers[argparse.ArgumentParser]], None], ...] = (
    data.register,  # init, demo, ingest, status
    profile.register,  # profile draft|check
    durability.register,
    alerts.register,  # alerts, ack, flag
    accounts.register,  # user add|list|disable|enable|reset
    serve.register,
    backup.register,  # backup, restore
    worklist.register,
    audit.register,
    report.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltfu", description="Long-term follow-up monitor for CD19 CAR-T therapy."
    )
    parser.add_argument("--db", help="database URL (default: $LTFU_DATABASE_URL or ./ltfu-data/)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from monitoring.store.private_files import private_umask

    private_umask()  # every file ltfu creates 0600, every folder 0700 (patient data)
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except RejectedUploadError as exc:
        print(str(exc), file=sys.stderr)
        return exit_code(exc)
    except LtfuError as exc:
        print(f"ltfu: {exc}", file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:
        sys.stderr = io.StringIO()  # the reader went away (`| head`): nothing left to say
        return DONE
