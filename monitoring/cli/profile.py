"""`ltfu profile draft` and `ltfu profile check`: a starting mapping profile from a REDCap data
dictionary or an export's header, and what a profile makes of the first rows (writes nothing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitoring.cli.common import Subparsers, add_command
from monitoring.errors import UsageError

if TYPE_CHECKING:
    import polars as pl


def cmd_profile_draft(args: argparse.Namespace) -> int:
    from monitoring.ingest.draft import draft_profile
    from monitoring.ingest.read import read_table

    text = draft_profile(read_table(args.source))
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.force:
            raise UsageError(f"{out} exists; pass --force to replace it.")
        from monitoring.store.private_files import write_private_text

        try:
            write_private_text(out, text)  # a missing folder is made 0700, the file 0600
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}.") from exc
        from monitoring.ingest.profile import load_profile

        reviews = len(load_profile(text).to_review())
        print(
            f"wrote {out}: {reviews} guess(es) marked review = true; check them with "
            f"`ltfu profile check {out} FILE`"
        )
    else:
        sys.stdout.write(text)
    return 0


def cmd_profile_check(args: argparse.Namespace) -> int:
    from monitoring.ingest.draft import check_rows
    from monitoring.ingest.mapping import map_file
    from monitoring.ingest.profile import read_profile
    from monitoring.ingest.read import read_table

    profile = read_profile(args.profile)
    pending = profile.to_review()
    print(f"profile {profile.name!r} ({profile.layout}); nothing is written")
    if pending:
        print(f"{len(pending)} mapping(s) still marked review = true")
    for path in args.files:
        mapped = map_file(read_table(path), profile)
        print(
            f"\n{Path(path).name}: "
            + ", ".join(
                f"{t.frame.height} {kind} row(s)"
                for kind, t in zip(profile.kinds(), mapped.tables, strict=True)
            )
        )
        _print(check_rows(mapped, profile, rows=args.rows))
        problems = mapped.problems
        if problems.height:
            from monitoring.ingest.report import group_report

            print(f"{problems.height} problem(s) the profile finds in this file:")
            _print(group_report(problems).drop("files"))
    return 0


def _print(frame: pl.DataFrame) -> None:
    import polars as pl

    with pl.Config(
        tbl_rows=200,
        tbl_cols=12,
        fmt_str_lengths=60,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_formatting="ASCII_MARKDOWN",
        tbl_width_chars=250,
    ):
        print(frame)


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "profile", lambda _args: 2, "mapping profiles: draft one, check one on a file"
    )
    profile_sub = p.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    d = profile_sub.add_parser(
        "draft",
        help="write a starting profile from a REDCap data dictionary CSV or an export's header",
    )
    d.add_argument("source", metavar="DICTIONARY_OR_EXPORT")
    d.add_argument("--out", help="write the profile here (default: standard output)")
    d.add_argument("--force", action="store_true", help="replace --out if it exists")
    d.set_defaults(handler=cmd_profile_draft)
    c = profile_sub.add_parser(
        "check", help="show what each source column becomes on the first rows; writes nothing"
    )
    c.add_argument("profile", metavar="PROFILE")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--rows", type=int, default=3, help="example rows per table (default 3)")
    c.set_defaults(handler=cmd_profile_check)
