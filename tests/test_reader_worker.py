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


_VISITS = (
    b"patient_id,visit_date,disease_status,bm_blasts_pct,mrd_sample,mrd_flow_fraction,"
    b"ivig_within_30d,igg_mg_dl,comment,extra\n"
    b'P-1,2024-02-02,CR,0.5,BM,0.0001,false,410,"a, b",x\n'
    b"P-1,2024-02-02,cr,5%,bm,1e999,Yes,12,,\n"
    b"P-2,02/03/2024,relapse,abc,XX,0.2,maybe,,  ,\n"
    b",2024-13-01,,,,,,,note,\n"
    b"P 3,2024-04-01 00:00,CRi,,,,true,900,,\n"
)
_PATIENTS = (
    b"patient_id,infusion_date,sex,age_at_infusion_years,death_date\n"
    b"P-1,2023-01-05,F,4.5,2022-12-01\n"
    b"P-2,2023-02-05,X,50,\n"
)


def _visits_xlsx() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(
        {
            "patient_id": ["P-1", "P-2"],
            "visit_date": [date(2024, 1, 2), date(2024, 2, 3)],
            "igg_mg_dl": [410.0, None],
            "ivig_within_30d": [True, None],
        }
    ).write_excel(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, data, kind, date_format",
    [
        ("visits.csv", _VISITS, None, "ISO"),
        ("visits.csv", _VISITS, "visits", "DMY"),
        ("patients.csv", _PATIENTS, None, "ISO"),
        ("v.csv", _CSV, None, "ISO"),  # neither table's columns: typing raises in the worker
        ("v.csv", _CSV, "visits", "ISO"),
        ("visits.xlsx", None, None, "ISO"),
        ("v.parquet", None, "visits", "ISO"),
    ],
)
def test_typing_in_the_worker_is_parse_file_in_process(
    tmp_path, name: str, data: bytes | None, kind, date_format
) -> None:
    from monitoring.ingest.read import RawTable, read_table
    from monitoring.ingest.read_typed import read_typed
    from monitoring.ingest.validate import ParsedFile, parse_file

    path = tmp_path / name
    path.write_bytes(data or (_visits_xlsx() if name.endswith("xlsx") else _parquet()))
    got = read_typed(path, kind=kind, date_format=date_format)
    try:
        want = parse_file(read_table(path), kind=kind, date_format=date_format)
    except UnreadableFileError as refused:  # the caller's own parse_file raises the same
        assert isinstance(got, RawTable) and got.frame.equals(read_table(path).frame)
        with pytest.raises(UnreadableFileError) as again:
            parse_file(got, kind=kind, date_format=date_format)
        assert str(again.value) == str(refused)
        return
    assert isinstance(got, ParsedFile)
    assert (got.name, got.kind, got.sha256) == (want.name, want.kind, want.sha256)
    assert got.frame.equals(want.frame) and got.frame.schema == want.frame.schema
    assert got.problems.equals(want.problems) and got.problems.schema == want.problems.schema
    if name == "visits.csv":
        assert got.problems.height > 5  # the bad cells were found, in the worker


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_typed_reads_leave_no_descriptor_open(tmp_path) -> None:
    from monitoring.ingest.read_typed import read_typed

    path = tmp_path / "visits.csv"
    path.write_bytes(_VISITS)
    read_typed(path)  # the worker and its socket are started once
    before = _open_descriptors()
    for _ in range(3):
        assert read_typed(path).frame.height == 5
        (tmp_path / "v.csv").write_bytes(_CSV)
        assert read_typed(tmp_path / "v.csv").frame.height == 3  # text cells: untyped
    assert _open_descriptors() == before
