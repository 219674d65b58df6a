"""What every command module shares: the parser hook, the store of an invocation, the acting
user, dates, tables and the validation report on the terminal."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, TextIO

# The parser is built for every command, `ltfu --help` included: polars, SQLAlchemy and the
# store are imported by the commands that use them (tests/test_cli_startup.py).
if TYPE_CHECKING:
    import polars as pl

    from monitoring.store import Store

Handler = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # the object `add_subparsers` returns


def add_command(
    sub: Subparsers[argparse.ArgumentParser], name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    """One sub-command: its help line is also its description."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Store]:
    """The store named by `--db` (or the default), closed when the command is done with it."""
    from monitoring.store import Store

    store = Store.open(args.db)
    try:
        yield store
    finally:
        store.close()


def acting_user(args: argparse.Namespace, option: str = "user") -> str:
    """Who runs the command: the option, else $LTFU_USER, else the login name."""
    return str(getattr(args, option, None) or os.environ.get("LTFU_USER") or getpass.getuser())


def parse_date(text: str) -> date:
    """An argparse `type=` for YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD") from None


def write_table(frame: pl.DataFrame, fmt: str, out: TextIO | None = None) -> None:
    """CSV (formula-safe) or JSON to stdout."""
    from monitoring.exports import frame_to_csv

    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(frame.to_dicts(), default=str, indent=2) + "\n")
    else:
        out.write(frame_to_csv(frame))


def print_report(report: pl.DataFrame, limit: int = 200, group_above: int = 20) -> None:
    if not report.height:
        return
    if report.height > group_above:
        # repeated problems of one kind: one line each, with a count and the first rows
        from monitoring.ingest.report import group_report

        _print_frame(group_report(report), limit)
        print("(write every row with --report PATH.csv or PATH.xlsx)", file=sys.stderr)
        return
    _print_frame(report, limit)


def _print_frame(shown: pl.DataFrame, limit: int) -> None:
    import polars as pl

    with pl.Config(
        tbl_rows=limit,
        tbl_cols=10,
        fmt_str_lengths=90,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_formatting="ASCII_MARKDOWN",
        tbl_width_chars=250,
    ):
        print(shown, file=sys.stderr)
