"""Reading one upload into text cells: the limits first (limits.py), then the parser
(parsers.py) in the isolated worker process (isolation.py).

Accepts CSV (UTF-8, UTF-8 with BOM, cp1252; `,` `;` or tab; LF or CRLF), XLSX (first sheet or a
named one) and Parquet. A file that cannot be read raises `UnreadableFileError` with one sentence
that says what to do; it never leaks a library traceback.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from monitoring.errors import UnreadableFileError
from monitoring.ingest.limits import Limits, check_size, check_upload
from monitoring.ingest.parsers import FIRST_DATA_ROW as FIRST_DATA_ROW
from monitoring.ingest.parsers import ROW_COLUMN as ROW_COLUMN
from monitoring.ingest.parsers import RawTable as RawTable


def read_table(
    path: str | Path, *, sheet: str | None = None, display_name: str | None = None
) -> RawTable:
    """Read one upload as text cells with a spreadsheet row number column."""
    data, name = file_bytes(path, display_name)
    return read_bytes(data, name, sheet=sheet, sha256=hashlib.sha256(data).hexdigest())


def file_bytes(path: str | Path, display_name: str | None = None) -> tuple[bytes, str]:
    """The upload's bytes and the name its problems are reported under (size checked first)."""
    path = Path(path)
    name = display_name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise UnreadableFileError(f"{name}: no such file.") from None
    check_size(size, name, Limits.from_config())
    if path.is_dir():
        raise UnreadableFileError(f"{name}: is a folder, not a file.")
    return path.read_bytes(), name


def checked_limits(data: bytes, name: str) -> Limits:
    """The limits, once the upload meets them and is not empty."""
    limits = Limits.from_config()
    check_upload(data, name, limits)
    if not data or data.isspace():  # as `not data.strip()`, without a copy of the upload
        raise UnreadableFileError(f"{name}: the file is empty.")
    return limits


def read_bytes(data: bytes, name: str, *, sheet: str | None = None, sha256: str = "") -> RawTable:
    """Check the limits, then parse in the isolated reader process (`isolation.py`)."""
    from monitoring.ingest.isolation import parse_isolated

    limits = checked_limits(data, name)
    frame, native_dates, decimal_comma = parse_isolated(data, name, sheet, limits)
    return RawTable(
        name, frame, native_dates, decimal_comma, sha256 or hashlib.sha256(data).hexdigest()
    )
