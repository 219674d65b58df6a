"""Per-patient derived facts of CONTRACT.md §2, evaluated as of a date.

`derive_outcomes(patients, visits, as_of)` returns one row per patient infused on or before
`as_of`. Everything after `as_of` is treated as not yet happened: later visits are dropped and
patient dates after it (hsct, new therapy, death, last contact) are set to null.

Everything is computed with whole-column polars expressions (joins, group-bys and shifts over
the visits sorted by patient and date), never a Python loop over visits.

Output columns (one row per patient, sorted by patient_id):

    patient_id, infusion_date, site, sex, age_at_infusion_years, product, prior_hsct,
    prior_blinatumomab, kmt2a_rearranged, baseline_bm_blasts_pct     the patient's attributes
    response                  "responder" | "non_responder" | "pending": without remission
                              onset a patient is a non-responder once day response_window_days
                              has passed, or from their death date on (CONTRACT §2, revision 2)
    remission_onset_date      first CR/CRi visit on day 0..response_window_days
    relapse_date              first visit after onset with disease_status relapse or blasts >=
                              relapse_bm_blasts_pct (5 %)
    relapse_cd19_status       that visit's cd19_status, "unknown" when not recorded (null: no relapse)
    antigen_escape            relapse CD19 negative / dim / partial / lineage_switch (False: no relapse)
    bcell_recovery_date       first of N consecutive B-cell assessments at/above threshold,
                              from bcell_window_start_day on and before hsct_date
    bcell_recovery_confirmed_date   the N-th of those assessments (when recovery became known)
    last_bcell_date           last B-cell assessment of any date (also after hsct_date; §3)
    car_loss_date             first of N consecutive car_copies_per_ug results below threshold,
                              on day >= 0 and before hsct_date
    last_car_date             last CAR copies result of any date (also after hsct_date; §3)
    has_car_result            at least one CAR result of any date
    mrd_day28_positive_date   first bone-marrow MRD-detected result in the first early window
                              (day 21-35), null if none
    mrd_day28_negative_date   first bone-marrow MRD-negative result in that window, null if none
    hsct_date, new_therapy_date, death_date, death_cause      as recorded, null after as_of
    last_contact_date         latest of last_contact_date, last visit, hsct, new therapy, death
                              and infusion date
    <name>_day                days since infusion (Int64) for every date above except infusion

Choices where CONTRACT.md is silent:
- Last contact includes the infusion date: an infused patient is known alive on day 0, so a
  patient without any later record is followed for 0 days rather than having no time at all.
- Loss of CAR persistence counts CAR results from day 0 on (a pre-infusion sample says nothing
  about the infused product); B-cell recovery counts from `bcell_window_start_day`. The last
  B-cell assessment and the last CAR result (which only censor, CONTRACT §3) are of any date, as
  the contract says; one before day 0 censors at time 0.
- "Before any hsct_date" is strict: a sample drawn on the transplant day does not count.
- Every threshold is compared with the relative tolerance of `monitoring.thresholds`, so binary
  floating point never decides one (0.0003 / 3 is a flow MRD of 0.0001: detected).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from monitoring.config import Config, get_config
from monitoring.key_order import in_key_order
from monitoring.schemas import ANTIGEN_ESCAPE, MRD_COLUMNS, Kind, polars_schema
from monitoring.thresholds import at_least, below

RESPONSE_STATUSES = ("CR", "CRi")

RESPONDER = "responder"
NON_RESPONDER = "non_responder"
PENDING = "pending"

PATIENT_ATTRIBUTES: tuple[str, ...] = (
    "site",
    "sex",
    "age_at_infusion_years",
    "product",
    "prior_hsct",
    "prior_blinatumomab",
    "kmt2a_rearranged",
    "baseline_bm_blasts_pct",
)
# patient dates that are outcomes: hidden when after the evaluation date
FOLLOWUP_DATES: tuple[str, ...] = (
    "hsct_date",
    "new_therapy_date",
    "death_date",
    "last_contact_date",
)

DATE_COLUMNS: tuple[str, ...] = (
    "remission_onset_date",
    "relapse_date",
    "bcell_recovery_date",
    "bcell_recovery_confirmed_date",
    "last_bcell_date",
    "car_loss_date",
    "last_car_date",
    "mrd_day28_positive_date",
    "mrd_day28_negative_date",
    "hsct_date",
    "new_therapy_date",
    "death_date",
    "last_contact_date",
)

_PID = "patient_id"


def day_column(date_column: str) -> str:
    """`relapse_date` → `relapse_day`."""
    return date_column.removesuffix("_date") + "_day"


def conform(frame: pl.DataFrame | pl.LazyFrame, kind: Kind) -> pl.LazyFrame:
    """The canonical columns of `kind` in canonical dtypes; missing optional columns as nulls.

    Extra columns are dropped, so callers may pass frames straight from the store.
    """
    lazy = frame.lazy()
    present = set(lazy.collect_schema().names())
    return lazy.select(
        [
            (pl.col(name) if name in present else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in polars_schema(kind).items()
        ]
    )


def _days_since(column: str | pl.Expr, origin: str = "infusion_date") -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return (expr - pl.col(origin)).dt.total_days()


def flow_detected_expr(value: pl.Expr, config: Config | None = None) -> pl.Expr:
    """A flow MRD fraction at or above the detection threshold (null when not measured)."""
    cfg = config or get_config()
    return at_least(value, cfg.mrd_flow_detected)


def mrd_detected_expr(config: Config | None = None) -> pl.Expr:
    """MRD detected at a visit: flow ≥ threshold, or NGS > 0, or PCR > 0 (never null)."""
    return (
        flow_detected_expr(pl.col("mrd_flow_fraction"), config)
        | (pl.col("mrd_ngs_fraction") > 0)
        | (pl.col("mrd_pcr_fraction") > 0)
    ).fill_null(False)


def mrd_negative_expr(config: Config | None = None) -> pl.Expr:
    """MRD negative at a visit: at least one MRD value present and none detected."""
    any_present = pl.any_horizontal([pl.col(c).is_not_null() for c in MRD_COLUMNS])
    return any_present & ~mrd_detected_expr(config)


def bcell_recovered_expr(config: Config | None = None) -> pl.Expr:
    """A single B-cell assessment at or above a recovery threshold (never null)."""
    cfg = config or get_config()
    return (
        at_least(pl.col("bcell_pct_lymphocytes"), cfg.bcell_pct_recovery)
        | at_least(pl.col("bcell_per_ul"), cfg.bcell_per_ul_recovery)
    ).fill_null(False)


def bcell_assessed_expr() -> pl.Expr:
    """The visit has a peripheral B-cell assessment."""
    return pl.col("bcell_pct_lymphocytes").is_not_null() | pl.col("bcell_per_ul").is_not_null()


def car_low_expr(config: Config | None = None) -> pl.Expr:
    """A CAR copies result below the persistence threshold (null when not measured)."""
    cfg = config or get_config()
    return below(pl.col("car_copies_per_ug"), cfg.car_loss_copies_per_ug)


def _visits_with_day_lazy(patients: pl.LazyFrame, visits: pl.LazyFrame) -> pl.LazyFrame:
    return visits.join(patients.select(_PID, "infusion_date"), on=_PID, how="inner").with_columns(
        day=_days_since("visit_date")
    )


def visits_with_day(
    patients: pl.DataFrame | pl.LazyFrame, visits: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """`visits` (all its columns kept) plus `infusion_date` and `day` (days since infusion).

    Visits of patients missing from `patients` are dropped. Sorted by patient and visit date.
    """
    return (
        _visits_with_day_lazy(conform(patients, "patients"), visits.lazy())
        .sort(_PID, "visit_date")
        .collect()
    )


def _first_of_run(flag: pl.Expr, n: int) -> pl.Expr:
    """True on a row that starts `n` consecutive rows of the same patient with `flag` true.

    The frame must be sorted by patient and date; rows of other patients break the run.
    """
    run = flag.fill_null(False)
    for k in range(1, n):
        run = (
            run
            & (pl.col(_PID).shift(-k) == pl.col(_PID)).fill_null(False)
            & flag.shift(-k).fill_null(False)
        )
    return run


def _confirmed_run(
    series_visits: pl.LazyFrame, flag: pl.Expr, n: int, name: str, confirmed: str | None
) -> pl.LazyFrame:
    """Per patient: date of the first run of `n` consecutive flagged rows (and its n-th date).
    `series_visits` are sorted by patient and date (`evaluation_rows` sorts them)."""
    if n < 1:
        raise ValueError(f"confirmations must be at least 1, got {n}")
    marked = series_visits.with_columns(
        _run=_first_of_run(flag, n),
        _confirmed=pl.col("visit_date").shift(-(n - 1)),
    )
    aggs = [pl.col("visit_date").filter(pl.col("_run")).min().alias(name)]
    if confirmed is not None:
        aggs.append(pl.col("_confirmed").filter(pl.col("_run")).min().alias(confirmed))
    return marked.group_by(_PID).agg(aggs)


def _before_hsct() -> pl.Expr:
    return pl.col("hsct_date").is_null() | (pl.col("visit_date") < pl.col("hsct_date"))


def _patients_as_of(patients: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    hidden = {name: pl.col(name) > as_of for name in FOLLOWUP_DATES}
    return patients.filter(pl.col("infusion_date") <= as_of).with_columns(
        [
            pl.when(hide).then(None).otherwise(pl.col(name)).alias(name)
            for name, hide in hidden.items()
        ]
        + [
            pl.when(hidden["death_date"])
            .then(None)
            .otherwise(pl.col("death_cause"))
            .alias("death_cause")
        ]
    )


@dataclass(frozen=True)
class EvaluationRows:
    """What `derive_outcomes` and the alert rules read, prepared once for both."""

    patients: pl.DataFrame  # the patients infused by as_of, later follow-up dates hidden
    # their visits by as_of, sorted by patient and date, with infusion_date, hsct_date (the
    # patient's, as of as_of) and day
    visits: pl.DataFrame


def with_patient_columns(
    visits: pl.DataFrame, patients: pl.DataFrame, columns: list[str]
) -> pl.DataFrame:
    """`visits` (sorted by patient) with `columns` of their row of `patients` (one per patient),
    in the visits' order; visits of a patient `patients` does not hold are dropped. The inner
    join of the two on patient_id with the visits' order kept, without gathering every visit
    column: the patients of the visits' runs are joined, and the columns spread over the runs."""
    pid = visits.get_column(_PID)
    starts = pid.ne_missing(pid.shift(1))
    run = starts.cast(pl.UInt32).cum_sum() - 1
    found = (
        visits.filter(starts)
        .select(_PID)
        .join(
            patients.select(_PID, *columns, _found=pl.lit(True)),
            on=_PID,
            how="left",
            maintain_order="left",
        )
    )
    if found.height != starts.sum():  # a patient listed twice: the join it stands for
        return visits.join(
            patients.select(_PID, *columns), on=_PID, how="inner", maintain_order="left"
        )
    spread = visits.with_columns([found.get_column(c).gather(run) for c in columns])
    present = found.get_column("_found")
    if present.null_count() == 0:
        return spread
    return spread.filter(present.is_not_null().gather(run))


def evaluation_rows(
    patients: pl.DataFrame | pl.LazyFrame, visits: pl.DataFrame | pl.LazyFrame, as_of: date
) -> EvaluationRows:
    """The patients infused by `as_of` (later follow-up dates hidden) and their visits by
    `as_of`, sorted by patient and date, with infusion_date, hsct_date and day."""
    p = _patients_as_of(conform(patients, "patients"), as_of).collect()
    v = (
        conform(visits, "visits")
        # a visit without a patient belongs to no one (the inner join on the patient dropped it)
        .filter((pl.col("visit_date") <= as_of) & pl.col(_PID).is_not_null())
        .collect()
        # one chunk: the columns spread over it are one chunk each, and chunks that do not line
        # up are copied into line by every expression that mixes them
        .rechunk()
    )
    if not in_key_order(v, [_PID, "visit_date"]):  # the store hands visits over in key order
        v = v.sort(_PID, "visit_date")
    v = with_patient_columns(v, p, ["infusion_date", "hsct_date"])
    # flagged sorted: a group-by on the patient then takes each patient's run as it is
    return EvaluationRows(
        p, v.with_columns(pl.col(_PID).set_sorted(), day=_days_since("visit_date"))
    )


def derive_outcomes(
    patients: pl.DataFrame | pl.LazyFrame,
    visits: pl.DataFrame | pl.LazyFrame,
    as_of: date | None = None,
    config: Config | None = None,
) -> pl.DataFrame:
    """One row per patient infused on or before `as_of` (default today); see module docstring."""
    as_of = as_of or date.today()
    return outcomes_of(evaluation_rows(patients, visits, as_of), as_of, config)


def outcomes_of(rows: EvaluationRows, as_of: date, config: Config | None = None) -> pl.DataFrame:
    """`derive_outcomes` of prepared rows (`evaluation_rows` as of `as_of`)."""
    cfg = config or get_config()
    p = rows.patients.lazy()
    v = rows.visits.lazy()  # sorted by patient and date

    # the per-patient dates that are one filtered minimum or maximum over the visits: one
    # group-by (a pass over the visits and one join) instead of one each
    first_window = cfg.mrd_early_windows[0]
    bm_early = (pl.col("mrd_sample") == "BM") & pl.col("day").is_between(*first_window)
    car_any = pl.col("car_copies_per_ug").is_not_null()
    simple = v.group_by(_PID).agg(
        remission_onset_date=pl.col("visit_date")
        .filter(
            pl.col("day").is_between(0, cfg.response_window_days)
            & pl.col("disease_status").is_in(RESPONSE_STATUSES)
        )
        .min(),
        last_bcell_date=pl.col("visit_date").filter(bcell_assessed_expr()).max(),
        last_car_date=pl.col("visit_date").filter(car_any).max(),
        mrd_day28_positive_date=pl.col("visit_date")
        .filter(bm_early & mrd_detected_expr(cfg))
        .min(),
        mrd_day28_negative_date=pl.col("visit_date")
        .filter(bm_early & mrd_negative_expr(cfg))
        .min(),
        last_visit_date=pl.col("visit_date").max(),
    )
    onset = simple.select(_PID, "remission_onset_date").filter(
        pl.col("remission_onset_date").is_not_null()
    )

    relapse = (
        v.join(onset, on=_PID, how="inner")
        .filter(
            (pl.col("visit_date") > pl.col("remission_onset_date"))
            & (
                (pl.col("disease_status") == "relapse")
                | at_least(pl.col("bm_blasts_pct"), cfg.relapse_bm_blasts_pct)
            ).fill_null(False)
        )
        .group_by(_PID)
        .agg(
            relapse_date=pl.col("visit_date").min(),
            relapse_cd19_status=pl.col("cd19_status").sort_by("visit_date").first(),
        )
    )

    # censoring (CONTRACT §3): the last B-cell assessment and CAR result of any date are in
    # `simple`
    recovery = _confirmed_run(
        v.filter(
            bcell_assessed_expr() & (pl.col("day") >= cfg.bcell_window_start_day) & _before_hsct()
        ),
        bcell_recovered_expr(cfg),
        cfg.recovery_confirmations,
        "bcell_recovery_date",
        "bcell_recovery_confirmed_date",
    )

    car_loss = _confirmed_run(
        v.filter(car_any & (pl.col("day") >= 0) & _before_hsct()),
        car_low_expr(cfg),
        cfg.car_loss_confirmations,
        "car_loss_date",
        None,
    )

    out = p
    for facts in (simple, relapse, recovery, car_loss):
        out = out.join(facts, on=_PID, how="left")

    day_past_window = pl.lit(as_of) - pl.col("infusion_date") > pl.duration(
        days=cfg.response_window_days
    )
    out = out.with_columns(
        response=pl.when(pl.col("remission_onset_date").is_not_null())
        .then(pl.lit(RESPONDER))
        # a death by as_of without a response (on or before day 90, or the window has passed)
        .when(day_past_window | pl.col("death_date").is_not_null())
        .then(pl.lit(NON_RESPONDER))
        .otherwise(pl.lit(PENDING)),
        relapse_cd19_status=pl.when(pl.col("relapse_date").is_not_null()).then(
            pl.col("relapse_cd19_status").fill_null("unknown")
        ),
        antigen_escape=pl.col("relapse_cd19_status").is_in(ANTIGEN_ESCAPE).fill_null(False),
        has_car_result=pl.col("last_car_date").is_not_null(),
        last_contact_date=pl.max_horizontal(
            "last_contact_date",
            "last_visit_date",
            "hsct_date",
            "new_therapy_date",
            "death_date",
            "infusion_date",
        ),
    )
    out = out.with_columns([_days_since(c).alias(day_column(c)) for c in DATE_COLUMNS])
    columns = [
        _PID,
        "infusion_date",
        *PATIENT_ATTRIBUTES,
        "response",
        "remission_onset_date",
        "relapse_date",
        "relapse_cd19_status",
        "antigen_escape",
        "bcell_recovery_date",
        "bcell_recovery_confirmed_date",
        "last_bcell_date",
        "car_loss_date",
        "last_car_date",
        "has_car_result",
        "mrd_day28_positive_date",
        "mrd_day28_negative_date",
        "hsct_date",
        "new_therapy_date",
        "death_date",
        "death_cause",
        "last_contact_date",
        *(day_column(c) for c in DATE_COLUMNS),
    ]
    return out.select(columns).sort(_PID).collect()
