"""REDCap flat exports (raw or label): one row per record, event and repeat instance → the
canonical patients and visits tables.

- The record id is the patient_id.
- A patient field is taken from whichever rows of the record fill it; two rows of one record
  with different values are an error that names both rows.
- Every row with a visit date is a visit (any event, any repeat instance); a row with visit
  values but no visit date is an error (it cannot be placed).
- Checkbox groups and the data access group are mapped like any column (`mapping.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from monitoring.ingest.profile import Profile
from monitoring.ingest.read import ROW_COLUMN
from monitoring.ingest.validate import REPORT_COLUMNS, empty_report


@dataclass(frozen=True)
class RecordSplit:
    patients: pl.DataFrame  # row column (the record's first row) + mapped patient columns, text
    visits: pl.DataFrame  # row column + mapped visit columns, text
    problems: pl.DataFrame  # report schema (canonical columns; sources added by `annotate`)
    patient_cells: pl.DataFrame  # patient_id, column, row: where each patient value was filled


def _report(frame: pl.DataFrame, file: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(file).alias("file"), pl.lit("error").alias("severity")).select(
        REPORT_COLUMNS
    )


def _patient_column(
    rows: pl.DataFrame, column: str, file: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(patient_id + first filled value, patient_id/column/row cells, disagreement problems)."""
    filled = rows.filter(pl.col(column).is_not_null()).select(
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), "patient_id", column
    )
    first = filled.sort("row").unique("patient_id", keep="first", maintain_order=True)
    values = first.select("patient_id", column)
    cells = first.select("patient_id", pl.lit(column).alias("column"), "row")
    clash = (
        filled.join(first.rename({column: "__first", "row": "__first_row"}), on="patient_id")
        .filter(pl.col(column) != pl.col("__first"))
        .select(
            "row",
            "patient_id",
            pl.lit(column).alias("column"),
            pl.col(column).alias("value"),
            pl.concat_str(
                pl.lit("rows "),
                pl.col("__first_row").cast(pl.String),
                pl.lit(" and "),
                pl.col("row").cast(pl.String),
                pl.lit(" of record "),
                pl.col("patient_id"),
                pl.lit(f" disagree on {column}: '"),
                pl.col("__first"),
                pl.lit("' (row "),
                pl.col("__first_row").cast(pl.String),
                pl.lit(") and '"),
                pl.col(column),
                pl.lit("' (row "),
                pl.col("row").cast(pl.String),
                pl.lit("); correct one of them in REDCap"),
            ).alias("problem"),
        )
    )
    return values, cells, _report(clash, file)


def split_records(frame: pl.DataFrame, profile: Profile, file: str) -> RecordSplit:
    """Split mapped REDCap rows (row column + canonical text columns) into the two tables."""
    patient_columns = [f.canonical for f in profile.fields["patients"]]
    visit_columns = [f.canonical for f in profile.fields["visits"]]
    problems: list[pl.DataFrame] = []
    no_id = frame.filter(pl.col("patient_id").is_null())
    if no_id.height:
        problems.append(
            _report(
                no_id.select(
                    pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
                    pl.lit(None, pl.String).alias("patient_id"),
                    pl.lit("patient_id").alias("column"),
                    pl.lit(None, pl.String).alias("value"),
                    pl.lit("the record id is empty: this row belongs to no record").alias(
                        "problem"
                    ),
                ),
                file,
            )
        )
    rows = frame.filter(pl.col("patient_id").is_not_null())
    records = rows.group_by("patient_id", maintain_order=True).agg(
        pl.col(ROW_COLUMN).min().alias(ROW_COLUMN)
    )
    cells: list[pl.DataFrame] = []
    patients = records
    for column in patient_columns:
        if column == "patient_id":
            continue
        values, found, clash = _patient_column(rows, column, file)
        patients = patients.join(values, on="patient_id", how="left")
        cells.append(found)
        problems.append(clash)
    patients = patients.select(ROW_COLUMN, *patient_columns).sort(ROW_COLUMN)
    visit_values = [c for c in visit_columns if c not in ("patient_id", "visit_date")]
    visits = rows.filter(pl.col("visit_date").is_not_null()).select(ROW_COLUMN, *visit_columns)
    stray = rows.filter(
        pl.col("visit_date").is_null()
        & pl.any_horizontal([pl.col(c).is_not_null() for c in visit_values] or [pl.lit(False)])
    )
    if stray.height:
        filled = pl.concat_str(
            [pl.when(pl.col(c).is_not_null()).then(pl.lit(c)) for c in visit_values],
            separator=", ",
            ignore_nulls=True,
        )
        problems.append(
            _report(
                stray.select(
                    pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
                    "patient_id",
                    pl.lit("visit_date").alias("column"),
                    pl.lit(None, pl.String).alias("value"),
                    pl.concat_str(
                        pl.lit("visit values recorded ("),
                        filled,
                        pl.lit(") but no visit date: add the date or clear the values"),
                    ).alias("problem"),
                ),
                file,
            )
        )
    cell_frame = (
        pl.concat(cells)
        if cells
        else pl.DataFrame(schema={"patient_id": pl.String, "column": pl.String, "row": pl.Int64})
    )
    return RecordSplit(
        patients,
        visits,
        pl.concat(problems) if problems else empty_report(),
        cell_frame,
    )
