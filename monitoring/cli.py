"""The `ltfu` command line (CONTRACT.md §5). Parses arguments, calls the core, formats output,
maps the core's errors to exit codes: 0 done, 1 rejected input (report written), 2 usage or
unreadable file."""

from __future__ import annotations

import argparse
import getpass
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from monitoring.errors import LtfuError, RejectedUploadError, UsageError
from monitoring.store import Store

Handler = Callable[[argparse.Namespace], int]


_opened: list[Store] = []


def _store(args: argparse.Namespace) -> Store:
    """The store of this invocation; closed by `main` when the command ends."""
    store = Store.open(args.db)
    _opened.append(store)
    return store


def _user(args: argparse.Namespace) -> str:
    return str(getattr(args, "user", None) or os.environ.get("LTFU_USER") or getpass.getuser())


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD") from None


def write_table(frame: pl.DataFrame, fmt: str, out: Any = None) -> None:
    """CSV (formula-safe) or JSON to stdout."""
    from monitoring.exports import frame_to_csv

    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(frame.to_dicts(), default=str, indent=2) + "\n")
    else:
        out.write(frame_to_csv(frame))


def _print_report(report: pl.DataFrame, limit: int = 200) -> None:
    if not report.height:
        return
    if report.height > limit:
        # many rows: first say what kinds of problems there are, then the first rows of each
        kinds = (
            report.with_columns(pl.col("problem").str.replace(r":.*", ""))
            .group_by("severity", "column", "problem")
            .len("rows")
            .sort("rows", descending=True)
        )
        _print_frame(kinds, limit)
        shown = (
            report.group_by("severity", "column", maintain_order=True)
            .head(5)
            .select(report.columns)
            .head(limit)
        )
    else:
        shown = report
    _print_frame(shown, limit)
    if report.height > shown.height:
        print(
            f"… {report.height - shown.height} more rows (write them all with --report PATH)",
            file=sys.stderr,
        )


def _print_frame(shown: pl.DataFrame, limit: int) -> None:
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


# ---- commands ------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    store = _store(args)
    print(f"store ready: {store.url} (schema version {store.schema_version()})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from monitoring.synthetic import make_cohort, write_csv

    cohort = make_cohort(args.patients, seed=args.seed)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        paths = write_csv(cohort, out)
        print("wrote " + ", ".join(str(p) for p in paths))
        return 0
    from monitoring.ingest import ingest_files

    store = _store(args)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_csv(cohort, Path(tmp))
        result = ingest_files(store, list(paths), user=_user(args))
    assert result.summary is not None
    print(
        f"demo cohort ({args.patients} patients, seed {args.seed}) → {store.url}: "
        f"{result.summary.sentence()}"
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from monitoring.exports import frame_to_csv
    from monitoring.ingest import ingest_files

    store = _store(args)
    try:
        result = ingest_files(
            store,
            args.files,
            kind=args.kind,
            date_format=args.date_format,
            dry_run=args.dry_run,
            user=_user(args),
            sheet=args.sheet,
        )
    except RejectedUploadError as exc:
        if args.report:
            Path(args.report).write_text(frame_to_csv(exc.report), encoding="utf-8")
        errors = exc.report.filter(pl.col("severity") == "error")
        _print_report(errors)
        warnings = exc.report.height - errors.height
        if warnings:
            print(f"and {warnings} warning(s) (not blocking; listed in --report)", file=sys.stderr)
        print(str(exc) + (f" Report: {args.report}" if args.report else ""), file=sys.stderr)
        return 1
    if args.report:
        Path(args.report).write_text(frame_to_csv(result.report), encoding="utf-8")
    _print_report(result.warnings)
    counts = result.counts()
    sentence = "; ".join(
        f"{kind}: {c['new']} new, {c['changed']} changed, {c['unchanged']} unchanged"
        for kind, c in counts.items()
    )
    warn = f" ({result.warnings.height} warning(s))" if result.warnings.height else ""
    if args.dry_run:
        print(f"dry run, nothing written. Would store {sentence}{warn}")
    else:
        print(f"stored {sentence}{warn}")
    return 0


def status_dict(store: Store) -> dict[str, Any]:
    counts = store.counts()
    status: dict[str, Any] = {
        **counts,
        "open_alerts": None,
        "data_version": store.data_version(),
        "schema_version": store.schema_version(),
        "store": store.url,
    }
    try:
        from monitoring.alert_queue import open_alert_count
    except ImportError:
        return status
    status["open_alerts"] = open_alert_count(store)
    return status


def cmd_status(args: argparse.Namespace) -> int:
    status = status_dict(_store(args))
    if args.format == "json":
        print(json.dumps(status, indent=2))
    else:
        for key, value in status.items():
            print(f"{key:>15}: {value}")
    return 0


# ---- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltfu", description="Long-term follow-up monitor for CD19 CAR-T therapy."
    )
    parser.add_argument("--db", help="database URL (default: $LTFU_DATABASE_URL or ./ltfu-data/)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("init", cmd_init, "create or migrate the store")
    p = add("demo", cmd_demo, "load a synthetic demo cohort, or write its CSVs to --out")
    p.add_argument("--patients", type=int, default=150)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", help="write patients.csv and visits.csv here instead of loading")
    p.add_argument("--user")

    p = add("ingest", cmd_ingest, "validate and store visit exports (all files or none)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kind", choices=["patients", "visits"])
    p.add_argument("--date-format", choices=["ISO", "DMY", "MDY"], default="ISO")
    p.add_argument("--sheet", help="XLSX sheet name (default: the first)")
    p.add_argument(
        "--dry-run", action="store_true", help="validate and show changes; write nothing"
    )
    p.add_argument("--report", help="write the validation report as CSV here")
    p.add_argument("--user")

    p = add("status", cmd_status, "what the store holds")
    p.add_argument("--format", choices=["text", "json"], default="text")

    for register in _extensions():
        register(sub, add)
    return parser


def _extensions() -> list[Callable[..., None]]:
    """Commands that live beside their core module (durability, alerts, accounts, serve)."""
    registers: list[Callable[..., None]] = []
    for module_name in (
        "monitoring.cli_durability",
        "monitoring.cli_alerts",
        "monitoring.cli_admin",
        "monitoring.cli_backup",
        "monitoring.cli_audit",
    ):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        registers.append(module.register)
    return registers


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except RejectedUploadError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (LtfuError, UsageError) as exc:
        print(f"ltfu: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        sys.stderr = io.StringIO()
        return 0
    finally:
        while _opened:
            _opened.pop().close()


if __name__ == "__main__":
    raise SystemExit(main())
