"""Alert counts and 12-month durability estimates on the 2 000-patient calibration cohort.

The cohort is the one tests/test_synthetic.py calibrates (`make_cohort(2000)`, default seed 7,
data cut 2026-06-30), evaluated as of its data cut. Prints, as markdown tables:
- alerts per rule and per patient-year (CONTRACT §4.2 patient-years: the sum over infused
  patients of the years from infusion to the earlier of the evaluation date and last contact);
- the EFS, OS, BCA and CAR Kaplan–Meier estimates at 12 months with their 95 % limits.

Used to show the size of a rule change: run it before and after and compare.

    uv run --frozen python -m bench.calibration_figures [--patients 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
from datetime import date

import polars as pl

from monitoring.alerts import ALERT_RULES, evaluate_alerts
from monitoring.durability import durability_summary
from monitoring.outcomes import derive_outcomes
from monitoring.synthetic import DEFAULT_DATA_CUT, make_cohort

DAYS_PER_YEAR = 365.25
ENDPOINTS = ("efs", "os", "bca", "car")


def patient_years(outcomes: pl.DataFrame, as_of: date) -> float:
    end = pl.min_horizontal(pl.col("last_contact_date"), pl.lit(as_of))
    days = outcomes.select((end - pl.col("infusion_date")).dt.total_days().clip(lower_bound=0))
    return float(days.to_series().sum()) / DAYS_PER_YEAR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    as_of = DEFAULT_DATA_CUT
    cohort = make_cohort(args.patients, seed=args.seed)
    outcomes = derive_outcomes(cohort.patients, cohort.visits, as_of)
    alerts = evaluate_alerts(cohort.patients, cohort.visits, as_of, outcomes=outcomes)
    years = patient_years(outcomes, as_of)
    counts = dict(alerts.group_by("rule").len().iter_rows())

    print(f"cohort: {args.patients} patients, seed {args.seed}, as of {as_of}")
    print(f"patients infused: {outcomes.height}; patient-years: {years:.1f}\n")
    print("| rule | alerts | patients | per patient-year |")
    print("|---|---:|---:|---:|")
    for rule in ALERT_RULES:
        n = int(counts.get(rule.id, 0))
        people = alerts.filter(pl.col("rule") == rule.id)["patient_id"].n_unique()
        print(f"| {rule.id} | {n} | {people} | {n / years:.4f} |")
    print(
        f"| **all** | {alerts.height} | {alerts['patient_id'].n_unique()} | "
        f"{alerts.height / years:.4f} |\n"
    )
    print("| endpoint | n | events | 12-month estimate | 95 % CI |")
    print("|---|---:|---:|---:|---|")
    for endpoint in ENDPOINTS:
        summary = durability_summary(
            cohort.patients, cohort.visits, endpoint, as_of=as_of, outcomes=outcomes
        )
        group = summary["groups"][0]
        twelve = next(row for row in group["landmarks"] if row["months"] == 12)
        print(
            f"| {endpoint} | {group['n']} | {group['events']} | {twelve['estimate']:.4f} | "
            f"{twelve['ci_lower']:.4f}–{twelve['ci_upper']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
