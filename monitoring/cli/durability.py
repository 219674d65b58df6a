"""`ltfu durability`: curve rows (CSV/JSON) or the `--summary` of CONTRACT §5."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from monitoring.cli.common import Subparsers, add_command, open_store, parse_date, write_table
from monitoring.endpoints import ENDPOINTS


def cmd_durability(args: argparse.Namespace) -> int:
    from monitoring.durability import durability_summary, durability_table

    with open_store(args) as store:
        _version, patients, visits = store.snapshot()
    fmt = args.format or ("text" if args.summary else "csv")
    options: dict[str, Any] = {
        "endpoint": args.endpoint,
        "by": args.by,
        "as_of": args.as_of,
        "landmark_days": args.landmark,
        "censor_at_new_therapy": args.censor_at_new_therapy,
        "hsct_competing": args.hsct_competing,
        "by_cd19": args.by_cd19,
    }
    if args.summary:
        summary = durability_summary(patients, visits, **options)
        if fmt == "json":
            print(json.dumps(summary, indent=2))
        else:
            _print_summary_text(summary)
        return 0
    table = durability_table(patients, visits, **options)
    write_table(table, fmt)
    return 0


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.0f}"


def _print_summary_text(summary: dict[str, Any]) -> None:
    out = sys.stdout
    follow = summary["median_followup_days"]
    out.write(f"endpoint {summary['endpoint']}; median follow-up {_fmt(follow)} days")
    out.write(
        f"; log-rank p = {summary['logrank_p']:.4g}\n" if summary["logrank_p"] is not None else "\n"
    )
    for group in summary["groups"]:
        median = group.get("median_days")
        ci = f" (95 % CI {_fmt(group.get('median_ci_lower'))} to {_fmt(group.get('median_ci_upper'))})"
        out.write(
            f"\n{group['group']}: n = {group['n']}, events = {group['events']}, "
            f"median {_fmt(median)} days{ci if median is not None else ''}\n"
        )
        for lm in group["landmarks"]:
            limits = f"{_fmt(lm['ci_lower'], True)} to {_fmt(lm['ci_upper'], True)}"
            out.write(
                f"  {lm['months']:>3} mo  {_fmt(lm['estimate'], True):>8}  ({limits})  "
                f"at risk {lm['at_risk'] if lm['at_risk'] is not None else '–'}\n"
            )


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "durability", cmd_durability, "Kaplan–Meier / cumulative incidence for an endpoint"
    )
    p.add_argument("--endpoint", required=True, choices=ENDPOINTS)
    p.add_argument(
        "--by",
        help="group by a patients column or age_group, disease_burden, infusion_year; "
        "post-baseline groupings (early_bcell_recovery, mrd_day28) need --landmark",
    )
    p.add_argument("--landmark", type=int, metavar="DAYS", help="landmark analysis from this day")
    p.add_argument("--censor-at-new-therapy", action="store_true")
    p.add_argument("--hsct-competing", action="store_true")
    p.add_argument("--by-cd19", action="store_true")
    p.add_argument("--as-of", type=parse_date, metavar="DATE")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--format", choices=["csv", "json", "text"], default=None)
