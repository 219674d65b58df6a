"""Durability endpoints (CONTRACT.md §3) and groupings, from the per-patient outcomes frame.

    outcomes ──add_group(by, landmark)──▶ + group ──endpoint_frame(endpoint)──▶ time/event rows
                                                          └──apply_landmark(days)──▶ re-originated

`endpoint_frame` returns one row per patient of the endpoint's population with `patient_id`,
the baseline attribute columns, `group` (when `add_group` was applied first), `origin_day`
(day since infusion of the endpoint's origin: 0, or remission onset), `time_days` (Float64, days
from the origin) and `event` (Boolean) for the Kaplan–Meier endpoints or `cause` (String, ""
= censored) for `cir`.

Choices where CONTRACT.md is silent:
- Times never go below 0: a censoring date before the origin (a transplant recorded before the
  remission-onset visit) censors at time 0.
- `--censor-at-new-therapy` censors at the earliest of hsct/new therapy *or last contact*,
  whichever comes first, when there is no earlier event.
- `bca` (CONTRACT §3, revision 2): a responder without any B-cell assessment is censored at
  day 0 without an event (they count in `n` and the time-0 risk set only); a relapse before
  hsct/new therapy is still an event, because relapse is observed in the marrow independently of
  B-cell testing. The last B-cell assessment is of any date, also after hsct_date, so a patient
  still assessed after a transplant is censored at hsct_date; B-cell values and relapses from
  the transplant on never count as events. A last B-cell assessment before remission onset (or
  before day 28, when recovery cannot yet be counted) is used as it is: the patient leaves the
  risk set there, which is honest about how long aplasia was actually verified.
- `car`: the population and the last CAR result count results of any date (also after
  hsct_date), so a patient with results after a transplant is censored at hsct_date. `car` does
  not look at death (the contract table does not either): the last CAR result is never after
  death, so a death only ends the CAR series.
- `cir --hsct-competing`: a transplant counts as the `hsct` cause when it is strictly before the
  relapse (a transplant on the relapse day is not "in remission") and on or before death.
- Flags that do not belong to an endpoint (`censor_at_new_therapy` outside efs/rfs,
  `hsct_competing` / `by_cd19` outside cir) raise `UsageError` instead of being ignored.

Groupings: any baseline patient column (`BASELINE_GROUP_COLUMNS`; the continuous ones by their
clinical bands, infusion_date by year: `monitoring.groupings`), the derived `age_group`,
`disease_burden`, `infusion_year`, the tertiles `age_tertiles` and `blasts_tertiles`, and the post-baseline `early_bcell_recovery` and
`mrd_day28`, which need a landmark (immortal-time bias otherwise). The follow-up columns of the
patients table (hsct_date, new_therapy_date, last_contact_date, death_date, death_cause) are
outcomes, not groupings, and are refused with a message. `early_bcell_recovery` is "yes" when
a B-cell recovery dated on or before day 183 was confirmed by the landmark, else "no" (which
includes patients never assessed); `mrd_day28` is "positive" when a bone-marrow MRD result on
day 21–35 (up to the landmark) detected MRD, else "negative" when one was MRD-negative, else
"not assessed". `group` is a `pl.Enum` whose category
order is the natural order of the groups (numeric/chronological for raw columns, clinical order
for derived ones, "unknown" last); cast it to `pl.String` for output.
"""

from __future__ import annotations

import polars as pl

from monitoring.analysis_registry import (
    ENDPOINTS,
    OPTIONS,
    DurabilityRequest,
)
from monitoring.config import Config, get_config
from monitoring.errors import UsageError
from monitoring.groupings import BANDED_COLUMNS, TERTILE_GROUPINGS, tertile_groups
from monitoring.outcomes import NON_RESPONDER, PATIENT_ATTRIBUTES, PENDING, RESPONDER
from monitoring.thresholds import below

UNKNOWN = "unknown"
ALL = "all"

BASELINE_GROUP_COLUMNS: tuple[str, ...] = ("infusion_date", *PATIENT_ATTRIBUTES)
FOLLOWUP_PATIENT_COLUMNS: tuple[str, ...] = (
    "hsct_date",
    "new_therapy_date",
    "last_contact_date",
    "death_date",
    "death_cause",
)
AGE_GROUPS: tuple[str, ...] = ("<3", "3–9", "10–17", "≥18")
DISEASE_BURDEN_GROUPS: tuple[str, ...] = ("<5 %", "5–<50 %", "≥50 %")
DERIVED_GROUPS: dict[str, tuple[str, ...]] = {
    "age_group": AGE_GROUPS,
    "disease_burden": DISEASE_BURDEN_GROUPS,
    "infusion_year": (),
}
POST_BASELINE_GROUPS: dict[str, tuple[str, ...]] = {
    "early_bcell_recovery": ("yes", "no"),
    "mrd_day28": ("positive", "negative", "not assessed"),
}
# a sensible landmark to suggest for each post-baseline grouping
SUGGESTED_LANDMARK: dict[str, int] = {"early_bcell_recovery": 183, "mrd_day28": 35}

CIR_RELAPSE_CAUSES: tuple[str, ...] = (
    "relapse",
    "relapse_cd19_positive",
    "relapse_antigen_escape",
    "relapse_cd19_unknown",
)

_PID = "patient_id"


def group_columns() -> list[str]:
    """Every name `--by` accepts."""
    return [*BASELINE_GROUP_COLUMNS, *DERIVED_GROUPS, *TERTILE_GROUPINGS, *POST_BASELINE_GROUPS]


def clinical_groupings() -> list[str]:
    """The groupings to offer a person, in that order: never a raw continuous column.

    (`--by` still accepts age_at_infusion_years, baseline_bm_blasts_pct and infusion_date, and
    groups them by band or year: see `monitoring.groupings`.)
    """
    first = [
        "product",
        "site",
        "age_group",
        "age_tertiles",
        "disease_burden",
        "blasts_tertiles",
        "infusion_year",
        "prior_hsct",
        "prior_blinatumomab",
        "kmt2a_rearranged",
        "sex",
        *POST_BASELINE_GROUPS,
    ]
    hidden = {*BANDED_COLUMNS, "infusion_date"}
    return [*first, *(c for c in group_columns() if c not in first and c not in hidden)]


def _age_group() -> pl.Expr:
    # band edges with the relative tolerance of monitoring.thresholds (36 / 12 months is 3)
    age = pl.col("age_at_infusion_years")
    return (
        pl.when(below(age, 3))
        .then(pl.lit(AGE_GROUPS[0]))
        .when(below(age, 10))
        .then(pl.lit(AGE_GROUPS[1]))
        .when(below(age, 18))
        .then(pl.lit(AGE_GROUPS[2]))
        .when(age.is_not_null())
        .then(pl.lit(AGE_GROUPS[3]))
    )


def _disease_burden() -> pl.Expr:
    blasts = pl.col("baseline_bm_blasts_pct")
    return (
        pl.when(below(blasts, 5))
        .then(pl.lit(DISEASE_BURDEN_GROUPS[0]))
        .when(below(blasts, 50))
        .then(pl.lit(DISEASE_BURDEN_GROUPS[1]))
        .when(blasts.is_not_null())
        .then(pl.lit(DISEASE_BURDEN_GROUPS[2]))
    )


def _known_by(day_col: str, landmark_days: int | None) -> pl.Expr:
    """The fact of `day_col` is known (not null) by the landmark day (any day without one)."""
    known = pl.col(day_col).is_not_null()
    if landmark_days is not None:
        known = known & (pl.col(day_col) <= landmark_days)
    return known


def _early_bcell_recovery(landmark_days: int | None, config: Config) -> pl.Expr:
    # recovery is only known once confirmed: the confirming assessment must be by the landmark
    recovered = _known_by("bcell_recovery_confirmed_day", landmark_days) & (
        pl.col("bcell_recovery_day") <= config.early_bcell_recovery_last_day
    )
    return pl.when(recovered).then(pl.lit("yes")).otherwise(pl.lit("no"))


def _mrd_day28(landmark_days: int | None) -> pl.Expr:
    return (
        pl.when(_known_by("mrd_day28_positive_day", landmark_days))
        .then(pl.lit("positive"))
        .when(_known_by("mrd_day28_negative_day", landmark_days))
        .then(pl.lit("negative"))
        .otherwise(pl.lit("not assessed"))
    )


def _unknown_column_message(by: str) -> str:
    return f"cannot group by {by!r}: unknown column. Available: {', '.join(group_columns())}"


def check_request(
    request: DurabilityRequest | str, by: str | None = None, landmark_days: int | None = None
) -> None:
    """Raise `UsageError` for a request that cannot be answered, before any work is done
    (an endpoint id with `by` and `landmark_days` stands for the request of those)."""
    if isinstance(request, str):
        request = DurabilityRequest(request, by=by, landmark_days=landmark_days)
    _check_flags(request)
    by, landmark_days = request.by, request.landmark_days
    _check_landmark(landmark_days)
    if by is None:
        return
    if by in FOLLOWUP_PATIENT_COLUMNS:
        raise UsageError(
            f"cannot group by {by!r}: it is a follow-up outcome, not a characteristic known at "
            f"infusion. Use an endpoint for it, or a post-baseline grouping with --landmark. "
            f"Available: {', '.join(group_columns())}"
        )
    if by not in group_columns():
        raise UsageError(_unknown_column_message(by))
    if by in POST_BASELINE_GROUPS and landmark_days is None:
        raise UsageError(
            f"--by {by} is only known after day 0; curves from day 0 would be biased by "
            f"immortal time. Add --landmark DAYS, e.g. --landmark {SUGGESTED_LANDMARK[by]}"
        )


def add_group(
    outcomes: pl.DataFrame,
    by: str | None,
    landmark_days: int | None = None,
    config: Config | None = None,
) -> pl.DataFrame:
    """`outcomes` plus a `group` column (pl.Enum, natural order; null values → "unknown").

    Post-baseline groupings are evaluated with data up to `landmark_days` only and are refused
    without a landmark. The landmark does not filter patients here: who is still at risk at the
    landmark depends on the endpoint (see `apply_landmark`).
    """
    cfg = config or get_config()
    _check_landmark(landmark_days)
    if by is None:
        return outcomes.with_columns(group=pl.lit(ALL).cast(pl.Enum([ALL])))
    if by in FOLLOWUP_PATIENT_COLUMNS or by in POST_BASELINE_GROUPS:
        check_request("os", by, landmark_days)
    if by in POST_BASELINE_GROUPS:
        expr = (
            _early_bcell_recovery(landmark_days, cfg)
            if by == "early_bcell_recovery"
            else _mrd_day28(landmark_days)
        )
        return _with_enum_group(outcomes, expr, POST_BASELINE_GROUPS[by])
    # a continuous column is never one group per value: its clinical bands, or thirds
    by = BANDED_COLUMNS.get(by, by)
    if by in TERTILE_GROUPINGS:
        labels, order = tertile_groups(outcomes[TERTILE_GROUPINGS[by]], TERTILE_GROUPINGS[by])
        return outcomes.with_columns(labels.cast(pl.Enum(order)))
    if by in ("infusion_year", "infusion_date"):
        return _with_raw_group(outcomes, pl.col("infusion_date").dt.year())
    if by == "age_group":
        return _with_enum_group(outcomes, _age_group(), AGE_GROUPS)
    if by == "disease_burden":
        return _with_enum_group(outcomes, _disease_burden(), DISEASE_BURDEN_GROUPS)
    if by in BASELINE_GROUP_COLUMNS and by in outcomes.columns:
        return _with_raw_group(outcomes, pl.col(by))
    raise UsageError(_unknown_column_message(by))


def _with_enum_group(frame: pl.DataFrame, expr: pl.Expr, levels: tuple[str, ...]) -> pl.DataFrame:
    labels = frame.select(expr.fill_null(UNKNOWN).alias("group"))["group"]
    categories = [*levels, UNKNOWN] if UNKNOWN not in levels else list(levels)
    return frame.with_columns(labels.cast(pl.Enum(categories)))


def _with_raw_group(frame: pl.DataFrame, expr: pl.Expr) -> pl.DataFrame:
    values = frame.select(expr.alias("group"))["group"]
    levels = values.drop_nulls().unique().sort().cast(pl.String).to_list()
    if values.null_count() and UNKNOWN not in levels:
        levels.append(UNKNOWN)
    labels = values.cast(pl.String).fill_null(UNKNOWN)
    return frame.with_columns(labels.cast(pl.Enum(levels)))


def _check_landmark(landmark_days: int | None) -> None:
    if landmark_days is not None and landmark_days < 0:
        raise UsageError(
            f"--landmark must be a day on or after infusion (0 or more), got {landmark_days}"
        )


def _check_flags(request: DurabilityRequest) -> None:
    endpoint = request.endpoint
    if endpoint not in ENDPOINTS:
        raise UsageError(f"unknown endpoint {endpoint!r}; choose one of {', '.join(ENDPOINTS)}")
    for option in OPTIONS:
        if getattr(request, option.field) and endpoint not in option.endpoints:
            raise UsageError(
                f"{option.flag} applies to {' and '.join(option.endpoints)} only, "
                f"not {endpoint}; drop it"
            )


def _earliest(*columns: str | pl.Expr) -> pl.Expr:
    return pl.min_horizontal(*columns)


def _before(a: str | pl.Expr, b: str | pl.Expr) -> pl.Expr:
    """a is strictly before b, where a null b never comes (null a: False)."""
    a_ = pl.col(a) if isinstance(a, str) else a
    b_ = pl.col(b) if isinstance(b, str) else b
    return a_.is_not_null() & (b_.is_null() | (a_ < b_))


def endpoint_frame(
    outcomes: pl.DataFrame,
    endpoint: str,
    *,
    censor_at_new_therapy: bool = False,
    hsct_competing: bool = False,
    by_cd19: bool = False,
) -> pl.DataFrame:
    """Per patient of the endpoint's population: time from the origin and event / cause."""
    _check_flags(
        DurabilityRequest(
            endpoint,
            censor_at_new_therapy=censor_at_new_therapy,
            hsct_competing=hsct_competing,
            by_cd19=by_cd19,
        )
    )
    responders = pl.col("response") == RESPONDER
    origin: pl.Expr = pl.lit(0, pl.Int64)
    population: pl.Expr = pl.lit(True)
    # `end` = day since infusion of the event or censoring; `event` for KM endpoints
    if endpoint == "os":
        event = pl.col("death_day").is_not_null()
        end = pl.coalesce("death_day", "last_contact_day")
    elif endpoint in ("efs", "rfs"):
        if endpoint == "efs":
            non_response = pl.col("response") == NON_RESPONDER
            event_day = (
                pl.when(non_response)
                .then(pl.lit(0, pl.Int64))
                .otherwise(_earliest("relapse_day", "death_day"))
            )
        else:
            population = responders
            origin = pl.col("remission_onset_day")
            event_day = _earliest("relapse_day", "death_day")
        event = event_day.is_not_null()
        end = pl.coalesce(event_day, "last_contact_day")
        if censor_at_new_therapy:
            stop = _earliest("hsct_day", "new_therapy_day")
            censored_early = _before(stop, end)
            event = event & ~censored_early
            end = pl.when(censored_early).then(stop).otherwise(end)
    elif endpoint == "bca":
        population = responders
        candidate = _earliest("bcell_recovery_day", "relapse_day")
        event = _before(candidate, "hsct_day") & _before(candidate, "new_therapy_day")
        censor = _earliest(
            pl.col("last_bcell_day").fill_null(0), "hsct_day", "new_therapy_day", "death_day"
        )
        end = pl.when(event).then(candidate).otherwise(censor)
    elif endpoint == "car":
        population = pl.col("has_car_result")
        event = pl.col("car_loss_day").is_not_null()
        end = pl.when(event).then("car_loss_day").otherwise(_earliest("last_car_day", "hsct_day"))
    else:  # cir
        return _cir_frame(outcomes, hsct_competing=hsct_competing, by_cd19=by_cd19)

    return (
        outcomes.filter(population)
        .with_columns(origin_day=origin, _end=end, event=event.fill_null(False))
        .with_columns(time_days=_time_from_origin())
        .select(*_keep_columns(outcomes), "origin_day", "time_days", "event")
    )


def _time_from_origin() -> pl.Expr:
    return (pl.col("_end") - pl.col("origin_day")).clip(lower_bound=0).cast(pl.Float64)


def _keep_columns(outcomes: pl.DataFrame) -> list[str]:
    wanted = [_PID, *BASELINE_GROUP_COLUMNS, "group"]
    return [c for c in wanted if c in outcomes.columns]


def _cir_frame(outcomes: pl.DataFrame, *, hsct_competing: bool, by_cd19: bool) -> pl.DataFrame:
    if by_cd19:
        relapse_cause = (
            pl.when(pl.col("relapse_cd19_status") == "positive")
            .then(pl.lit("relapse_cd19_positive"))
            .when(pl.col("antigen_escape"))
            .then(pl.lit("relapse_antigen_escape"))
            .otherwise(pl.lit("relapse_cd19_unknown"))
        )
    else:
        relapse_cause = pl.lit("relapse")
    has_relapse = pl.col("relapse_day").is_not_null()
    has_death = pl.col("death_day").is_not_null()
    if hsct_competing:
        hsct_in_remission = _before("hsct_day", "relapse_day") & (
            ~has_death | (pl.col("hsct_day") <= pl.col("death_day"))
        )
    else:
        hsct_in_remission = pl.lit(False)
    cause = (
        pl.when(hsct_in_remission)
        .then(pl.lit("hsct"))
        .when(has_relapse)
        .then(relapse_cause)
        .when(has_death)
        .then(pl.lit("death"))
        .otherwise(pl.lit(""))
    )
    end = (
        pl.when(hsct_in_remission)
        .then("hsct_day")
        .when(has_relapse)
        .then("relapse_day")
        .otherwise(pl.coalesce("death_day", "last_contact_day"))
    )
    return (
        outcomes.filter(pl.col("response") == RESPONDER)
        .with_columns(origin_day=pl.col("remission_onset_day"), _end=end, cause=cause)
        .with_columns(time_days=_time_from_origin())
        .select(*_keep_columns(outcomes), "origin_day", "time_days", "cause")
    )


def cir_causes(*, hsct_competing: bool = False, by_cd19: bool = False) -> tuple[str, ...]:
    """The causes of a `cir` analysis, relapse cause(s) first."""
    relapse = CIR_RELAPSE_CAUSES[1:] if by_cd19 else CIR_RELAPSE_CAUSES[:1]
    return (*relapse, "death", *(("hsct",) if hsct_competing else ()))


def apply_landmark(frame: pl.DataFrame, landmark_days: int) -> pl.DataFrame:
    """Patients still at risk at `landmark_days` after infusion, with time re-originated there.

    Kept: the endpoint's origin is on or before the landmark, and the patient is event-free
    (for this endpoint) and still followed at the landmark: the event or censoring is after it,
    or a censoring falls exactly on it (time 0 after re-origin). For `rfs`/`cir` the landmark is
    still counted from infusion, so a responder whose remission onset is after the landmark is
    not yet in the population. `origin_day` becomes the landmark.
    """
    _check_landmark(landmark_days)
    end = pl.col("origin_day") + pl.col("time_days")
    had_event = pl.col("event") if "event" in frame.columns else pl.col("cause") != ""
    at_risk = (pl.col("origin_day") <= landmark_days) & (
        (end > landmark_days) | ((end == landmark_days) & ~had_event)
    )
    return frame.filter(at_risk).with_columns(
        time_days=end - landmark_days, origin_day=pl.lit(landmark_days, pl.Int64)
    )


__all__ = [
    "ALL",
    "ENDPOINTS",
    "PENDING",
    "add_group",
    "apply_landmark",
    "check_request",
    "cir_causes",
    "endpoint_frame",
    "group_columns",
]
