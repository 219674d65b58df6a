"""Hostile files: whatever arrives, ingest answers with a report or one sentence, never a crash,
and never writes a partial upload. Exports neutralise spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring.errors import RejectedUploadError, UnreadableFileError
from monitoring.exports import frame_to_csv, neutralise_formulas
from monitoring.ingest import ingest_tables
from monitoring.ingest.read import read_bytes
from monitoring.store import Store

EXPECTED = (RejectedUploadError, UnreadableFileError)
HEADER = b"patient_id,visit_date,disease_status,mrd_sample,mrd_flow_fraction,comment\n"


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 's.db'}")
    (path := tmp_path_factory.mktemp("p") / "patients.csv").write_text(
        "patient_id,infusion_date\nP-1,2024-01-01\n", encoding="utf-8"
    )
    ingest_tables(store, [read_bytes(path.read_bytes(), "patients.csv")])
    yield store
    store.close()


def _try(store: Store, data: bytes, name: str = "upload.csv") -> str:
    before = store.counts()
    try:
        ingest_tables(store, [read_bytes(data, name)], dry_run=True)
        outcome = "accepted"
    except EXPECTED as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        outcome = type(exc).__name__
    assert store.counts() == before
    return outcome


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=2000))
def test_random_bytes(fuzz_store: Store, data: bytes):
    _try(fuzz_store, data)


cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "CR",
            "BM",
            "0.001",
            "5",
            "2024-02-02",
            "P-1",
            "=1+1",
            '"',
            "\r",
            ";",
            "\t",
            "NaN",
            "inf",
            "1e308",
            "-0",
        ]
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(cell, min_size=1, max_size=8), min_size=1, max_size=12),
    st.sampled_from([",", ";", "\t"]),
)
def test_random_tables_under_a_real_header(fuzz_store: Store, rows: list[list[str]], sep: str):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep)
    writer.writerow(HEADER.decode().strip().split(","))
    writer.writerows(rows)
    _try(fuzz_store, out.getvalue().encode("utf-8", "surrogatepass"))


def test_broken_quoting(fuzz_store: Store):
    assert (
        _try(fuzz_store, HEADER + b'P-1,2024-02-02,CR,BM,0,"never closed\nP-1,2024-03-02,CR,,,\n')
        != "accepted"
    )


def test_huge_cell(fuzz_store: Store):
    data = HEADER + b"P-1,2024-02-02,CR,BM,0," + b"x" * 5_000_000 + b"\n"
    with pytest.raises(UnreadableFileError) as caught:
        read_bytes(data, "huge.csv")
    assert str(caught.value).startswith(
        "huge.csv: line 2 is 5.0 MB long, above ltfu's limit of 1.0 MB per line;"
    )


def test_thousands_of_columns(fuzz_store: Store):
    names = ",".join(f"extra_{i}" for i in range(3000))
    data = (
        HEADER.strip()
        + b","
        + names.encode()
        + b"\nP-1,2024-02-02,CR,BM,0,ok"
        + b",1" * 3000
        + b"\n"
    )
    store = fuzz_store
    result = ingest_tables(store, [read_bytes(data, "wide.csv")], dry_run=True)
    assert result.warnings.filter(pl.col("problem") == "unknown column: ignored").height == 3000


def test_non_numeric_and_special_floats_rejected(fuzz_store: Store):
    for value in (b"NaN", b"inf", b"-inf", b"1e999"):
        data = HEADER + b"P-1,2024-02-02,CR,BM," + value + b",\n"
        assert _try(fuzz_store, data) == "RejectedUploadError", value


def _xlsx_bytes(build) -> bytes:
    book = openpyxl.Workbook()
    build(book)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_excel_formulas_are_not_run_or_trusted(fuzz_store: Store):
    def build(book):
        sheet = book.active
        sheet.append(["patient_id", "visit_date", "disease_status", "comment"])
        sheet.append(["P-1", "2024-02-02", "CR", '=HYPERLINK("http://x","click")'])
        sheet.append(["P-1", "2024-03-02", '="C"&"R"', "ok"])

    # formulas without cached values read as empty or text, never executed; the report says what
    outcome = _try(fuzz_store, _xlsx_bytes(build), "formulas.xlsx")
    assert outcome in ("accepted", "RejectedUploadError")


def test_excel_several_sheets_and_merged_header(fuzz_store: Store):
    def build(book):
        first = book.active
        first.title = "Visits"
        first.append(["patient_id", "visit_date", "disease_status"])
        first.append(["P-1", "2024-02-02", "CR"])
        first.merge_cells("A1:B1")  # a merged header swallows visit_date
        book.create_sheet("Other").append(["x"])

    assert _try(fuzz_store, _xlsx_bytes(build), "merged.xlsx") != "accepted"


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_exports_neutralise_formula_cells(lead: str):
    frame = pl.DataFrame({"comment": [f"{lead}SUM(A1:A9)", "plain"], "value": [-1.5, 2.0]})
    text = frame_to_csv(frame)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][0] == f"'{lead}SUM(A1:A9)"
    assert rows[2][0] == "plain"
    assert rows[1][1] == "-1.5"  # numbers stay numbers
    assert neutralise_formulas(frame)["value"].to_list() == [-1.5, 2.0]


def test_report_of_a_hostile_file_is_formula_safe(fuzz_store: Store, tmp_path: Path):
    data = HEADER + b"=cmd|' /c calc'!A1,2024-02-02,CR,,,\n"
    with pytest.raises(RejectedUploadError) as caught:
        ingest_tables(fuzz_store, [read_bytes(data, "evil.csv")])
    text = frame_to_csv(caught.value.report)
    assert "\n=cmd" not in text and ",=cmd" not in text
    assert "'=cmd" in text


def test_overflowing_number_in_an_unbounded_column(fuzz_store: Store):
    data = b"patient_id,visit_date,bcell_per_ul\nP-1,2024-02-02,1e999\n"
    with pytest.raises(RejectedUploadError) as caught:
        ingest_tables(fuzz_store, [read_bytes(data, "x.csv")], dry_run=True)
    assert caught.value.report["problem"].to_list() == ["not a number"]
