"""`ltfu durability`: curve rows (CSV/JSON) or the `--summary` of CONTRACT §5.

The endpoints and the yes/no options come from `monitoring.analysis_registry`."""

from __future__ import annotations

import argparse
import json
import sys

from monitoring.analysis_registry import ENDPOINTS, OPTIONS, DurabilityRequest
from monitoring.cli.common import Subparsers, add_command, open_store, parse_date, write_table
from monitoring.durability_results import DurabilitySummary
from monitoring.errors import UsageError


def request_from(args: argparse.Namespace) -> DurabilityRequest:
    return DurabilityRequest(
        endpoint=args.endpoint,
        by=args.by,
        as_of=args.as_of,
        landmark_days=args.landmark,
        **{option.field: getattr(args, option.field) for option in OPTIONS},
    )


def cmd_durability(args: argparse.Namespace) -> int:
    from monitoring.durability import durability_summary, durability_table

    if args.reference is not None and not args.summary:
        raise UsageError("--reference applies to --summary only (the hazard ratios); add --summary")
    request = request_from(args)
    with open_store(args) as store:
        _version, patients, visits = store.snapshot()
    fmt = args.format or ("text" if args.summary else "csv")
    if args.summary:
        summary = durability_summary(patients, visits, request, reference=args.reference)
        if fmt == "json":
            print(json.dumps(summary.to_json(), indent=2))
        else:
            _print_summary_text(summary)
        return 0
    write_table(durability_table(patients, visits, request), fmt)
    return 0


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.0f}"


def _print_summary_text(summary: DurabilitySummary) -> None:
    out = sys.stdout
    out.write(f"endpoint {summary.endpoint}; median follow-up ")
    out.write(f"{_fmt(summary.median_followup_days)} days")
    out.write(
        f"; log-rank p = {summary.logrank_p:.4g}\n" if summary.logrank_p is not None else "\n"
    )
    for group in summary.groups:
        median = group.median_days
        ci = f" (95 % CI {_fmt(group.median_ci_lower)} to {_fmt(group.median_ci_upper)})"
        out.write(
            f"\n{group.group}: n = {group.n}, events = {group.events}, "
            f"median {_fmt(median)} days{ci if median is not None else ''}\n"
        )
        for lm in group.landmarks:
            limits = f"{_fmt(lm.ci_lower, True)} to {_fmt(lm.ci_upper, True)}"
            out.write(
                f"  {lm.months:>3} mo  {_fmt(lm.estimate, True):>8}  ({limits})  "
                f"at risk {lm.at_risk if lm.at_risk is not None else '–'}\n"
            )
        for rm in group.rmst or ():
            se = f" (se {rm.se:.1f})" if rm.se is not None else ""
            out.write(f"  restricted mean to {rm.months} mo: {_fmt(rm.estimate)} days{se}\n")
    _print_comparisons_text(summary)


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _print_comparisons_text(summary: DurabilitySummary) -> None:
    out = sys.stdout
    for test in summary.tests or ():
        name = "log-rank" if test.method == "logrank" else f"Gray ({test.cause})"
        stat = f"{test.statistic:.3f}" if test.statistic is not None else "–"
        out.write(f"\n{name}: chi-square {stat} on {test.df} df, p = {_p(test.p)}\n")
    pairs = summary.pairwise or ()
    if len(pairs) > 1:
        out.write("pairwise (Holm-adjusted):\n")
        for pair in pairs:
            cause = f" [{pair.cause}]" if pair.cause else ""
            out.write(
                f"  {pair.group_a} vs {pair.group_b}{cause}: p = {_p(pair.p)}, "
                f"Holm p = {_p(pair.p_holm)}\n"
            )
    ratios = summary.hazard_ratios or ()
    if ratios:
        kind = (
            "subdistribution hazard ratio (Fine–Gray)" if ratios[0].cause else "hazard ratio (Cox)"
        )
        out.write(f"{kind} against {ratios[0].reference}:\n")
        for hr in ratios:
            cause = f" [{hr.cause}]" if hr.cause else ""
            if hr.hr is None or hr.ci_lower is None or hr.ci_upper is None:
                out.write(f"  {hr.group}{cause}: not estimable (no events)\n")
                continue
            out.write(
                f"  {hr.group}{cause}: {hr.hr:.2f} (95 % CI {hr.ci_lower:.2f} to "
                f"{hr.ci_upper:.2f}), p = {_p(hr.p)}\n"
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
    p.add_argument(
        "--reference",
        metavar="GROUP",
        help="the group hazard ratios are against (default: the group with the most patients)",
    )
    p.add_argument("--landmark", type=int, metavar="DAYS", help="landmark analysis from this day")
    for option in OPTIONS:
        p.add_argument(option.flag, dest=option.field, action="store_true")
    p.add_argument("--as-of", type=parse_date, metavar="DATE")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--format", choices=["csv", "json", "text"], default=None)
