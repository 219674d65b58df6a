"""What the cohort report says, as typed values computed by the core (no formatting here).

    patients, visits, alert queue, as_of ─build_report─▶ CohortReport
        overview      cohort_views.cohort_tiles + durability.median_followup_days, composition
        endpoints     one EndpointSection per endpoint: durability_table + durability_summary
        cd19          cir with the relapse split by CD19 status (the same two functions)
        alerts        the queue by severity and status, rule_performance per rule
        completeness  cohort_views.missed_by_window, follow-up overdue, contact in the last year

Every number is the one the command line and the dashboard give for the same data, date and
filters: the sections call the same functions, once each (outcomes are derived once and shared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import polars as pl

from monitoring.alerts import RULES_BY_ID, SEVERITIES
from monitoring.analysis_registry import ENDPOINT_SPECS, DurabilityRequest, EndpointSpec
from monitoring.cohort_views import (
    OverviewTiles,
    cohort_tiles,
    missed_by_window,
    risk_table,
    swimmer_lanes,
)
from monitoring.config import DAYS_PER_MONTH, Config, get_config
from monitoring.durability import durability_summary, durability_table, median_followup_days
from monitoring.durability_results import DurabilitySummary
from monitoring.endpoints import add_group
from monitoring.outcomes import derive_outcomes, mrd_detected_expr, visits_with_day
from monitoring.rule_performance import rule_performance
from monitoring.stamp import ALL_PATIENTS, stamp_text

CONTACT_WITHIN_DAYS = 365  # "seen in the last year": the yearly LTFU contact (CONTRACT §4.1)
SWIMMER_LANES = 150  # lanes one printed page holds; the most recently infused are drawn


@dataclass(frozen=True)
class Count:
    """One labelled count (a site, a product, a year, a severity…)."""

    label: str
    n: int


@dataclass(frozen=True)
class Composition:
    """Patients infused by the evaluation date, counted by one column."""

    title: str
    counts: tuple[Count, ...]


@dataclass(frozen=True)
class AtRisk:
    """Numbers at risk of one curve group at the figure's ticks (months)."""

    group: str
    counts: tuple[int, ...]


@dataclass(frozen=True)
class EndpointSection:
    """One endpoint: its request, the curve table, the §5 summary and the numbers at risk."""

    request: DurabilityRequest
    title: str
    x_title: str
    table: (
        pl.DataFrame
    )  # durability_table: group, time_days, …, estimate, ci_lower, ci_upper[, cause]
    summary: DurabilitySummary
    ticks: tuple[int, ...]  # months
    at_risk: tuple[AtRisk, ...]
    stamp: str

    @property
    def spec(self) -> EndpointSpec:
        return self.request.spec


@dataclass(frozen=True)
class SeverityBurden:
    severity: str
    open: int
    acknowledged: int


@dataclass(frozen=True)
class RuleBurden:
    rule: str
    title: str
    severity: str
    alerts: int
    open: int
    patients: int
    per_patient_year: float | None


@dataclass(frozen=True)
class AlertBurden:
    by_severity: tuple[SeverityBurden, ...]
    by_rule: tuple[RuleBurden, ...]  # rules with at least one alert, registry order
    stamp: str

    @property
    def total(self) -> int:
        return sum(s.open + s.acknowledged for s in self.by_severity)

    @property
    def open(self) -> int:
        return sum(s.open for s in self.by_severity)


@dataclass(frozen=True)
class MissedWindow:
    window: str  # "21–35" (days since infusion)
    missed: int


@dataclass(frozen=True)
class Completeness:
    missed_mrd: tuple[MissedWindow, ...]
    followup_overdue: int  # patients with an open or acknowledged followup_overdue alert
    alive: int
    contact_within_year: int  # alive patients with a last contact within CONTACT_WITHIN_DAYS
    overdue_days: int
    stamp: str


@dataclass(frozen=True)
class Swimmer:
    """The overview's swimmer plot: `cohort_views.swimmer_lanes` of the most recently infused
    `SWIMMER_LANES` patients, and their MRD-detected visits (patient_id, day)."""

    lanes: pl.DataFrame
    mrd: pl.DataFrame
    total: int
    stamp: str


@dataclass(frozen=True)
class Overview:
    tiles: OverviewTiles
    median_followup_days: float | None
    open_alerts: int
    composition: tuple[Composition, ...]
    swimmer: Swimmer
    stamp: str


@dataclass(frozen=True)
class CohortReport:
    as_of: date
    data_version: int
    filters: str
    stamp: str
    overview: Overview
    endpoints: tuple[EndpointSection, ...]
    cd19: EndpointSection
    alerts: AlertBurden
    completeness: Completeness


def tick_months(max_days: float) -> tuple[int, ...]:
    """0, 6, 12, … (12-month steps beyond 5 years) covering `max_days`; at least 0 and 6."""
    top = max(max_days / DAYS_PER_MONTH, 1.0)
    step = 6 if top <= 60 else 12
    return tuple(range(0, max(math.ceil(top / step), 1) * step + 1, step))


def _section(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    outcomes: pl.DataFrame,
    request: DurabilityRequest,
    config: Config,
    stamp: str,
    title: str,
) -> EndpointSection:
    table = durability_table(patients, visits, request, config, outcomes=outcomes)
    summary = durability_summary(patients, visits, request, config, outcomes=outcomes)
    last = table["time_days"].max()
    ticks = tick_months(float(last) if isinstance(last, int | float) else 0.0)
    risk = risk_table(table, list(ticks)) if table.height else pl.DataFrame()
    at_risk = tuple(
        AtRisk(
            group=str(row["Number at risk"]).removesuffix(": at risk"),
            counts=tuple(int(row[str(m)]) for m in ticks),
        )
        for row in risk.iter_rows(named=True)
        if str(row["Number at risk"]).endswith(": at risk")
    )
    return EndpointSection(
        request=request,
        title=title,
        x_title=f"Months since {request.spec.origin}",
        table=table,
        summary=summary,
        ticks=ticks,
        at_risk=at_risk,
        stamp=stamp,
    )


def _counts(values: pl.Series) -> tuple[Count, ...]:
    counts = values.cast(pl.String).fill_null("unknown").value_counts()
    rows = sorted(zip(counts[values.name].to_list(), counts["count"].to_list(), strict=True))
    return tuple(Count(str(label), int(n)) for label, n in rows)


def _composition(outcomes: pl.DataFrame, config: Config) -> tuple[Composition, ...]:
    age = add_group(outcomes.select("age_at_infusion_years"), "age_group", None, config)["group"]
    return (
        Composition("Site", _counts(outcomes["site"])),
        Composition("Product", _counts(outcomes["product"])),
        Composition("Infusion year", _counts(outcomes["infusion_date"].dt.year().alias("year"))),
        Composition("Age at infusion (years)", _age_counts(age)),
    )


def _age_counts(groups: pl.Series) -> tuple[Count, ...]:
    """Age groups in their clinical order (the Enum's), not alphabetically."""
    present = groups.value_counts(sort=False).sort("group")
    return tuple(
        Count(str(label), int(n))
        for label, n in zip(present["group"].to_list(), present["count"].to_list(), strict=True)
    )


def _swimmer(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    outcomes: pl.DataFrame,
    as_of: date,
    config: Config,
    stamp: str,
) -> Swimmer:
    """As the Overview page draws it (`dashboard.data.overview`), at a printed page's size."""
    recent = outcomes.sort("infusion_date", "patient_id", descending=True).head(SWIMMER_LANES)
    with_day = visits_with_day(patients, visits.filter(pl.col("visit_date") <= as_of))
    mrd = with_day.filter(mrd_detected_expr(config) & (pl.col("day") > 0)).select(
        "patient_id", "day"
    )
    return Swimmer(
        lanes=swimmer_lanes(recent, as_of, config),
        mrd=mrd.join(recent.select("patient_id"), on="patient_id", how="semi"),
        total=outcomes.height,
        stamp=stamp,
    )


def _alert_burden(
    queue: pl.DataFrame, outcomes: pl.DataFrame, as_of: date, stamp: str
) -> AlertBurden:
    by_severity = tuple(
        SeverityBurden(
            severity=sev,
            open=queue.filter((pl.col("severity") == sev) & (pl.col("status") == "open")).height,
            acknowledged=queue.filter(
                (pl.col("severity") == sev) & (pl.col("status") == "acknowledged")
            ).height,
        )
        for sev in SEVERITIES
    )
    performance = rule_performance(queue, outcomes, as_of)
    rules: list[RuleBurden] = []
    for row in performance.iter_rows(named=True):
        if not row["alerts"]:
            continue
        rule_id = str(row["rule"])
        of_rule = queue.filter(pl.col("rule") == rule_id)
        spec = RULES_BY_ID.get(rule_id)
        severities = sorted(set(of_rule["severity"].to_list()), key=SEVERITIES.index)
        rules.append(
            RuleBurden(
                rule=rule_id,
                title=spec.title if spec is not None else rule_id,
                severity=spec.severity if spec and spec.severity else " / ".join(severities),
                alerts=int(row["alerts"]),
                open=of_rule.filter(pl.col("status") == "open").height,
                patients=int(row["patients"]),
                per_patient_year=row["per_patient_year"],
            )
        )
    return AlertBurden(by_severity, tuple(rules), stamp)


def _completeness(
    queue: pl.DataFrame, outcomes: pl.DataFrame, as_of: date, config: Config, stamp: str
) -> Completeness:
    missed = missed_by_window(queue, config.mrd_assessment_windows)
    alive = outcomes.filter(pl.col("death_date").is_null() | (pl.col("death_date") > as_of))
    since_contact = (pl.lit(as_of) - pl.col("last_contact_date")).dt.total_days()
    return Completeness(
        missed_mrd=tuple(
            MissedWindow(str(window), int(n))
            for window, n in zip(
                missed["Window (days since infusion)"].to_list(),
                missed["Missed bone-marrow MRD"].to_list(),
                strict=True,
            )
        ),
        followup_overdue=queue.filter(pl.col("rule") == "followup_overdue")[
            "patient_id"
        ].n_unique(),
        alive=alive.height,
        contact_within_year=alive.filter(since_contact <= CONTACT_WITHIN_DAYS).height,
        overdue_days=config.followup_overdue_days,
        stamp=stamp,
    )


def build_report(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    queue: pl.DataFrame,
    as_of: date,
    data_version: int,
    filters: str = ALL_PATIENTS,
    config: Config | None = None,
) -> CohortReport:
    """The report of the cohort `patients`/`visits` as of `as_of`.

    `queue` is the alert queue with status (`alert_queue.alerts_with_status(store, as_of,
    "all")`) restricted to these patients; `filters` describes how the cohort was chosen (the
    dashboard's sidebar filters), and goes into every section's stamp."""
    cfg = config or get_config()
    patient_ids = patients["patient_id"].implode()
    queue = queue.filter(pl.col("patient_id").is_in(patient_ids))
    outcomes = derive_outcomes(patients, visits, as_of=as_of, config=cfg)
    stamp = stamp_text(data_version, as_of, filters)

    def section(request: DurabilityRequest, title: str, note: str = "") -> EndpointSection:
        request = request.with_as_of(as_of)
        return _section(patients, visits, outcomes, request, cfg, stamp + note, title)

    endpoints = tuple(section(DurabilityRequest(spec.id), spec.label) for spec in ENDPOINT_SPECS)
    cd19 = section(
        DurabilityRequest("cir", by_cd19=True),
        "Cumulative incidence of relapse by CD19 status",
        "; relapse split by CD19",
    )
    tiles = cohort_tiles(outcomes)
    overview = Overview(
        tiles=tiles,
        median_followup_days=median_followup_days(outcomes) if outcomes.height else None,
        open_alerts=queue.filter(pl.col("status") == "open").height,
        composition=_composition(outcomes, cfg),
        swimmer=_swimmer(patients, visits, outcomes, as_of, cfg, stamp),
        stamp=stamp,
    )
    return CohortReport(
        as_of=as_of,
        data_version=data_version,
        filters=filters,
        stamp=stamp,
        overview=overview,
        endpoints=endpoints,
        cd19=cd19,
        alerts=_alert_burden(queue, outcomes, as_of, stamp),
        completeness=_completeness(queue, outcomes, as_of, cfg, stamp),
    )


def months(days: float | None) -> float | None:
    return None if days is None else days / DAYS_PER_MONTH
