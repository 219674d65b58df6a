"""Durability results: KM / cumulative-incidence tables and the summary of CONTRACT.md §5.

    patients, visits ─derive_outcomes─▶ outcomes ─add_group─▶ ─endpoint_frame─▶ [apply_landmark]
        ─▶ per group: survival.km_table / survival.cif_table  →  durability_table
        ─▶ per group: km_median, landmark_rows, logrank_p     →  durability_summary

`durability_table` columns: `group, time_days, at_risk, events, censored, estimate, ci_lower,
ci_upper`, and for `cir` the extra column `cause` appended last (so the eight common columns keep
their positions for every endpoint). One row per group (and cause) and distinct observed time,
time 0 included. Groups come in their natural order (see `endpoints.add_group`).

`durability_summary` returns a typed `DurabilitySummary` (monitoring/durability_results.py) whose
`to_json()` is the JSON shape of CONTRACT §5:

    {"endpoint", "median_followup_days", "logrank_p",
     "groups": [{"group", "n", "events", "median_days", "median_ci_lower", "median_ci_upper",
                 "landmarks": [{"months", "estimate", "ci_lower", "ci_upper", "at_risk"}]}]}

For `cir`: the median fields and `logrank_p` are null (its test is Gray's, in `tests` of the summary);
`events` counts relapses (all relapse causes); `landmarks` is the cumulative incidence of relapse
(with `by_cd19` the relapse causes pooled, estimated in a pooled analysis so that its confidence
limits are right); each group carries an extra key
`causes: [{"cause", "events", "landmarks": [...]}]` with one entry per cause of the analysis,
relapse cause(s) first, then `death`, then `hsct`. The median follow-up is the reverse-KM median
of `os` over every patient infused by `as_of` (no landmark, no grouping). With a landmark,
times and landmark months count from the landmark day. NaN and infinite numbers become null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Unpack

import polars as pl

from monitoring import comparisons, survival
from monitoring.analysis_registry import DurabilityRequest, RequestOptions, as_request
from monitoring.config import DAYS_PER_MONTH, LANDMARK_MONTHS, Config, get_config
from monitoring.durability_results import (
    CauseSummary,
    DurabilitySummary,
    GroupSummary,
    Landmark,
    Rmst,
)
from monitoring.endpoints import (
    CIR_RELAPSE_CAUSES,
    add_group,
    apply_landmark,
    check_request,
    cir_causes,
    endpoint_frame,
)
from monitoring.outcomes import derive_outcomes

_TABLE_SCHEMA: dict[str, pl.DataType] = {
    "group": pl.String(),
    "time_days": pl.Float64(),
    "at_risk": pl.Int64(),
    "events": pl.Int64(),
    "censored": pl.Int64(),
    "estimate": pl.Float64(),
    "ci_lower": pl.Float64(),
    "ci_upper": pl.Float64(),
}
TABLE_COLUMNS: tuple[str, ...] = tuple(_TABLE_SCHEMA)
LANDMARK_DAYS: tuple[float, ...] = tuple(m * DAYS_PER_MONTH for m in LANDMARK_MONTHS)


def analysis_frame(
    patients: pl.DataFrame | pl.LazyFrame,
    visits: pl.DataFrame | pl.LazyFrame,
    request: DurabilityRequest | str,
    config: Config | None = None,
    *,
    outcomes: pl.DataFrame | None = None,
    **options: Unpack[RequestOptions],
) -> pl.DataFrame:
    """The per-patient rows that the tables are estimated from (see `endpoints.endpoint_frame`)."""
    return _analysis(patients, visits, as_request(request, options), config, outcomes)[1]


def _analysis(
    patients: pl.DataFrame | pl.LazyFrame,
    visits: pl.DataFrame | pl.LazyFrame,
    request: DurabilityRequest,
    config: Config | None,
    outcomes: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(outcomes, analysis frame); the request is checked before any work is done.

    `outcomes` lets a caller that evaluates several endpoints derive them once; it must be
    `derive_outcomes(patients, visits, as_of, config)` for the same arguments.
    """
    check_request(request)
    cfg = config or get_config()
    if outcomes is None:
        outcomes = derive_outcomes(patients, visits, as_of=request.as_of, config=cfg)
    frame = endpoint_frame(
        add_group(outcomes, request.by, request.landmark_days, cfg),
        request.endpoint,
        censor_at_new_therapy=request.censor_at_new_therapy,
        hsct_competing=request.hsct_competing,
        by_cd19=request.by_cd19,
    )
    if request.landmark_days is not None:
        frame = apply_landmark(frame, request.landmark_days)
    return outcomes, frame


def _groups(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(label, rows) per group present, in the group column's natural (Enum) order."""
    present = frame["group"].unique().sort()
    return [(str(g), frame.filter(pl.col("group") == g)) for g in present.to_list()]


def _table_from_frame(frame: pl.DataFrame, endpoint: str, causes: Sequence[str]) -> pl.DataFrame:
    parts: list[pl.DataFrame] = []
    for label, rows in _groups(frame):
        if endpoint == "cir":
            table = survival.cif_table(rows["time_days"], rows["cause"], list(causes))
        else:
            table = survival.km_table(rows["time_days"], rows["event"])
        parts.append(table.with_columns(group=pl.lit(label, pl.String)))
    schema = dict(_TABLE_SCHEMA)
    if endpoint == "cir":
        schema["cause"] = pl.String()
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(
        [part.select([pl.col(c).cast(t) for c, t in schema.items()]) for part in parts]
    )


def durability_table(
    patients: pl.DataFrame | pl.LazyFrame,
    visits: pl.DataFrame | pl.LazyFrame,
    request: DurabilityRequest | str,
    config: Config | None = None,
    *,
    outcomes: pl.DataFrame | None = None,
    **options: Unpack[RequestOptions],
) -> pl.DataFrame:
    """One row per group (and cause for cir) and distinct observed time, time 0 included.

    `request` is a `DurabilityRequest`, or an endpoint id with the request's other fields as
    keyword options."""
    request = as_request(request, options)
    frame = _analysis(patients, visits, request, config, outcomes)[1]
    causes = cir_causes(hsct_competing=request.hsct_competing, by_cd19=request.by_cd19)
    return _table_from_frame(frame, request.endpoint, causes)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _landmarks(table: pl.DataFrame) -> tuple[Landmark, ...]:
    rows = survival.landmark_rows(table, list(LANDMARK_DAYS))
    out: list[Landmark] = []
    for months, row in zip(LANDMARK_MONTHS, rows, strict=True):
        at_risk = row.get("at_risk")
        out.append(
            Landmark(
                months=months,
                estimate=_number(row.get("estimate")),
                ci_lower=_number(row.get("ci_lower")),
                ci_upper=_number(row.get("ci_upper")),
                at_risk=None if at_risk is None else int(at_risk),
            )
        )
    return tuple(out)


def _km_group(label: str, rows: pl.DataFrame) -> GroupSummary:
    time, event = rows["time_days"], rows["event"]
    median, lower, upper = survival.km_median(time, event)
    return GroupSummary(
        group=label,
        n=rows.height,
        events=int(event.sum()),
        median_days=_number(median),
        median_ci_lower=_number(lower),
        median_ci_upper=_number(upper),
        landmarks=_landmarks(survival.km_table(time, event)),
    )


def _cir_group(label: str, rows: pl.DataFrame, causes: Sequence[str]) -> GroupSummary:
    relapse_causes = [c for c in causes if c in CIR_RELAPSE_CAUSES]
    table = survival.cif_table(rows["time_days"], rows["cause"], list(causes))
    pooled_cause = pl.when(pl.col("cause").is_in(relapse_causes)).then(pl.lit("relapse"))
    pooled = rows.select("time_days", pooled_cause.otherwise(pl.col("cause")).alias("cause"))
    pooled_causes = ["relapse", *(c for c in causes if c not in relapse_causes)]
    pooled_table = survival.cif_table(pooled["time_days"], pooled["cause"], pooled_causes)
    counts = rows["cause"].value_counts()
    count = dict(zip(counts["cause"].to_list(), counts["count"].to_list(), strict=True))

    def cause_landmarks(tbl: pl.DataFrame, cause: str) -> tuple[Landmark, ...]:
        return _landmarks(tbl.filter(pl.col("cause") == cause).drop("cause"))

    return GroupSummary(
        group=label,
        n=rows.height,
        events=sum(int(count.get(c, 0)) for c in relapse_causes),
        median_days=None,
        median_ci_lower=None,
        median_ci_upper=None,
        landmarks=cause_landmarks(pooled_table, "relapse"),
        causes=tuple(
            CauseSummary(cause=c, events=int(count.get(c, 0)), landmarks=cause_landmarks(table, c))
            for c in causes
        ),
    )


def median_followup_days(outcomes: pl.DataFrame) -> float | None:
    """Reverse Kaplan–Meier median of `os` over every patient of `outcomes` (all infused)."""
    os_frame = endpoint_frame(outcomes, "os")
    if os_frame.is_empty():
        return None
    return _number(survival.reverse_km_median_followup(os_frame["time_days"], os_frame["event"]))


def durability_summary(
    patients: pl.DataFrame | pl.LazyFrame,
    visits: pl.DataFrame | pl.LazyFrame,
    request: DurabilityRequest | str,
    config: Config | None = None,
    *,
    outcomes: pl.DataFrame | None = None,
    reference: str | None = None,
    **options: Unpack[RequestOptions],
) -> DurabilitySummary:
    """The CONTRACT §5 summary (`.to_json()` for its JSON); arguments as `durability_table`.

    With two or more groups it carries the revision-2 comparisons (`comparisons`): tests,
    pairwise tests, hazard ratios against `reference` (default: the largest group; a name that
    is not a group raises `UsageError` naming the groups) and, for KM endpoints, each group's RMST.
    """
    request = as_request(request, options)
    outcomes, frame = _analysis(patients, visits, request, config, outcomes)
    groups = _groups(frame)
    if request.spec.competing_risks:
        causes = cir_causes(hsct_competing=request.hsct_competing, by_cd19=request.by_cd19)
        entries = [_cir_group(label, rows, causes) for label, rows in groups]
        p_value = None
    else:
        entries = [_km_group(label, rows) for label, rows in groups]
        p_value = (
            _number(
                survival.logrank_p(
                    frame["time_days"], frame["event"], frame["group"].cast(pl.String)
                )
            )
            if len(groups) >= 2
            else None
        )
    relapse_causes = [
        c
        for c in cir_causes(hsct_competing=request.hsct_competing, by_cd19=request.by_cd19)
        if c in CIR_RELAPSE_CAUSES
    ]
    endpoint = "cir" if request.spec.competing_risks else request.endpoint
    comparison = comparisons.compare_groups(frame, endpoint, relapse_causes, reference)
    summary = DurabilitySummary(
        endpoint=request.endpoint,
        median_followup_days=median_followup_days(outcomes),
        logrank_p=p_value,
        groups=tuple(entries),
    )
    if len(groups) < 2:
        return summary
    if not request.spec.competing_risks:
        entries = [
            replace(entry, rmst=_rmst(rows))
            for entry, (_label, rows) in zip(entries, groups, strict=True)
        ]
    return replace(
        summary,
        groups=tuple(entries),
        tests=comparison.tests,
        pairwise=comparison.pairwise,
        hazard_ratios=comparison.hazard_ratios,
    )


def _rmst(rows: pl.DataFrame) -> tuple[Rmst, ...]:
    return comparisons.rmst_rows(rows["time_days"], rows["event"].cast(pl.Float64))
