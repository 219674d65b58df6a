"""Reading one upload and typing its columns in the same isolated worker process.

    read_typed(path, sheet, kind, date_format) ─▶ ParsedFile, or RawTable when typing raised

`read.read_table` followed by `validate.parse_file`, with parse_file run in the reader worker
(`isolation.type_isolated`) on the text cells it already holds: the typed frame and its
problems travel back instead of the text cells, which are several times larger, so the caller
neither receives nor holds them. The result is the one parse_file gives in the caller
(tests/test_reader_worker.py). When parse_file raises in the worker (a table of unknown kind,
say), the text cells come back as a RawTable and the caller's own parse_file raises the same
sentence, in the same order as before; so too when the worker is killed for memory while typing
and the read alone fits (tests/test_typed_read_limits.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from monitoring.ingest.parse import DateFormat
from monitoring.ingest.read import RawTable, checked_limits, file_bytes
from monitoring.ingest.validate import ParsedFile
from monitoring.schemas import Kind


def read_typed(
    path: str | Path,
    *,
    sheet: str | None = None,
    kind: Kind | None = None,
    date_format: DateFormat = "ISO",
) -> ParsedFile | RawTable:
    """`parse_file(read_table(path, sheet=sheet), kind=kind, date_format=date_format)`, typed in
    the reader worker; the RawTable when parse_file raised there."""
    from monitoring.ingest.isolation import type_isolated

    data, name = file_bytes(path)
    sha256 = hashlib.sha256(data).hexdigest()
    limits = checked_limits(data, name)
    frame, native_dates, decimal_comma, typed = type_isolated(
        data, name, sheet, limits, kind, date_format
    )
    if typed is None:
        return RawTable(name, frame, native_dates, decimal_comma, sha256)
    return ParsedFile(name, typed.kind, sha256, frame, typed.problems)


__all__ = ["read_typed"]
