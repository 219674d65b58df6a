"""The isolated reader worker (monitoring/ingest/isolation.py) hands back exactly what the
parser gives in the caller's own process, and leaves no descriptor open behind it: the upload
and the answer travel in memory files passed over a socket."""

from __future__ import annotations

import io
import os
from datetime import date

import polars as pl
import pytest

from monitoring.config import config_override
from monitoring.errors import UnreadableFileError
from monitoring.ingest.isolation import _worker
from monitoring.ingest.limits import Limits
from monitoring.ingest.parsers import parse_bytes
from monitoring.ingest.read import read_bytes

_CSV = (
    "patient_id;visit_date;disease_status;note;ldh\n"
    'P-1;2024-02-02; CR ;"a; b";1,5\n'
    "P-2;2024-03-01;;  ;\n"
    ";;;;\n"
    "P-3;2024-04-01;PR;naïve “x”;\u00a0210\n"
).encode()


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"patient_id": ["P-1", " P-2"], "ldh": [1.5, None]}).write_excel(buffer)
    return buffer.getvalue()


def _parquet() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(
        {"patient_id": ["P-1", "P-2"], "visit_date": [None, date(2024, 1, 2)]},
        schema={"patient_id": pl.String, "visit_date": pl.Date},
    ).write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name, data", [("v.csv", _CSV), ("v.xlsx", None), ("v.parquet", None)])
def test_the_worker_answers_what_the_parser_gives_in_process(name: str, data: bytes | None) -> None:
    data = data or (_xlsx() if name.endswith("xlsx") else _parquet())
    frame, native_dates, decimal_comma = parse_bytes(data, name, None, Limits.from_config())
    raw = read_bytes(data, name)
    assert raw.frame.equals(frame) and raw.frame.schema == frame.schema
    assert (raw.native_dates, raw.decimal_comma) == (native_dates, decimal_comma)
    assert raw.frame.height > 0


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_reads_leave_no_descriptor_open() -> None:
    read_bytes(_CSV, "warm.csv")  # the worker and its socket are started once
    before = _open_descriptors()
    for _ in range(3):
        assert read_bytes(_CSV, "v.csv").frame.height == 3
        with pytest.raises(UnreadableFileError, match="the CSV could not be read"):
            read_bytes(b'a,b\n1,"2\n3,4\n', "broken.csv")
    with (
        config_override(reader_timeout_seconds=0),  # the worker is killed during the request
        pytest.raises(UnreadableFileError, match="longer than ltfu's limit"),
    ):
        read_bytes(_CSV, "killed.csv")
    assert _worker.process is None
    assert read_bytes(_CSV, "v.csv").frame.height == 3  # a new worker, a new socket
    assert _open_descriptors() == before
