"""The upload report a data manager reads: warnings only where the upload changes something,
repeated problems grouped with a count and their first rows, and CSV / XLSX downloads.
"""

from __future__ import annotations

import io

import polars as pl

from monitoring.exports import neutralise_formulas
from monitoring.ingest.changes import Changes
from monitoring.ingest.read import ROW_COLUMN
from monitoring.schemas import COLUMNS, KEYS, Kind

HEADER_ROW = 1
FIRST_ROWS = 5
GROUP_COLUMNS = ["severity", "problem", "column", "count", "rows", "files"]


def untouched_rows(kind: Kind, frame: pl.DataFrame, change: Changes) -> pl.Series:
    """Spreadsheet rows of one parsed file that this upload leaves exactly as stored."""
    keys = list(KEYS[kind])
    if _all_new(frame, change, keys):  # every row new (a first upload): none untouched, no join
        return pl.Series("row", [], pl.Int64)
    return _untouched_by_join(kind, frame, change)


def _untouched_by_join(kind: Kind, frame: pl.DataFrame, change: Changes) -> pl.Series:
    keys = list(KEYS[kind])
    touched = pl.concat([change.new.select(keys), change.changed.select(keys)])
    return (
        frame.select(pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), *keys)
        .join(touched, on=keys, how="anti")["row"]
        .alias("row")
    )


def _all_new(frame: pl.DataFrame, change: Changes, keys: list[str]) -> bool:
    """Every row of `frame` is among the change's new rows, as the join would find: each row
    went to `new` (none changed or unchanged) and no key is null (a null key never joins)."""
    return (
        not change.unchanged
        and not change.changed.height
        and change.new.height == frame.height
        and not any(frame[k].null_count() for k in keys)
    )


def drop_untouched_warnings(
    report: pl.DataFrame, file: str, kind: Kind, rows: pl.Series
) -> pl.DataFrame:
    """Row warnings of `file` about rows the upload does not change are noise on a re-upload:
    the data manager saw them when the row was new. Header warnings and errors stay. (One REDCap
    file feeds both tables, so a warning belongs to this table by its column.)"""
    if not rows.len():
        return report
    columns = [c.name for c in COLUMNS[kind]]
    quiet = (
        (pl.col("severity") == "warning")
        & (pl.col("file") == file)
        & pl.col("column").is_in(columns)
        & (pl.col("row") != HEADER_ROW)
        & pl.col("row").is_in(rows.implode())
    )
    return report.filter(~quiet.fill_null(False))


def problem_kind(problem: pl.Expr) -> pl.Expr:
    """The kind of a problem: its text up to the first colon ('changed since the stored version')."""
    return problem.str.replace(r":.*", "")


def group_report(report: pl.DataFrame, first: int = FIRST_ROWS) -> pl.DataFrame:
    """One line per severity, column and kind of problem: how many, and the first rows."""
    if not report.height:
        return pl.DataFrame(
            schema={
                "severity": pl.String,
                "problem": pl.String,
                "column": pl.String,
                "count": pl.UInt32,
                "rows": pl.String,
                "files": pl.String,
            }
        )
    where = pl.concat_str(
        pl.col("row").cast(pl.String).fill_null("–"),
        pl.when(pl.col("patient_id").is_not_null())
        .then(pl.concat_str(pl.lit(" ("), pl.col("patient_id"), pl.lit(")")))
        .otherwise(pl.lit("")),
    )
    grouped = (
        report.with_columns(problem_kind(pl.col("problem")).alias("__kind"), where.alias("__where"))
        .group_by("severity", "column", "__kind", maintain_order=True)
        .agg(
            pl.col("problem").first().alias("problem"),
            pl.len().alias("count"),
            pl.col("__where").head(first).str.join(", ").alias("rows"),
            pl.col("file").unique(maintain_order=True).str.join(", ").alias("files"),
        )
        .with_columns(
            pl.when(pl.col("count") > first)
            .then(pl.concat_str(pl.col("rows"), pl.lit(" …")))
            .otherwise(pl.col("rows"))
            .alias("rows"),
            # one kind, many texts (changed a → b): show the kind, the rows show where
            pl.when(pl.col("count") > 1)
            .then(pl.col("__kind"))
            .otherwise(pl.col("problem"))
            .alias("problem"),
        )
    )
    order = pl.col("severity").replace_strict({"error": 0, "warning": 1}, default=2)
    return (
        grouped.with_columns(order.alias("__order"))
        .sort(["__order", "count"], descending=[False, True], maintain_order=True)
        .select(GROUP_COLUMNS)
    )


def severity_first(report: pl.DataFrame) -> pl.DataFrame:
    """The report's columns in reading order: severity, where, what, then the source."""
    front = ["severity", "file", "row", "patient_id", "column", "value", "problem"]
    rest = [c for c in report.columns if c not in front]
    return report.select([c for c in front if c in report.columns] + rest)


def report_csv(report: pl.DataFrame) -> str:
    """The whole report in the contract's column order (file, row, patient_id, column, value,
    problem, severity, then the source columns), formula-safe."""
    return neutralise_formulas(report).write_csv()


def report_xlsx(report: pl.DataFrame) -> bytes:
    """The report as an XLSX workbook: every cell a value, none a formula or a link."""
    import xlsxwriter

    buffer = io.BytesIO()
    options = {"strings_to_formulas": False, "strings_to_urls": False, "in_memory": True}
    with xlsxwriter.Workbook(buffer, options) as workbook:
        report.write_excel(workbook, worksheet="report", autofit=True)
    return buffer.getvalue()
