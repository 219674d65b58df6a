"""Parse text cells into the canonical typed columns, strictly, with whole-column expressions.

Every cell that does not parse becomes null in the typed frame and a problem row
(`row, column, value, problem`) in the returned frame, with a hint where the cause is likely known.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from monitoring.ingest.read import ROW_COLUMN
from monitoring.schemas import ColumnSpec

DateFormat = Literal["ISO", "DMY", "MDY"]

TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
_NEGATIVE_WORDS = ("neg", "negative", "not detected", "undetectable", "nd", "<lloq", "<lod")

PROBLEM_SCHEMA: dict[str, pl.DataType] = {
    ROW_COLUMN: pl.UInt32(),
    "column": pl.String(),
    "value": pl.String(),
    "problem": pl.String(),
}


def _date_formats(date_format: DateFormat) -> list[str]:
    if date_format == "ISO":
        return ["%Y-%m-%d"]
    order = ("%d", "%m") if date_format == "DMY" else ("%m", "%d")
    return [f"{order[0]}{sep}{order[1]}{sep}%Y" for sep in ("/", ".", "-")]


def _parse_date(column: str, date_format: DateFormat) -> pl.Expr:
    text = pl.col(column)
    # tolerate a trailing midnight time that spreadsheets add ("2024-01-05 00:00:00")
    text = text.str.replace(r"[ T]00:00(:00(\.0+)?)?$", "")
    parsed = [text.str.strptime(pl.Date, fmt, strict=False) for fmt in _date_formats(date_format)]
    return pl.coalesce(parsed) if len(parsed) > 1 else parsed[0]


def _date_problem(column: str, date_format: DateFormat) -> pl.Expr:
    text = pl.col(column)
    swapped_iso = text.str.strptime(pl.Date, "%Y-%d-%m", strict=False).is_not_null()
    looks_dmy = text.str.contains(r"^\d{1,2}[./-]\d{1,2}[./-]\d{4}$")
    expected = {"ISO": "YYYY-MM-DD", "DMY": "DD/MM/YYYY", "MDY": "MM/DD/YYYY"}[date_format]
    swapped = "MDY" if date_format == "DMY" else "DMY"
    return (
        pl.when(pl.lit(date_format == "ISO") & swapped_iso)
        .then(
            pl.lit(
                f"not a valid date in {expected}: are day and month swapped? "
                "The month must come second (2024-03-15)"
            )
        )
        .when(pl.lit(date_format == "ISO") & looks_dmy)
        .then(
            pl.lit(
                f"not a date in {expected}; the file seems to use day/month/year: "
                "upload it with --date-format DMY (or MDY)"
            )
        )
        .when(pl.lit(date_format != "ISO") & looks_dmy)
        .then(pl.lit(f"not a valid date in {expected}: are day and month swapped? Try {swapped}"))
        .otherwise(pl.lit(f"not a date in {expected}"))
    )


def _parse_number(column: str, decimal_comma: bool) -> pl.Expr:
    text = pl.col(column)
    if decimal_comma:
        text = (
            pl.when(text.str.contains(r"^[+-]?\d+,\d+$"))
            .then(text.str.replace(",", ".", literal=True))
            .otherwise(text)
        )
    numeric = text.str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    value = text.cast(pl.Float64, strict=False)
    # "1e999" overflows to infinity: not a measurement
    return pl.when(numeric & value.is_finite()).then(value).otherwise(None)


def _number_problem(column: str) -> pl.Expr:
    text = pl.col(column)
    lowered = text.str.to_lowercase()
    is_fraction = column.endswith("_fraction")
    percent_hint = (
        "remove the % sign; this column takes a fraction of nucleated cells (0.01 % = 0.0001)"
        if is_fraction
        else "remove the % sign; the column is already in percent"
    )
    return (
        pl.when(lowered.is_in(list(_NEGATIVE_WORDS)) | lowered.str.starts_with("<"))
        .then(
            pl.lit(
                "not a number: record 'not detected' as 0 and keep the detection limit in the comment"
            )
        )
        .when(text.str.ends_with("%"))
        .then(pl.lit(f"not a number: {percent_hint}"))
        .when(text.str.contains(r"^[+-]?\d+,\d+$"))
        .then(pl.lit("not a number: use a decimal point (0.5), not a comma"))
        .otherwise(pl.lit("not a number"))
    )


def _parse_bool(column: str) -> pl.Expr:
    lowered = pl.col(column).str.to_lowercase()
    return (
        pl.when(lowered.is_in(list(TRUE_WORDS)))
        .then(True)
        .when(lowered.is_in(list(FALSE_WORDS)))
        .then(False)
        .otherwise(None)
    )


def _parse_code(spec: ColumnSpec) -> pl.Expr:
    lowered = pl.col(spec.name).str.to_lowercase()
    mapping = {code.lower(): code for code in spec.codes}
    return lowered.replace_strict(mapping, default=None, return_dtype=pl.String)


def parse_columns(
    frame: pl.DataFrame,
    specs: tuple[ColumnSpec, ...],
    *,
    date_format: DateFormat = "ISO",
    native_dates: frozenset[str] = frozenset(),
    decimal_comma: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (typed frame with the row column and every spec column, problems frame)."""
    typed: list[pl.Expr] = [pl.col(ROW_COLUMN)]
    problems: list[pl.DataFrame] = []
    checks: dict[str, pl.Expr] = {}
    for spec in specs:
        name = spec.name
        if name not in frame.columns:
            typed.append(pl.lit(None, dtype=spec.dtype).alias(name))
            continue
        if spec.type == "text":
            typed.append(pl.col(name))
            continue
        if spec.type == "number":
            parsed = _parse_number(name, decimal_comma)
            problem = _number_problem(name)
        elif spec.type == "date":
            parsed = _parse_date(name, "ISO" if name in native_dates else date_format)
            problem = _date_problem(name, "ISO" if name in native_dates else date_format)
        elif spec.type == "bool":
            parsed = _parse_bool(name)
            problem = pl.lit("not a yes/no value: use true/false, yes/no or 1/0")
        else:
            parsed = _parse_code(spec)
            problem = pl.lit(f"unknown code; allowed: {', '.join(spec.codes)}")
        typed.append(parsed.alias(name))
        checks[name] = problem
    typed_frame = frame.select(typed)
    # one vectorised pass finds the cells that had text but did not parse
    failed = pl.DataFrame(
        {name: frame[name].is_not_null() & typed_frame[name].is_null() for name in checks}
    )
    counts = failed.sum().row(0, named=True) if checks else {}
    for name, problem in checks.items():
        if counts[name]:
            problems.append(
                frame.filter(failed[name]).select(
                    pl.col(ROW_COLUMN),
                    pl.lit(name).alias("column"),
                    pl.col(name).alias("value"),
                    problem.alias("problem"),
                )
            )
    problem_frame = (pl.concat(problems) if problems else pl.DataFrame(schema=PROBLEM_SCHEMA)).cast(
        pl.Schema(PROBLEM_SCHEMA)
    )
    return typed_frame, problem_frame
