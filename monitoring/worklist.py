"""The follow-up coordinator's morning list: assessments due as of a date D (CONTRACT §4.1).

    patient_id
    item        "mrd_due"       an MRD window open on D without a bone-marrow MRD result yet
                "mrd_upcoming"  a window opening within the next `within` days after D
                "contact_due"   last contact more than 365 and at most 425 days before D
    window      "21-35" (days since infusion); null for contact_due
    opens_on    the window's first day (null for contact_due)
    due_by      the window's last day, or last contact + 425 days
    days_left   due_by - D

MRD items are for patients infused on or before D who are not known dead, not non-responders,
have no relapse and no hsct_date or new_therapy_date on or before D (patients whose response
is still pending are included: the day-28 marrow is their response assessment). Contact items
are for every infused patient not known dead. Sorted by due_by, then patient, item and window.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from monitoring.config import DEFAULT_WITHIN_DAYS, Config, get_config
from monitoring.outcomes import NON_RESPONDER, derive_outcomes
from monitoring.schemas import MRD_COLUMNS

ITEMS: tuple[str, ...] = ("mrd_due", "mrd_upcoming", "contact_due")
CONTACT_DUE_AFTER_DAYS = 365  # contact is due from here; followup_overdue fires after 425
WORKLIST_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "item": pl.String(),
    "window": pl.String(),
    "opens_on": pl.Date(),
    "due_by": pl.Date(),
    "days_left": pl.Int64(),
}


def _windows(cfg: Config) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "first_day": [lo for lo, _ in cfg.mrd_assessment_windows],
            "last_day": [hi for _, hi in cfg.mrd_assessment_windows],
        },
        schema={"first_day": pl.Int64, "last_day": pl.Int64},
    )


def worklist(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    as_of: date | None = None,
    within_days: int = DEFAULT_WITHIN_DAYS,
    config: Config | None = None,
    outcomes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The assessments due as of `as_of` (default today); columns `WORKLIST_SCHEMA`."""
    cfg = config or get_config()
    day = as_of or date.today()
    if within_days < 0:
        raise ValueError("within_days must not be negative")
    facts = outcomes if outcomes is not None else derive_outcomes(patients, visits, day, cfg)
    alive = facts.filter(
        (pl.col("infusion_date") <= day)
        & (pl.col("death_date").is_null() | (pl.col("death_date") > day))
    )

    def not_on_or_before(column: str) -> pl.Expr:
        return pl.col(column).is_null() | (pl.col(column) > day)

    eligible = alive.filter(
        (pl.col("response") != NON_RESPONDER)
        & not_on_or_before("relapse_date")
        & not_on_or_before("hsct_date")
        & not_on_or_before("new_therapy_date")
    )
    windows = (
        eligible.select("patient_id", "infusion_date")
        .join(_windows(cfg), how="cross")
        .with_columns(
            opens_on=pl.col("infusion_date") + pl.duration(days=pl.col("first_day")),
            due_by=pl.col("infusion_date") + pl.duration(days=pl.col("last_day")),
            window=pl.concat_str(
                pl.col("first_day").cast(pl.String), pl.lit("-"), pl.col("last_day").cast(pl.String)
            ),
        )
    )
    bm_results = (
        visits.filter(
            (pl.col("visit_date") <= day)
            & (pl.col("mrd_sample") == "BM")
            & pl.any_horizontal([pl.col(c).is_not_null() for c in MRD_COLUMNS])
        )
        .join(eligible.select("patient_id", "infusion_date"), on="patient_id", how="inner")
        .with_columns(day=(pl.col("visit_date") - pl.col("infusion_date")).dt.total_days())
        .select("patient_id", "day")
        .join(_windows(cfg), how="cross")
        .filter(pl.col("day").is_between(pl.col("first_day"), pl.col("last_day")))
        .select("patient_id", "first_day")
        .unique()
    )
    due = (
        windows.filter((pl.col("opens_on") <= day) & (day <= pl.col("due_by")))
        .join(bm_results, on=["patient_id", "first_day"], how="anti")
        .with_columns(item=pl.lit("mrd_due"))
    )
    upcoming = windows.filter(
        (pl.col("opens_on") > day) & (pl.col("opens_on") <= day + pl.duration(days=within_days))
    ).with_columns(item=pl.lit("mrd_upcoming"))
    since_contact = (pl.lit(day) - pl.col("last_contact_date")).dt.total_days()
    contact = alive.filter(
        (since_contact > CONTACT_DUE_AFTER_DAYS) & (since_contact <= cfg.followup_overdue_days)
    ).select(
        "patient_id",
        item=pl.lit("contact_due"),
        window=pl.lit(None, pl.String),
        opens_on=pl.lit(None, pl.Date),
        due_by=pl.col("last_contact_date") + pl.duration(days=cfg.followup_overdue_days),
    )
    columns = ["patient_id", "item", "window", "opens_on", "due_by"]
    rows = pl.concat(
        [due.select(columns), upcoming.select(columns), contact.select(columns)],
        how="vertical_relaxed",
    )
    return (
        rows.with_columns(days_left=(pl.col("due_by") - pl.lit(day)).dt.total_days())
        .cast(WORKLIST_SCHEMA)  # type: ignore[arg-type]
        .sort("due_by", "patient_id", "item", "opens_on", nulls_last=True)
        .select(list(WORKLIST_SCHEMA))
    )


def _due(days: int) -> pl.Expr:
    """The overview's "due this week" rule: a row to act on (not a window that has yet to
    open) due within `days` days."""
    return (pl.col("item") != "mrd_upcoming") & (pl.col("days_left") <= days)


def due_within(frame: pl.DataFrame, days: int) -> int:
    """How many worklist rows fall due within `days` days, windows not yet open aside (the
    overview's "due this week")."""
    return frame.filter(_due(days)).height


def due_per_patient(frame: pl.DataFrame, days: int) -> pl.DataFrame:
    """(patient_id, n): each patient's `due_within` rows, so that any group of patients' count
    is a sum (`due_among`) instead of a pass over the whole worklist."""
    return frame.filter(_due(days)).group_by("patient_id").agg(n=pl.len())


def due_among(per_patient: pl.DataFrame, patient_ids: pl.Series) -> int:
    """`due_within` of the rows of `patient_ids`, from `due_per_patient`."""
    picked = per_patient.filter(pl.col("patient_id").is_in(patient_ids.implode()))
    return int(picked["n"].sum())


__all__ = [
    "DEFAULT_WITHIN_DAYS",
    "ITEMS",
    "WORKLIST_SCHEMA",
    "due_among",
    "due_per_patient",
    "due_within",
    "worklist",
]
