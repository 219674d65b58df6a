"""Domain tables the dashboard draws (and the command line could print): the number-at-risk
table, swimmer lanes, the overview's tiles, the alert queue by patient, severity counts and
missed MRD assessments by window. Pure polars; `dashboard/charts.py` only draws them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

import polars as pl

from monitoring.alerts import SEVERITIES, severity_rank
from monitoring.config import DAYS_PER_MONTH, Config, get_config

CD19_CATEGORIES: tuple[str, ...] = ("CD19-positive", "antigen escape", "lineage switch", "unknown")


def cd19_category(status: str | None) -> str:
    """The relapse's CD19 status as one of `CD19_CATEGORIES`."""
    if status is None or status == "unknown":
        return "unknown"
    if status == "positive":
        return "CD19-positive"
    if status == "lineage_switch":
        return "lineage switch"
    return "antigen escape"


def group_rows(table: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(group, its rows by time) in the table's order of groups."""
    groups = table["group"].unique(maintain_order=True).to_list()
    return [(str(g), table.filter(pl.col("group") == g).sort("time_days")) for g in groups]


def risk_table(table: pl.DataFrame, ticks: list[int]) -> pl.DataFrame:
    """KMunicate-style counts at each tick (months): at risk, cumulative events and censored.

    Computed from the durability table (one row per group and time), never from a figure.
    For `cir` tables the risk set is the same for every cause; the first cause's rows are used
    and events count every cause.
    """
    rows: list[dict[str, Any]] = []
    for group, rows_g in group_rows(table):
        events_rows = rows_g
        if "cause" in rows_g.columns:
            first = rows_g["cause"][0]
            events_rows = rows_g
            rows_g = rows_g.filter(pl.col("cause") == first)
        at_risk: dict[str, Any] = {"Number at risk": f"{group}: at risk"}
        events: dict[str, Any] = {"Number at risk": f"{group}: events"}
        censored: dict[str, Any] = {"Number at risk": f"{group}: censored"}
        for m in ticks:
            day = m * DAYS_PER_MONTH
            later = rows_g.filter(pl.col("time_days") >= day)
            before = rows_g.filter(pl.col("time_days") < day)
            n_at = int(later["at_risk"][0]) if later.height else 0
            last = rows_g.tail(1)
            if later.height and later["time_days"][0] > day and before.height:
                # between observed times the risk set is the one just after the last time
                prev = before.tail(1)
                n_at = int(prev["at_risk"][0] - prev["events"][0] - prev["censored"][0])
            elif not later.height and last.height:
                n_at = 0
            label = f"{m}"
            at_risk[label] = n_at
            events[label] = int(events_rows.filter(pl.col("time_days") <= day)["events"].sum())
            censored[label] = int(rows_g.filter(pl.col("time_days") <= day)["censored"].sum())
        rows.extend([at_risk, events, censored])
    return pl.DataFrame(rows)


def swimmer_lanes(
    outcomes: pl.DataFrame, as_of: date, config: Config | None = None
) -> pl.DataFrame:
    """One row per patient: lane order and the day of every event the swimmer plot draws.

    `in_follow_up`: alive and last contact within `followup_overdue_days` of the evaluation
    date (the `followup_overdue` rule), which is where the plot puts an arrow.
    """
    overdue_days = (config or get_config()).followup_overdue_days
    end = pl.col("last_contact_day").cast(pl.Float64)
    aplasia_start = pl.when(pl.col("response") == "responder").then(
        pl.col("remission_onset_day").cast(pl.Float64)
    )
    aplasia_end = pl.min_horizontal(
        pl.col("bcell_recovery_day"), pl.col("relapse_day"), pl.col("hsct_day"), end
    ).cast(pl.Float64)
    recovery_end = pl.min_horizontal(pl.col("relapse_day"), pl.col("hsct_day"), end).cast(
        pl.Float64
    )
    since_contact = (pl.lit(as_of) - pl.col("last_contact_date")).dt.total_days()
    lanes = outcomes.select(
        "patient_id",
        "infusion_date",
        "response",
        end.alias("end_day"),
        aplasia_start.alias("aplasia_start"),
        aplasia_end.alias("aplasia_end"),
        pl.col("bcell_recovery_day").cast(pl.Float64).alias("recovery_start"),
        recovery_end.alias("recovery_end"),
        pl.col("remission_onset_day").cast(pl.Float64),
        pl.col("relapse_day").cast(pl.Float64),
        pl.col("relapse_cd19_status"),
        pl.col("hsct_day").cast(pl.Float64),
        pl.col("death_day").cast(pl.Float64),
        (pl.col("death_day").is_null() & (since_contact <= overdue_days)).alias("in_follow_up"),
    )
    return lanes.sort(["end_day", "patient_id"]).with_row_index("lane", offset=1)


@dataclass(frozen=True)
class OverviewTiles:
    """The overview's numbers (one patient = one row of the outcomes frame)."""

    infused: int
    responders: int
    assessed: int
    pending: int
    response_rate: float | None
    in_remission: int
    relapses: int
    relapse_cd19: tuple[tuple[str, int], ...]  # (category, count) in CD19_CATEGORIES order
    aplasia: int
    deaths: int

    def cd19_count(self, category: str) -> int:
        return dict(self.relapse_cd19)[category]

    def to_json(self) -> dict[str, object]:
        return {
            "infused": self.infused,
            "responders": self.responders,
            "assessed": self.assessed,
            "pending": self.pending,
            "response_rate": self.response_rate,
            "in_remission": self.in_remission,
            "relapses": self.relapses,
            "relapse_cd19": dict(self.relapse_cd19),
            "aplasia": self.aplasia,
            "deaths": self.deaths,
        }


def cohort_tiles(outcomes: pl.DataFrame) -> OverviewTiles:
    """The overview's numbers from the outcomes frame (one row per patient)."""
    responders = outcomes.filter(pl.col("response") == "responder")
    assessed = outcomes.filter(pl.col("response") != "pending").height
    relapsed = responders.filter(pl.col("relapse_date").is_not_null())
    # one cd19_category call per distinct status, not per relapse
    per_category: dict[str, int] = dict.fromkeys(CD19_CATEGORIES, 0)
    for status, n in relapsed.group_by("relapse_cd19_status").len().iter_rows():
        per_category[cd19_category(status)] += int(n)
    in_remission = responders.filter(
        pl.col("relapse_date").is_null() & pl.col("death_date").is_null()
    )
    aplasia = in_remission.filter(
        pl.col("bcell_recovery_date").is_null()
        & pl.col("hsct_date").is_null()
        & pl.col("last_bcell_date").is_not_null()
    )
    return OverviewTiles(
        infused=outcomes.height,
        responders=responders.height,
        assessed=assessed,
        pending=outcomes.height - assessed,
        response_rate=responders.height / assessed if assessed else None,
        in_remission=in_remission.height,
        relapses=relapsed.height,
        relapse_cd19=tuple((c, per_category[c]) for c in CD19_CATEGORIES),
        aplasia=aplasia.height,
        deaths=outcomes.filter(pl.col("death_date").is_not_null()).height,
    )


def severity_counts(alerts: pl.DataFrame) -> Mapping[str, int]:
    """Alerts per severity, every severity present (0 when none), in severity order; read-only
    (the dashboard shares one value between sessions)."""
    return _in_severity_order(alerts.group_by("severity").agg(n=pl.len()))


def severity_counts_per_patient(alerts: pl.DataFrame) -> pl.DataFrame:
    """(patient_id, severity, n): each patient's alerts per severity, so that any group of
    patients' `severity_counts` is a sum (`severity_counts_among`) instead of a pass over the
    whole queue."""
    return alerts.group_by("patient_id", "severity").agg(n=pl.len())


def severity_counts_among(per_patient: pl.DataFrame, patient_ids: pl.Series) -> Mapping[str, int]:
    """`severity_counts` of the alerts of `patient_ids`, from `severity_counts_per_patient`."""
    picked = per_patient.filter(pl.col("patient_id").is_in(patient_ids.implode()))
    return _in_severity_order(picked.group_by("severity").agg(pl.col("n").sum()))


def _in_severity_order(counted: pl.DataFrame) -> Mapping[str, int]:
    """(severity, n) rows as every severity's count, in severity order."""
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for sev, n in counted.select("severity", "n").iter_rows():
        counts[str(sev)] = int(n)
    return MappingProxyType(counts)


def queue_by_patient(queue: pl.DataFrame) -> pl.DataFrame:
    """The alert queue grouped by patient: patients ordered by their most severe, then oldest
    alert; within a patient by severity, then date."""
    ranked = queue.with_columns(_rank=severity_rank())
    order = ranked.group_by("patient_id").agg(
        _p_rank=pl.col("_rank").min(), _p_date=pl.col("triggered_on").min()
    )
    return (
        ranked.join(order, on="patient_id")
        .sort("_p_rank", "_p_date", "patient_id", "_rank", "triggered_on")
        .drop("_rank", "_p_rank", "_p_date")
    )


def missed_by_window(
    queue: pl.DataFrame, windows: tuple[tuple[int, int], ...], shown: int = 12
) -> pl.DataFrame:
    """Missed bone-marrow MRD assessments per window (the `missed_mrd_assessment` alerts, which
    trigger on the window's last day)."""
    missed = queue.filter(pl.col("rule") == "missed_mrd_assessment")
    rows = []
    for first, last in windows:
        part = missed.filter(pl.col("day") == last)
        ids = part["patient_id"].to_list()
        rows.append(
            {
                "Window (days since infusion)": f"{first}–{last}",
                "Missed bone-marrow MRD": part.height,
                "Patients": ", ".join(ids[:shown]) + (" …" if len(ids) > shown else ""),
            }
        )
    return pl.DataFrame(rows)
