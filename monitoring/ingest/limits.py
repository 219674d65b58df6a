"""Limits a hostile upload meets before any reader allocates memory for it.

    check_upload(data, name)   size; CSV line length, rows and header columns; XLSX zip members
                               (decompressed size and ratio) and every sheet's claimed extent
                               (its <dimension> and its cell references), read by streaming
    check_frame(frame, name)   rows, columns and the longest cell of what a reader produced

Why before: calamine (the XLSX reader under polars) allocates rows × columns cells up front from a
sheet's extent, so a 1.5 KB file claiming cell XFD1048576 asks for 512 GiB and the process aborts;
polars reads a CSV's header line whole, so a million columns or a 100 MB line cost gigabytes.
These checks use the standard library only and look at each byte at most once; the reader itself
then runs in a worker process (`isolation.py`) in case something still gets through.

Every refusal is `UnreadableFileError` with one sentence naming the file and the limit.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass

import polars as pl

from monitoring.config import Config, get_config
from monitoring.errors import UnreadableFileError

XLSX_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_SCAN_CHUNK = 1 << 20
_HEADER_SCAN = 64 << 20
_MAX_ZIP_MEMBERS = 10_000
# a ratio is only meaningful once a member is big enough to matter
_RATIO_FLOOR_BYTES = 1 << 20
_DIMENSION = re.compile(rb'<dimension\s+ref="([A-Za-z0-9:$]+)"')
# cell and row references that could matter: 3+ column letters (beyond ZZ) or 6+ row digits
_BIG_REF = re.compile(rb'\sr="([A-Z]{3,}[0-9]+|[A-Z]*[0-9]{6,})"')
_REF = re.compile(rb"\$?([A-Za-z]*)\$?([0-9]*)$")


@dataclass(frozen=True)
class Limits:
    """The reading limits of `Config`, passed as one value to the worker process."""

    max_upload_bytes: int
    max_rows: int
    max_columns: int
    max_cell_chars: int
    max_line_bytes: int
    max_sheet_cells: int
    max_unpacked_bytes: int
    max_zip_ratio: int

    @classmethod
    def from_config(cls, config: Config | None = None) -> Limits:
        c = config or get_config()
        return cls(
            max_upload_bytes=c.max_upload_bytes,
            max_rows=c.max_rows,
            max_columns=c.max_columns,
            max_cell_chars=c.max_cell_chars,
            max_line_bytes=c.max_line_bytes,
            max_sheet_cells=c.max_sheet_cells,
            max_unpacked_bytes=c.max_unpacked_bytes,
            max_zip_ratio=c.max_zip_ratio,
        )


def _mb(size: int) -> str:
    if size < 100_000:
        return f"{size / 1e3:.1f} kB"
    return f"{size / 1e6:.1f} MB" if size < 10e6 else f"{size / 1e6:.0f} MB"


def refuse(name: str, what: str, limit: str) -> UnreadableFileError:
    return UnreadableFileError(
        f"{name}: {what}, above ltfu's limit of {limit}; split the file or remove what is not "
        "needed and upload again."
    )


def check_size(size: int, name: str, limits: Limits) -> None:
    if size > limits.max_upload_bytes:
        raise refuse(
            name, f"the file is {_mb(size)}", f"{_mb(limits.max_upload_bytes)} per upload file"
        )


def check_upload(data: bytes, name: str, limits: Limits | None = None) -> None:
    """Refuse a file whose size or claimed shape is above the limits, before it is parsed."""
    limits = limits or Limits.from_config()
    check_size(len(data), name, limits)
    if data.startswith(XLSX_MAGIC):
        _check_xlsx(data, name, limits)
    elif data.startswith((PARQUET_MAGIC, OLE_MAGIC)):
        return  # Parquet: its footer is checked inside the worker (check_parquet_shape)
    else:
        _check_csv(data, name, limits)


# ---- CSV ---------------------------------------------------------------------------------------
def _long_line(data: bytes, limit: int) -> tuple[int, int] | None:
    """(line number, length) of the first line longer than `limit` bytes, or None.

    A line longer than `limit` contains a whole aligned window of `limit // 2` bytes without a
    newline, so only windows are searched (memchr) and a line is measured only when one is found.
    """
    window = max(1, limit // 2)
    size = len(data)
    start = 0
    while start + window <= size:
        if data.find(b"\n", start, start + window) != -1:
            start += window
            continue
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", start)
        line_end = size if line_end == -1 else line_end
        if line_end - line_start > limit:
            return data.count(b"\n", 0, line_start) + 1, line_end - line_start
        start = line_end + 1
    return None


def _check_csv(data: bytes, name: str, limits: Limits) -> None:
    # the header's column count first (a million columns fit in 10 MB); a first line that does
    # not end within _HEADER_SCAN bytes is left to the line limit below
    end = data.find(b"\n", 0, _HEADER_SCAN)
    if end == -1:
        end = len(data) if len(data) <= _HEADER_SCAN else 0
    header = data[:end].decode("utf-8", "replace").lstrip("\ufeff")
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=lambda d: counts[d])
    if counts[delimiter] + 1 > limits.max_columns:
        columns = len(next(csv.reader([header.rstrip("\r")], delimiter=delimiter), []))
        if columns > limits.max_columns:
            raise refuse(
                name, f"the header has {columns:,} columns", f"{limits.max_columns:,} columns"
            )
    long_line = _long_line(data, limits.max_line_bytes)
    if long_line is not None:
        line, length = long_line
        raise refuse(
            name, f"line {line} is {_mb(length)} long", f"{_mb(limits.max_line_bytes)} per line"
        )
    rows = data.count(b"\n") + (0 if data.endswith(b"\n") else 1) - 1
    if rows > limits.max_rows:
        raise refuse(name, f"it has {rows:,} rows", f"{limits.max_rows:,} rows")


# ---- XLSX --------------------------------------------------------------------------------------
def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + (letter - 64)
    return number


def _extent(ref: bytes) -> tuple[int, int]:
    """(rows, columns) up to a cell reference such as XFD1048576 (either part may be absent)."""
    match = _REF.match(ref)
    if not match:
        return 0, 0
    letters, digits = match.groups()
    return (int(digits) if digits else 0), (_column_number(letters) if letters else 0)


def _check_extent(rows: int, columns: int, where: str, name: str, limits: Limits) -> None:
    if columns > limits.max_columns:
        raise refuse(name, f"{where} reaches column {columns:,}", f"{limits.max_columns:,} columns")
    if rows > limits.max_rows:
        raise refuse(name, f"{where} reaches row {rows:,}", f"{limits.max_rows:,} rows")
    if rows * columns > limits.max_sheet_cells:
        raise refuse(
            name,
            f"{where} spans {rows:,} rows × {columns:,} columns",
            f"{limits.max_sheet_cells:,} cells per sheet",
        )


def _check_xlsx(data: bytes, name: str, limits: Limits) -> None:
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
        members = book.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UnreadableFileError(
            f"{name}: the XLSX file is damaged (not a readable zip archive); save it again from "
            "the spreadsheet program."
        ) from None
    if len(members) > _MAX_ZIP_MEMBERS:
        raise refuse(name, f"the XLSX holds {len(members):,} parts", f"{_MAX_ZIP_MEMBERS:,} parts")
    unpacked = sum(m.file_size for m in members)
    for member in members:
        if member.file_size > _RATIO_FLOOR_BYTES and member.file_size > limits.max_zip_ratio * max(
            member.compress_size, 1
        ):
            ratio = member.file_size // max(member.compress_size, 1)
            raise refuse(
                name,
                f"its part {member.filename} unpacks {ratio:,} times larger than it is stored "
                f"({_mb(member.file_size)})",
                f"{limits.max_zip_ratio} times",
            )
    if unpacked > limits.max_unpacked_bytes:
        raise refuse(
            name, f"the XLSX unpacks to {_mb(unpacked)}", f"{_mb(limits.max_unpacked_bytes)}"
        )
    for member in members:
        if member.filename.startswith("xl/worksheets/") and member.filename.endswith(".xml"):
            _check_sheet(book, member, name, limits)


def _check_sheet(book: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, limits: Limits) -> None:
    """Stream one sheet's XML: its <dimension> and any far-out cell or row reference."""
    sheet = member.filename.rsplit("/", 1)[-1].removesuffix(".xml")
    read = 0
    carry = b""
    try:
        with book.open(member) as stream:
            while chunk := stream.read(_SCAN_CHUNK):
                read += len(chunk)
                if read > member.file_size or read > limits.max_unpacked_bytes:
                    raise refuse(
                        name,
                        f"its sheet {sheet} unpacks to more than it declares",
                        f"{_mb(limits.max_unpacked_bytes)}",
                    )
                text = carry + chunk
                if dimension := _DIMENSION.search(text):
                    last = dimension.group(1).split(b":")[-1]
                    rows, columns = _extent(last)
                    _check_extent(rows, columns, f"sheet {sheet}'s dimension", name, limits)
                rows = columns = 0
                for match in _BIG_REF.finditer(text):
                    r, c = _extent(match.group(1))
                    rows, columns = max(rows, r), max(columns, c)
                if rows or columns:
                    _check_extent(rows, columns, f"a cell of sheet {sheet}", name, limits)
                carry = text[-64:]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise UnreadableFileError(
            f"{name}: the XLSX file is damaged (sheet {sheet} cannot be unpacked); save it again "
            "from the spreadsheet program."
        ) from None


# ---- after a reader ----------------------------------------------------------------------------
def check_parquet_shape(rows: int, columns: int, name: str, limits: Limits) -> None:
    if columns > limits.max_columns:
        raise refuse(name, f"it has {columns:,} columns", f"{limits.max_columns:,} columns")
    if rows > limits.max_rows:
        raise refuse(name, f"it has {rows:,} rows", f"{limits.max_rows:,} rows")


def check_frame(frame: pl.DataFrame, name: str, limits: Limits) -> None:
    """Rows, columns and the longest text cell of a frame of text cells."""
    if frame.width > limits.max_columns:
        raise refuse(name, f"it has {frame.width:,} columns", f"{limits.max_columns:,} columns")
    if frame.height > limits.max_rows:
        raise refuse(name, f"it has {frame.height:,} rows", f"{limits.max_rows:,} rows")
    text_columns = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    if not text_columns or not frame.height:
        return
    # a cell has no more characters than bytes, and a byte length is read from the cell's view
    # without walking its text: only a file with a long cell counts characters
    most_bytes = frame.select(
        pl.max_horizontal(pl.col(text_columns).str.len_bytes().max()).alias("n")
    ).item()
    if most_bytes is None or most_bytes <= limits.max_cell_chars:
        return
    longest = frame.select(
        pl.max_horizontal(pl.col(text_columns).str.len_chars().max()).alias("n")
    ).item()
    if longest is not None and longest > limits.max_cell_chars:
        column = next(
            c
            for c in text_columns
            if (frame[c].str.len_chars().max() or 0) > limits.max_cell_chars  # type: ignore[operator]
        )
        raise refuse(
            name,
            f"a cell of column '{column}' holds {longest:,} characters",
            f"{limits.max_cell_chars:,} characters per cell",
        )
