"""The parsers of one upload (run in isolation.py's worker process, after read.py has checked
the limits): a frame of strings, one column per header, nothing parsed yet.

    parse_bytes(data, name, sheet, limits)   CSV, XLSX or Parquet → text cells with ROW_COLUMN
    read_cells(…, numbers)                   the same, and the floats of the `numbers` columns
                                             that read as floats as they stand (not trimmed)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass, field

import polars as pl

from monitoring.errors import UnreadableFileError
from monitoring.ingest.limits import (
    OLE_MAGIC,
    PARQUET_MAGIC,
    XLSX_MAGIC,
    Limits,
    check_frame,
    check_parquet_shape,
)

ROW_COLUMN = "__row"  # the row number a person sees in a spreadsheet (header = row 1)
FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class RawTable:
    """An upload as text cells. `native_dates` are columns the file itself typed as dates."""

    name: str
    frame: pl.DataFrame
    native_dates: frozenset[str]
    decimal_comma: bool
    sha256: str


_BOM = b"\xef\xbb\xbf"


def _decode(data: bytes, name: str) -> tuple[str, bytes]:
    """The text, and its UTF-8 bytes (the upload itself when it is UTF-8: no copy)."""
    if b"\x00" in data[:8192]:
        raise UnreadableFileError(
            f"{name}: this is not a text table (it contains binary data). "
            "Export the sheet as CSV, XLSX or Parquet."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    else:
        return text, data[len(_BOM) :] if data.startswith(_BOM) else data
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise UnreadableFileError(
            f"{name}: the text encoding is not UTF-8 or Windows-1252; re-save it as UTF-8 CSV."
        ) from None
    return text, text.encode("utf-8")


def _first_line(text: str) -> str:
    """`text.splitlines()[0]` without splitting the whole file: every line boundary before the
    first \\n lies in the prefix up to it, the \\n included."""
    end = text.find("\n")
    return (text if end < 0 else text[: end + 1]).splitlines()[0]


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _check_header(columns: list[str], name: str) -> list[str]:
    cleaned = [c.strip().strip("\ufeff") for c in columns]
    if not any(cleaned):
        raise UnreadableFileError(f"{name}: the first row holds no column names.")
    seen: set[str] = set()
    for column in cleaned:
        if column and column in seen:
            raise UnreadableFileError(f"{name}: the column '{column}' appears twice in the header.")
        seen.add(column)
    return cleaned


def _read_csv(data: bytes, name: str) -> tuple[pl.DataFrame, bool]:
    # the text is decoded once to check the encoding and find the header; polars reads the
    # UTF-8 bytes (no StringIO: it holds 4 bytes a character, and a copy of every line)
    text, utf8 = _decode(data, name)
    if not text or text.isspace():
        raise UnreadableFileError(f"{name}: the file is empty.")
    first_line = _first_line(text)
    del text
    delimiter = _sniff_delimiter(first_line)
    header = next(csv.reader([first_line], delimiter=delimiter))
    columns = _check_header(header, name)
    try:
        frame = pl.read_csv(
            io.BytesIO(utf8),
            separator=delimiter,
            infer_schema=False,
            has_header=True,
            new_columns=columns,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableFileError(
            f"{name}: the CSV could not be read ({first}). Check quoting and that every row has "
            "the same number of cells as the header."
        ) from None
    return frame, delimiter == ";"


def _stringify(frame: pl.DataFrame) -> tuple[pl.DataFrame, frozenset[str]]:
    """Text cells for every column; native date columns become ISO text."""
    native_dates: set[str] = set()
    exprs = []
    for column, dtype in frame.schema.items():
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            native_dates.add(column)
            exprs.append(pl.col(column).cast(pl.Date).dt.strftime("%Y-%m-%d").alias(column))
        elif dtype == pl.Boolean:
            exprs.append(pl.col(column).cast(pl.String).alias(column))
        elif dtype.is_float():
            # repr-exact text so that 0.0001 stays 0.0001
            exprs.append(pl.col(column).map_elements(repr, return_dtype=pl.String).alias(column))
        else:
            exprs.append(pl.col(column).cast(pl.String).alias(column))
    return frame.select(exprs), frozenset(native_dates)


def _read_xlsx(data: bytes, name: str, sheet: str | None) -> pl.DataFrame:
    try:
        frame = pl.read_excel(
            io.BytesIO(data),
            sheet_name=sheet,
            drop_empty_rows=False,
            drop_empty_cols=False,
            infer_schema_length=None,
        )
    except Exception as exc:  # calamine raises several unrelated types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"sheet '{sheet}'" if sheet else "the first sheet"
        raise UnreadableFileError(
            f"{name}: {where} could not be read as a table ({detail})."
        ) from None
    if isinstance(frame, dict):  # pragma: no cover - only with several sheet names
        raise UnreadableFileError(f"{name}: name one sheet with --sheet.")
    return frame


def blank_is_null(frame: pl.DataFrame) -> pl.DataFrame:
    """An empty text cell (an empty or blank cell, once trimmed) is "not recorded": null.

    Only the columns that hold one are rewritten: the CSV reader gives an empty unquoted cell
    as null already, so most columns hold none, and finding them costs a length per cell (0.01 s
    against 0.1 s to rewrite every column of 594 000 visits)."""
    empty = frame.select((pl.all().str.len_bytes() == 0).any()).row(0)
    blank = [column for column, has_empty in zip(frame.columns, empty, strict=True) if has_empty]
    return frame.with_columns(pl.col(blank).replace("", None)) if blank else frame


@dataclass(frozen=True)
class Cells:
    """What `read_cells` read: the text cells (trimmed, blanks null, with `ROW_COLUMN`), the
    native date columns, whether the CSV uses a decimal comma, and `floats`: for each column
    asked for whose every cell reads as a float as it stands, those floats, row for row."""

    frame: pl.DataFrame
    native_dates: frozenset[str]
    decimal_comma: bool
    floats: dict[str, pl.Series] = field(default_factory=dict)


def parse_bytes(
    data: bytes, name: str, sheet: str | None, limits: Limits
) -> tuple[pl.DataFrame, frozenset[str], bool]:
    """The reader itself (runs in the worker process): text cells with `ROW_COLUMN`, the native
    date columns, and whether the CSV uses a decimal comma."""
    cells = read_cells(data, name, sheet, limits)
    return cells.frame, cells.native_dates, cells.decimal_comma


def _trimmed(
    frame: pl.DataFrame, numbers: Collection[str]
) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    """Every cell trimmed, then blank cells null; except the columns named in `numbers` whose
    every cell casts to a float as it stands. The cast refuses any whitespace around a number
    and an empty cell, so trimming would change no cell of such a column (and it holds no
    blank): it is left as it is, and its floats are returned, which is what typing the trimmed
    column would cast again (`parse._parse_number`). Trimming costs a new text per cell; the
    cast was needed anyway."""
    asked = [c for c in frame.columns if c in numbers]
    floats: dict[str, pl.Series] = {}
    if asked:
        cast = frame.select(pl.col(asked).cast(pl.Float64, strict=False))
        floats = {c: cast[c] for c in asked if cast[c].null_count() == frame[c].null_count()}
    rest = [c for c in frame.columns if c not in floats]
    return blank_is_null(frame.with_columns(pl.col(rest).str.strip_chars())), floats


def read_cells(
    data: bytes, name: str, sheet: str | None, limits: Limits, numbers: Collection[str] = ()
) -> Cells:
    """`parse_bytes`, and the floats of the columns named in `numbers` that read as floats
    as they stand (`_trimmed`): the typed reader (isolation.py) names the contract's number
    columns, so that typing does not cast them a second time."""
    if not data or data.isspace():  # as `not data.strip()`, without a copy of the upload
        raise UnreadableFileError(f"{name}: the file is empty.")
    decimal_comma = False
    native_dates: frozenset[str] = frozenset()
    if data.startswith(OLE_MAGIC):
        raise UnreadableFileError(
            f"{name}: old Excel .xls files are not read; save it as .xlsx or CSV."
        )
    if data.startswith(XLSX_MAGIC):
        frame, native_dates = _stringify(_read_xlsx(data, name, sheet))
        frame = frame.rename({c: c.strip() for c in frame.columns})
        _check_header(frame.columns, name)
    elif data.startswith(PARQUET_MAGIC):
        frame, native_dates = _stringify(_read_parquet(data, name, limits))
    else:
        frame, decimal_comma = _read_csv(data, name)
    if frame.width == 0:
        raise UnreadableFileError(f"{name}: the file has no columns.")
    check_frame(frame, name, limits)
    frame, floats = _trimmed(frame, numbers)
    cells = frame.columns
    frame = frame.with_row_index(ROW_COLUMN, offset=FIRST_DATA_ROW)
    # a row with every cell empty is a spreadsheet's blank line, not a record
    kept = ~pl.all_horizontal([pl.col(c).is_null() for c in cells])
    if not floats:
        return Cells(frame.filter(kept), native_dates, decimal_comma)
    keep = frame.select(kept).to_series()
    frame = frame.filter(keep)
    if frame.height != keep.len():  # the floats row for row with the rows kept
        floats = {column: values.filter(keep) for column, values in floats.items()}
    return Cells(frame, native_dates, decimal_comma, floats)


def _read_parquet(data: bytes, name: str, limits: Limits) -> pl.DataFrame:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(io.BytesIO(data))
        check_parquet_shape(metadata.num_rows, metadata.num_columns, name, limits)
        return pl.read_parquet(io.BytesIO(data))
    except UnreadableFileError:
        raise
    except Exception:
        raise UnreadableFileError(f"{name}: the Parquet file is damaged or incomplete.") from None
