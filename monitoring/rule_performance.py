"""How well each alert rule does on the store's own data, as of a date D (CONTRACT §4.2).

Per rule (registry order, physician flags as one rule `physician_flag`):

    alerts            alerts of the rule as of D (open and acknowledged)
    patients          patients with at least one
    per_patient_year  alerts ÷ Σ over infused patients of the years (365.25 days) from infusion
                      to the earlier of D and last contact
    ppv_180d          over alerts triggered strictly before the patient's relapse date (or of a
                      patient without relapse): the share followed by relapse 1–180 days after
                      triggered_on, among those so followed or with at least 180 days from
                      triggered_on to the earlier of D and last contact
    sensitivity_365d  the share of relapses (as of D) with an alert of the rule 1–365 days before
    median_lead_days  over those relapses, the median of relapse date − the earliest such alert

Null where nothing qualifies (no alert in the PPV denominator, no relapse, no detected relapse).
An alert on the relapse day itself is neither a true positive nor a lead: it came too late.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from monitoring.alerts import ALERT_RULES
from monitoring.store import Store

PPV_HORIZON_DAYS = 180
SENSITIVITY_HORIZON_DAYS = 365
DAYS_PER_YEAR = 365.25
PERFORMANCE_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "alerts": pl.Int64(),
    "patients": pl.Int64(),
    "per_patient_year": pl.Float64(),
    "ppv_180d": pl.Float64(),
    "sensitivity_365d": pl.Float64(),
    "median_lead_days": pl.Float64(),
}
RULE_ORDER: tuple[str, ...] = tuple(rule.id for rule in ALERT_RULES) + (
    ("physician_flag",) if "physician_flag" not in {rule.id for rule in ALERT_RULES} else ()
)


def rule_performance(alerts: pl.DataFrame, outcomes: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """`alerts`: every alert as of `as_of` (patient_id, rule, triggered_on); `outcomes`:
    `derive_outcomes` as of the same date. One row per rule, columns `PERFORMANCE_SCHEMA`."""
    infused = outcomes.filter(pl.col("infusion_date") <= as_of).with_columns(
        followed_to=pl.min_horizontal(pl.lit(as_of), pl.col("last_contact_date"))
    )
    years_at_risk = (
        infused.select(
            ((pl.col("followed_to") - pl.col("infusion_date")).dt.total_days().clip(lower_bound=0))
            .sum()
            .cast(pl.Float64)
        ).item()
        / DAYS_PER_YEAR
    )
    facts = infused.select("patient_id", "relapse_date", "followed_to")
    relapses = facts.filter(
        pl.col("relapse_date").is_not_null() & (pl.col("relapse_date") <= as_of)
    )
    n_relapses = relapses.height

    scored = alerts.select("patient_id", "rule", "triggered_on").join(
        facts, on="patient_id", how="inner"
    )
    counts = scored.group_by("rule").agg(
        pl.len().cast(pl.Int64).alias("alerts"),
        pl.col("patient_id").n_unique().cast(pl.Int64).alias("patients"),
    )

    lead = (pl.col("relapse_date") - pl.col("triggered_on")).dt.total_days()
    before_relapse = scored.filter(
        pl.col("relapse_date").is_null() | (pl.col("triggered_on") < pl.col("relapse_date"))
    ).with_columns(
        followed=lead.is_between(1, PPV_HORIZON_DAYS).fill_null(False),
        observed=(pl.col("followed_to") - pl.col("triggered_on")).dt.total_days()
        >= PPV_HORIZON_DAYS,
    )
    ppv = (
        before_relapse.filter(pl.col("followed") | pl.col("observed"))
        .group_by("rule")
        .agg(pl.col("followed").mean().alias("ppv_180d"))
    )
    detected = (
        scored.join(relapses.select("patient_id"), on="patient_id", how="semi")
        .filter(lead.is_between(1, SENSITIVITY_HORIZON_DAYS))
        .group_by("rule", "patient_id")
        .agg(lead.max().alias("lead_days"))  # the earliest alert has the longest lead
        .group_by("rule")
        .agg(
            pl.len().alias("detected"),
            pl.col("lead_days").median().cast(pl.Float64).alias("median_lead_days"),
        )
    )
    rules = sorted(
        set(RULE_ORDER) | set(scored["rule"].unique().to_list()),
        key=lambda r: (RULE_ORDER.index(r) if r in RULE_ORDER else len(RULE_ORDER), r),
    )
    table = (
        pl.DataFrame({"rule": rules}, schema={"rule": pl.String()})
        .join(counts, on="rule", how="left")
        .join(ppv, on="rule", how="left")
        .join(detected, on="rule", how="left")
        .with_columns(
            pl.col("alerts").fill_null(0),
            pl.col("patients").fill_null(0),
        )
        .with_columns(
            per_patient_year=(pl.col("alerts") / years_at_risk)
            if years_at_risk > 0
            else pl.lit(None, pl.Float64),
            sensitivity_365d=(pl.col("detected").fill_null(0) / n_relapses)
            if n_relapses
            else pl.lit(None, pl.Float64),
        )
    )
    return table.select(list(PERFORMANCE_SCHEMA)).cast(PERFORMANCE_SCHEMA)  # type: ignore[arg-type]


def store_rule_performance(store: Store, as_of: date | None = None) -> pl.DataFrame:
    """`rule_performance` of a store's data (every alert, acknowledged or not)."""
    from monitoring.alert_queue import evaluate_store
    from monitoring.outcomes import derive_outcomes

    day = as_of or store.today()
    _version, patients, visits = store.snapshot()
    return rule_performance(
        evaluate_store(store, day), derive_outcomes(patients, visits, as_of=day), day
    )


__all__ = [
    "PERFORMANCE_SCHEMA",
    "PPV_HORIZON_DAYS",
    "SENSITIVITY_HORIZON_DAYS",
    "rule_performance",
    "store_rule_performance",
]
