"""`ltfu init`, `ltfu demo`, `ltfu ingest` and `ltfu status` (CONTRACT.md §5)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from monitoring.cli.common import (
    Subparsers,
    acting_user,
    add_command,
    open_store,
    print_report,
)
from monitoring.errors import RejectedUploadError

if TYPE_CHECKING:
    import polars as pl

    from monitoring.store import Store


def cmd_init(args: argparse.Namespace) -> int:
    with open_store(args) as store:
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

    with open_store(args) as store, tempfile.TemporaryDirectory() as tmp:
        paths = write_csv(cohort, Path(tmp))
        result = ingest_files(store, list(paths), user=acting_user(args))
        sentence = result.summary.sentence() if result.summary else "nothing to store"
        print(f"demo cohort ({args.patients} patients, seed {args.seed}) → {store.url}: {sentence}")
    return 0


def _write_report(path: str, report: pl.DataFrame) -> None:
    """The whole report: XLSX when the name ends in .xlsx, CSV otherwise (formula-safe both)."""
    from monitoring.ingest.report import report_csv, report_xlsx
    from monitoring.store.private_files import write_private_bytes, write_private_text

    # the report quotes patient rows: 0600 like everything ltfu writes
    if path.lower().endswith(".xlsx"):
        write_private_bytes(path, report_xlsx(report))
    else:
        write_private_text(path, report_csv(report))


def cmd_ingest(args: argparse.Namespace) -> int:
    from monitoring.accounts import account_scope
    from monitoring.ingest import ingest_files

    with open_store(args) as opened:
        # uploading as a site-limited account (--user / $LTFU_USER): only its sites' patients
        store = opened.scoped(account_scope(opened, acting_user(args)))
        try:
            if args.profile:
                from monitoring.ingest.profile import read_profile
                from monitoring.ingest.profiled import ingest_profiled_files

                result = ingest_profiled_files(
                    store,
                    args.files,
                    read_profile(args.profile),
                    dry_run=args.dry_run,
                    user=acting_user(args),
                    sheet=args.sheet,
                )
            else:
                result = ingest_files(
                    store,
                    args.files,
                    kind=args.kind,
                    date_format=args.date_format,
                    dry_run=args.dry_run,
                    user=acting_user(args),
                    sheet=args.sheet,
                )
        except RejectedUploadError as exc:
            if args.report:
                _write_report(args.report, exc.report)
            import polars as pl

            errors = exc.report.filter(pl.col("severity") == "error")
            print_report(errors)
            warnings = exc.report.height - errors.height
            if warnings:
                print(
                    f"and {warnings} warning(s) (not blocking; listed in --report)",
                    file=sys.stderr,
                )
            print(str(exc) + (f" Report: {args.report}" if args.report else ""), file=sys.stderr)
            return 1
    if args.report:
        _write_report(args.report, result.report)
    print_report(result.warnings)
    sentence = "; ".join(
        f"{kind}: {c['new']} new, {c['changed']} changed, {c['unchanged']} unchanged"
        for kind, c in result.counts().items()
    )
    warn = f" ({result.warnings.height} warning(s))" if result.warnings.height else ""
    if args.dry_run:
        print(f"dry run, nothing written. Would store {sentence}{warn}")
    else:
        print(f"stored {sentence}{warn}")
    return 0


def status_dict(store: Store) -> dict[str, int | str]:
    """What `ltfu status` prints, in its order."""
    from monitoring.alert_queue import open_alert_count

    return {
        **store.counts(),
        "open_alerts": open_alert_count(store),
        "data_version": store.data_version(),
        "schema_version": store.schema_version(),
        "store": store.url,
    }


def cmd_status(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        status = status_dict(store)
    if args.format == "json":
        print(json.dumps(status, indent=2))
    else:
        for key, value in status.items():
            print(f"{key:>15}: {value}")
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    add_command(sub, "init", cmd_init, "create or migrate the store")
    p = add_command(
        sub, "demo", cmd_demo, "load a synthetic demo cohort, or write its CSVs to --out"
    )
    p.add_argument("--patients", type=int, default=150)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", help="write patients.csv and visits.csv here instead of loading")
    p.add_argument("--user")

    p = add_command(
        sub, "ingest", cmd_ingest, "validate and store visit exports (all files or none)"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kind", choices=["patients", "visits"])
    p.add_argument("--date-format", choices=["ISO", "DMY", "MDY"], default="ISO")
    p.add_argument("--sheet", help="XLSX sheet name (default: the first)")
    p.add_argument(
        "--dry-run", action="store_true", help="validate and show changes; write nothing"
    )
    p.add_argument("--report", help="write the validation report here (.csv, or .xlsx)")
    p.add_argument(
        "--profile", help="a mapping profile (TOML) for a site's export (docs/profiles.md)"
    )
    p.add_argument("--user")

    p = add_command(sub, "status", cmd_status, "what the store holds")
    p.add_argument("--format", choices=["text", "json"], default="text")
