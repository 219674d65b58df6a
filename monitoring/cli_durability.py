"""`ltfu durability`: curve rows (CSV/JSON) or the `--summary` of CONTRACT §5."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from monitoring.cli import _parse_date, _store, write_table

ENDPOINTS = ("os", "efs", "rfs", "bca", "car", "cir")


def cmd_durability(args: argparse.Namespace) -> int:
    from monitoring.durability import durability_summary, durability_table

    if args.reference is not None and not args.summary:
        from monitoring.errors import UsageError

        raise UsageError("--reference applies to --summary only (the hazard ratios); add --summary")
    _version, patients, visits = _store(args).snapshot()
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
        summary = durability_summary(patients, visits, **options, reference=args.reference)
        if args.format == "json":
            print(json.dumps(summary, indent=2))
        else:
            _print_summary_text(summary)
        return 0
    table = durability_table(patients, visits, **options)
    write_table(table, args.format)
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
        for rm in group.get("rmst", []):
            se = f" (se {rm['se']:.1f})" if rm["se"] is not None else ""
            out.write(f"  restricted mean to {rm['months']} mo: {_fmt(rm['estimate'])} days{se}\n")
    _print_comparisons_text(summary)


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _print_comparisons_text(summary: dict[str, Any]) -> None:
    out = sys.stdout
    for test in summary.get("tests", []):
        name = "log-rank" if test["method"] == "logrank" else f"Gray ({test['cause']})"
        stat = f"{test['statistic']:.3f}" if test["statistic"] is not None else "–"
        out.write(f"\n{name}: chi-square {stat} on {test['df']} df, p = {_p(test['p'])}\n")
    pairs = summary.get("pairwise", [])
    if len(pairs) > 1:
        out.write("pairwise (Holm-adjusted):\n")
        for pair in pairs:
            cause = f" [{pair['cause']}]" if pair["cause"] else ""
            out.write(
                f"  {pair['group_a']} vs {pair['group_b']}{cause}: p = {_p(pair['p'])}, "
                f"Holm p = {_p(pair['p_holm'])}\n"
            )
    ratios = summary.get("hazard_ratios", [])
    if ratios:
        kind = (
            "subdistribution hazard ratio (Fine–Gray)"
            if ratios[0]["cause"]
            else "hazard ratio (Cox)"
        )
        out.write(f"{kind} against {ratios[0]['reference']}:\n")
        for hr in ratios:
            cause = f" [{hr['cause']}]" if hr["cause"] else ""
            if hr["hr"] is None:
                out.write(f"  {hr['group']}{cause}: not estimable (no events)\n")
                continue
            out.write(
                f"  {hr['group']}{cause}: {hr['hr']:.2f} (95 % CI {hr['ci_lower']:.2f} to "
                f"{hr['ci_upper']:.2f}), p = {_p(hr['p'])}\n"
            )


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("durability", cmd_durability, "Kaplan–Meier / cumulative incidence for an endpoint")
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
    p.add_argument("--censor-at-new-therapy", action="store_true")
    p.add_argument("--hsct-competing", action="store_true")
    p.add_argument("--by-cd19", action="store_true")
    p.add_argument("--as-of", type=_parse_date, metavar="DATE")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--format", choices=["csv", "json", "text"], default=None)

    original = p.parse_known_args

    def _default_format(*a: Any, **k: Any) -> Any:
        namespace, rest = original(*a, **k)
        if namespace.format is None:
            namespace.format = "text" if namespace.summary else "csv"
        return namespace, rest

    p.parse_known_args = _default_format  # type: ignore[method-assign]
