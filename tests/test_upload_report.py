"""The upload report: warnings only for rows the upload changes, grouping, CSV and XLSX."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from monitoring.ingest import ingest_files
from monitoring.ingest.report import group_report, report_csv, report_xlsx
from monitoring.store import Store
from monitoring.synthetic import make_cohort, write_csv


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_csv(make_cohort(150, seed=2026), tmp_path_factory.mktemp("demo"))


def test_clean_reupload_shows_no_warnings_and_one_change_one_warning(
    demo: tuple[Path, Path], tmp_path: Path
) -> None:
    patients, visits = demo
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    first = ingest_files(store, [patients, visits])
    ivig = first.warnings.filter(pl.col("problem").str.starts_with("IgG measured within 30 days"))
    assert ivig.height > 400  # the first upload still says it once per row
    again = ingest_files(store, [patients, visits])
    assert again.warnings.height == 0
    # one changed value: exactly one change, and the only warning is that change
    frame = pl.read_csv(visits, infer_schema=False)
    index = frame.with_row_index().filter(pl.col("igg_mg_dl").is_not_null())["index"][0]
    old = frame["igg_mg_dl"][index]
    changed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == index)
        .then(pl.lit("777"))
        .otherwise(pl.col("igg_mg_dl"))
        .alias("igg_mg_dl")
    )
    edited = tmp_path / "visits.csv"
    changed.write_csv(edited)
    result = ingest_files(store, [patients, edited])
    assert result.counts()["visits"] == {"new": 0, "changed": 1, "unchanged": 1922, "rows": 1923}
    assert result.warnings.select("column", "value").rows() == [("igg_mg_dl", "777.0")]
    assert result.warnings["problem"][0].startswith(f"changed since the stored version: {old}")


def test_grouped_report_counts_and_first_rows() -> None:
    report = pl.DataFrame(
        {
            "file": ["v.csv"] * 7,
            "row": [2, 3, 4, 5, 6, 7, 9],
            "patient_id": ["P1", "P1", "P2", "P2", "P3", "P3", "P4"],
            "column": ["igg_mg_dl"] * 6 + ["mrd_sample"],
            "value": ["1"] * 7,
            "problem": ["IgG measured within 30 days of IVIG: kept"] * 6 + ["required: BM or PB"],
            "severity": ["warning"] * 6 + ["error"],
        }
    )
    grouped = group_report(report)
    assert grouped.select("severity", "column", "count").rows() == [
        ("error", "mrd_sample", 1),
        ("warning", "igg_mg_dl", 6),
    ]
    assert grouped["rows"][1] == "2 (P1), 3 (P1), 4 (P2), 5 (P2), 6 (P3) …"
    assert grouped["problem"][0] == "required: BM or PB"


def test_report_downloads_keep_text_as_text() -> None:
    report = pl.DataFrame(
        {
            "file": ["v.csv"],
            "row": [2],
            "patient_id": ["P1"],
            "column": ["comment"],
            "value": ['=HYPERLINK("x")'],
            "problem": ["p"],
            "severity": ["warning"],
        }
    )
    assert report_csv(report).splitlines()[0] == "file,row,patient_id,column,value,problem,severity"
    assert "'=HYPERLINK" in report_csv(report)
    sheet = openpyxl.load_workbook(io.BytesIO(report_xlsx(report))).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header == report.columns
    cell = sheet.cell(row=2, column=header.index("value") + 1)
    assert cell.value == '=HYPERLINK("x")' and cell.data_type == "s"


def test_rejected_reupload_lists_the_errors_without_old_warnings(
    demo: tuple[Path, Path], tmp_path: Path
) -> None:
    from monitoring.errors import RejectedUploadError

    patients, visits = demo
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    ingest_files(store, [patients, visits])
    bad = tmp_path / "visits.csv"
    bad.write_text(visits.read_text() + "NOBODY-1,2024-01-01" + "," * 16 + "\n")
    with pytest.raises(RejectedUploadError) as caught:
        ingest_files(store, [patients, bad])
    report = caught.value.report
    assert report.filter(pl.col("severity") == "error")["patient_id"].to_list() == ["NOBODY-1"]
    assert report.filter(pl.col("severity") == "warning").height == 0
