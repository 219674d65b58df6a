"""The file shapes clinics really export: encodings, delimiters, line ends, XLSX, Parquet."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from monitoring.errors import UnreadableFileError
from monitoring.ingest import ingest_files
from monitoring.ingest.read import read_table
from monitoring.store import Store

TODAY = date(2026, 11, 22)
HEADER = ["patient_id", "site", "product", "infusion_date", "prior_hsct", "baseline_bm_blasts_pct"]
ROWS = [
    ["CART-001", "Zürich", "tisagenlecleucel", "2024-01-10", "yes", "12.5"],
    ["CART-002", "Malmö", "CD19/CD22", "2024-03-05", "no", ""],
]
VISIT_HEADER = ["patient_id", "visit_date", "disease_status", "comment"]
VISIT_ROWS = [["CART-001", "2024-02-07", "CR", 'B cells 0/µL; "quoted", comma']]


def _text(header: list[str], rows: list[list[str]], sep: str, newline: str) -> str:
    def cell(value: str) -> str:
        return (
            f'"{value.replace(chr(34), chr(34) * 2)}"'
            if any(ch in value for ch in (sep, '"'))
            else value
        )

    return newline.join(sep.join(cell(v) for v in line) for line in [header, *rows]) + newline


def _expected(store: Store) -> None:
    patients = store.patients().sort("patient_id")
    assert patients["patient_id"].to_list() == ["CART-001", "CART-002"]
    assert patients["site"].to_list() == ["Zürich", "Malmö"]
    assert patients["infusion_date"].to_list() == [date(2024, 1, 10), date(2024, 3, 5)]
    assert patients["prior_hsct"].to_list() == [True, False]
    assert patients["baseline_bm_blasts_pct"].to_list() == [12.5, None]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_variants(store: Store, tmp_path: Path, encoding: str, sep: str, newline: str):
    path = tmp_path / "patients.csv"
    path.write_bytes(_text(HEADER, ROWS, sep, newline).encode(encoding))
    result = ingest_files(store, [path], today=TODAY)
    assert result.errors.height == 0
    _expected(store)


def test_quoted_cells_and_micro_sign_survive(store: Store, tmp_path: Path):
    p = tmp_path / "patients.csv"
    p.write_text(_text(HEADER, ROWS, ",", "\n"), encoding="utf-8")
    v = tmp_path / "visits.csv"
    v.write_bytes(_text(VISIT_HEADER, VISIT_ROWS, ";", "\r\n").encode("cp1252"))
    ingest_files(store, [p, v], today=TODAY)
    assert store.visits()["comment"].to_list() == ['B cells 0/µL; "quoted", comma']


def test_semicolon_files_accept_decimal_comma(store: Store, tmp_path: Path):
    rows = [[*ROWS[0][:5], "12,5"], ROWS[1]]
    path = tmp_path / "patients.csv"
    path.write_text(_text(HEADER, rows, ";", "\n"), encoding="utf-8")
    ingest_files(store, [path], today=TODAY)
    _expected(store)


def _xlsx(path: Path, sheets: dict[str, tuple[list[str], list[list[object]]]]) -> Path:
    book = xlsxwriter.Workbook(str(path))
    date_format = book.add_format({"num_format": "dd/mm/yyyy"})
    for name, (header, rows) in sheets.items():
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, header)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if isinstance(value, date):
                    sheet.write_datetime(r, c, value, date_format)  # type: ignore[arg-type]
                elif value is not None and value != "":
                    sheet.write(r, c, value)
    book.close()
    return path


def _native_rows() -> list[list[object]]:
    return [
        ["CART-001", "Zürich", "tisagenlecleucel", date(2024, 1, 10), True, 12.5],
        ["CART-002", "Malmö", "CD19/CD22", date(2024, 3, 5), False, None],
    ]


def test_xlsx_first_sheet_with_real_dates(store: Store, tmp_path: Path):
    path = _xlsx(
        tmp_path / "export.xlsx", {"Patients": (HEADER, _native_rows()), "Notes": (["x"], [["y"]])}
    )
    result = ingest_files(store, [path], today=TODAY)
    assert result.errors.height == 0
    _expected(store)


def test_xlsx_named_sheet(store: Store, tmp_path: Path):
    path = _xlsx(
        tmp_path / "export.xlsx",
        {"Cover": (["note"], [["read me"]]), "Patients": (HEADER, _native_rows())},
    )
    ingest_files(store, [path], sheet="Patients", today=TODAY)
    _expected(store)
    with pytest.raises(UnreadableFileError, match="sheet 'Nope'"):
        read_table(path, sheet="Nope")


def test_xlsx_row_numbers_match_the_spreadsheet(store: Store, tmp_path: Path):
    rows = _native_rows() + [["CART-003", "X", "tisagenlecleucel", "not a date", None, None]]
    path = _xlsx(tmp_path / "export.xlsx", {"Patients": (HEADER, rows)})
    from monitoring.errors import RejectedUploadError

    with pytest.raises(RejectedUploadError) as caught:
        ingest_files(store, [path], today=TODAY)
    row = caught.value.report.filter(pl.col("column") == "infusion_date").row(0, named=True)
    assert (row["row"], row["patient_id"], row["value"]) == (4, "CART-003", "not a date")


def test_parquet(store: Store, tmp_path: Path):
    frame = pl.DataFrame(
        {
            "patient_id": ["CART-001", "CART-002"],
            "site": ["Zürich", "Malmö"],
            "product": ["tisagenlecleucel", "CD19/CD22"],
            "infusion_date": [date(2024, 1, 10), date(2024, 3, 5)],
            "prior_hsct": [True, False],
            "baseline_bm_blasts_pct": [12.5, None],
        }
    )
    path = tmp_path / "patients.parquet"
    frame.write_parquet(path)
    ingest_files(store, [path], today=TODAY)
    _expected(store)


def test_blank_lines_keep_row_numbers(store: Store, tmp_path: Path):
    path = tmp_path / "patients.csv"
    path.write_text(
        "patient_id,infusion_date\nA-1,2024-01-01\n,\nA-2,2024-13-01\n", encoding="utf-8"
    )
    from monitoring.errors import RejectedUploadError

    with pytest.raises(RejectedUploadError) as caught:
        ingest_files(store, [path], today=TODAY)
    assert caught.value.report.filter(pl.col("severity") == "error")["row"].to_list() == [4]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x00\x01\x02binary\x00junk", "binary"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        (b"PK\x03\x04 not really a zip", "XLSX file is damaged"),
        (b"PAR1 truncated", "Parquet"),
        (b"patient_id,patient_id\nA,B\n", "appears twice"),
        (b'a,b\n"unterminated,1\n2,3\n', "could not be read"),
    ],
)
def test_unreadable_files_get_one_sentence(tmp_path: Path, content: bytes, words: str):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError) as caught:
        read_table(path)
    message = str(caught.value)
    assert message.startswith("upload.csv: ")
    assert words in message
    assert "Traceback" not in message and "\n" not in message


def test_unknown_kind_is_unreadable(store: Store, tmp_path: Path):
    path = tmp_path / "labs.csv"
    path.write_text("mrn,value\n1,2\n", encoding="utf-8")
    with pytest.raises(UnreadableFileError, match="patients or a visits table"):
        ingest_files(store, [path], today=TODAY)


def test_size_limit(tmp_path: Path):
    from monitoring.config import config_override

    path = tmp_path / "big.csv"
    path.write_text("patient_id,infusion_date\n" + "A,2024-01-01\n" * 1000, encoding="utf-8")
    with (
        config_override(max_upload_bytes=1000),
        pytest.raises(UnreadableFileError, match="above ltfu's limit of 1.0 kB per upload file"),
    ):
        read_table(path)
