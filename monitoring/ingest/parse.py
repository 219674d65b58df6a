"""Parse text cells into the canonical typed columns, strictly, with whole-column expressions.

Every cell that does not parse becomes null in the typed frame and a problem row
(`row, column, value, problem`) in the returned frame, with a hint where the cause is likely known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import polars as pl

from monitoring.ingest.parsers import ROW_COLUMN
from monitoring.schemas import ColumnSpec

DateFormat = Literal["ISO", "DMY", "MDY"]

TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
# a number as the contract writes one: optional sign, decimal point, exponent
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
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


def _parse_date(column: str, date_format: DateFormat, *, short: bool = False) -> pl.Expr:
    """`short`: no cell is longer than SHORT_DATE bytes, so none holds a date and a time."""
    text = pl.col(column)
    if not short:
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
    """The cell as a float, or null; not yet without infinities (`_only_finite`)."""
    text = pl.col(column)
    if decimal_comma:
        text = (
            pl.when(text.str.contains(r"^[+-]?\d+,\d+$"))
            .then(text.str.replace(",", ".", literal=True))
            .otherwise(text)
        )
    # Every text the cast reads as a finite number matches NUMBER_PATTERN: it refuses spaces,
    # thousands separators, hex and other scripts' digits, and what else it reads (inf,
    # infinity, nan; "1e999", which overflows) is not finite, so not a measurement and made null
    # by `_only_finite`. So no regex over every cell (tests/test_parse_numbers.py holds the cast
    # to the pattern on random and edge-case text).
    return text.cast(pl.Float64, strict=False)


def _only_finite(typed: pl.DataFrame, numbers: list[str]) -> pl.DataFrame:
    """Infinite and NaN values made null; only the columns that hold one are rewritten (one
    look at the floats is cheaper than a conditional copy of every number column)."""
    if not numbers or not typed.height:
        return typed
    looks = typed.select((pl.col(n).is_finite() | pl.col(n).is_null()).all() for n in numbers)
    odd = [name for name, finite in zip(numbers, looks.row(0), strict=True) if not finite]
    return typed.with_columns(pl.when(pl.col(n).is_finite()).then(pl.col(n)).alias(n) for n in odd)


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


def _parse_bool(column: str, *, plain: bool = False) -> pl.Expr:
    """`plain`: every cell is null, "true" or "false", so equality with "true" is the value."""
    if plain:
        return pl.col(column) == "true"
    lowered = pl.col(column).str.to_lowercase()
    return (
        pl.when(lowered.is_in(list(TRUE_WORDS)))
        .then(True)
        .when(lowered.is_in(list(FALSE_WORDS)))
        .then(False)
        .otherwise(None)
    )


def _parse_code(spec: ColumnSpec, *, exact: bool = False) -> pl.Expr:
    """`exact`: every cell is null or one of the codes as written, so the cell is its code."""
    if exact:
        return pl.col(spec.name)
    lowered = pl.col(spec.name).str.to_lowercase()
    mapping = {code.lower(): code for code in spec.codes}
    return lowered.replace_strict(mapping, default=None, return_dtype=pl.String)


# the longest date without a time ("2024-01-05", "05/01/2024"): a cell no longer than this
# cannot hold a date followed by a midnight time (" 00:00" alone is 6 bytes)
SHORT_DATE = 10


def _fast_columns(frame: pl.DataFrame, specs: tuple[ColumnSpec, ...]) -> set[str]:
    """The columns whose cells one cheap look proves already typed as the general parse would
    type them: dates no longer than SHORT_DATE, booleans written true/false, codes written
    exactly as the contract does (a file written by a program). Same result, no case folding,
    word lists or regex over every cell (`tests/test_parse_fast_paths.py`)."""
    looks: list[pl.Expr] = []
    for spec in specs:
        if spec.name not in frame.columns:
            continue
        cell = pl.col(spec.name)
        if spec.type == "date":
            look = cell.str.len_bytes().max().fill_null(0) <= SHORT_DATE
        elif spec.type == "bool":
            look = (cell.is_null() | (cell == "true") | (cell == "false")).all()
        elif spec.type == "code" and len({c.lower() for c in spec.codes}) == len(spec.codes):
            look = (cell.is_null() | cell.is_in(list(spec.codes))).all()
        else:
            continue
        looks.append(look.alias(spec.name))
    if not looks:
        return set()
    return {name for name, fast in frame.select(looks).row(0, named=True).items() if fast}


def parse_columns(
    frame: pl.DataFrame,
    specs: tuple[ColumnSpec, ...],
    *,
    date_format: DateFormat = "ISO",
    native_dates: frozenset[str] = frozenset(),
    decimal_comma: bool = False,
    floats: Mapping[str, pl.Series] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (typed frame with the row column and every spec column, problems frame).

    `floats`: number columns already cast from these very cells, row for row, where every
    cell read as a float (`parsers.read_cells`); `_parse_number` would give the same floats,
    with or without a decimal comma (a cell with a comma does not read as a float)."""
    floats = floats or {}
    typed: list[pl.Expr] = [pl.col(ROW_COLUMN)]
    problems: list[pl.DataFrame] = []
    checks: dict[str, pl.Expr] = {}
    fast = _fast_columns(frame, specs)
    for spec in specs:
        name = spec.name
        if name not in frame.columns:
            typed.append(pl.lit(None, dtype=spec.dtype).alias(name))
            continue
        if spec.type == "text":
            typed.append(pl.col(name))
            continue
        if spec.type == "number":
            parsed = pl.lit(floats[name]) if name in floats else _parse_number(name, decimal_comma)
            problem = _number_problem(name)
        elif spec.type == "date":
            parsed = _parse_date(
                name, "ISO" if name in native_dates else date_format, short=name in fast
            )
            problem = _date_problem(name, "ISO" if name in native_dates else date_format)
        elif spec.type == "bool":
            parsed = _parse_bool(name, plain=name in fast)
            problem = pl.lit("not a yes/no value: use true/false, yes/no or 1/0")
        else:
            parsed = _parse_code(spec, exact=name in fast)
            problem = pl.lit(f"unknown code; allowed: {', '.join(spec.codes)}")
        typed.append(parsed.alias(name))
        checks[name] = problem
    numbers = [spec.name for spec in specs if spec.type == "number" and spec.name in checks]
    typed_frame = _only_finite(frame.select(typed), numbers)
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
