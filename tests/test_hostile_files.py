"""Hostile files cannot hurt the server (issue 16, item 1).

Each file of the security review is built by code in a temporary folder and sent through the
dashboard's own upload path in a stand-in serving process (`tests/upload_server.py`): each is
refused with one sentence naming the file and the limit, the process answers a good upload right
after, and its peak memory (VmHWM) stays under 1 GB. A reader that still blows up (the limits
switched off) kills the isolated reader worker, not the caller.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from monitoring.config import config_override, get_config
from monitoring.errors import UnreadableFileError
from monitoring.ingest import ingest_tables
from monitoring.ingest.read import read_bytes
from monitoring.store import Store

GIB_KB = 1024 * 1024
GOOD = b"patient_id,visit_date,disease_status\nP-1,2024-02-02,CR\n"

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
    'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="'
    'application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
    'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/'
    'workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/'
    'sheet1.xml"/></Relationships>'
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main"><dimension ref="{dimension}"/><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _xlsx(path: Path, dimension: str, write_rows: Callable[[io.BufferedIOBase], None]) -> Path:
    """A minimal workbook whose one sheet's rows are streamed by `write_rows`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _RELS)
        book.writestr("xl/workbook.xml", _WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(_SHEET_HEAD.format(dimension=dimension).encode())
            write_rows(sheet)  # type: ignore[arg-type]
            sheet.write(_SHEET_TAIL.encode())
    return path


def far_dimension_xlsx(folder: Path) -> Path:
    """1.5 KB: a sheet claiming (and using) cell XFD1048576; calamine asks for 512 GiB."""

    def rows(sheet: io.BufferedIOBase) -> None:
        sheet.write(f'<row r="1">{_cell("A1", "patient_id")}</row>'.encode())
        sheet.write(f'<row r="2">{_cell("A2", "P-1")}</row>'.encode())
        sheet.write(f'<row r="1048576">{_cell("XFD1048576", "x")}</row>'.encode())

    return _xlsx(folder / "far_dimension.xlsx", "A1:XFD1048576", rows)


def unpacks_to_300mb_xlsx(folder: Path) -> Path:
    """About 1 MB that unpacks to 300 MB of rows (a zip bomb shaped like a visits export)."""
    row = (
        "<row>"
        + "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in ("P-1", "2024-02-02", "CR"))
        + "</row>"
    )
    block = (row * 2000).encode()

    def rows(sheet: io.BufferedIOBase) -> None:
        written = 0
        while written < 300_000_000:
            sheet.write(block)
            written += len(block)

    return _xlsx(folder / "bomb.xlsx", "A1:C2", rows)


def million_columns_csv(folder: Path) -> Path:
    """9.9 MB: a header of a million columns and one row."""
    path = folder / "million_columns.csv"
    header = ",".join(f"c{i}" for i in range(1_000_000))
    path.write_bytes(header.encode() + b"\n" + b"1," * 999_999 + b"1\n")
    return path


def single_line_csv(folder: Path) -> Path:
    """100 MB on one line without a delimiter."""
    path = folder / "one_line.csv"
    with path.open("wb") as out:
        for _ in range(100):
            out.write(b"x" * 1_000_000)
    return path


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    # file → (builder, the limit its sentence names)
    "far_dimension": (far_dimension_xlsx, "5,000 columns"),
    "bomb": (unpacks_to_300mb_xlsx, "100 times"),
    "million_columns": (million_columns_csv, "5,000 columns"),
    "one_line": (single_line_csv, "1.0 MB per line"),
}


class UploadServer:
    def __init__(self, store_url: str, folder: Path) -> None:
        env = dict(os.environ, LTFU_DATABASE_URL=store_url)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.upload_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        self.good = folder / "good.csv"
        self.good.write_bytes(GOOD)
        assert json.loads(self._line())["ready"]

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the serving process died (exit {self.process.poll()})"
        return line

    def upload(self, path: Path) -> dict[str, object]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        return dict(json.loads(self._line()))

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadServer]:
    folder = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{folder / 'store.db'}"
    store = Store.open(url)
    ingest_tables(
        store, [read_bytes(b"patient_id,infusion_date\nP-1,2024-01-01\n", "patients.csv")]
    )
    store.close()
    running = UploadServer(url, folder)
    yield running
    running.stop()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_file_is_refused_and_the_server_keeps_answering(
    server: UploadServer, tmp_path: Path, kind: str
) -> None:
    build, limit = HOSTILE[kind]
    path = build(tmp_path)
    answer = server.upload(path)
    path.unlink()
    message = str(answer["message"])
    assert answer["outcome"] == "UnreadableFileError", answer
    assert message.startswith(f"{path.name}: ") and limit in message, message
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
    after = server.upload(server.good)
    assert after["outcome"] == "accepted", after
    peak_kb = int(str(after["peak_kb"]))
    assert 0 < peak_kb < GIB_KB, f"serving process peaked at {peak_kb / 1024:.0f} MiB"


def test_a_reader_that_blows_up_kills_the_worker_not_the_caller(tmp_path: Path) -> None:
    data = far_dimension_xlsx(tmp_path).read_bytes()
    assert len(data) < 2000
    unlimited = {"max_columns": 10**9, "max_rows": 10**9, "max_sheet_cells": 10**18}
    with (
        config_override(**unlimited, reader_memory_bytes=2**30),
        pytest.raises(UnreadableFileError) as caught,
    ):
        read_bytes(data, "far_dimension.xlsx")
    assert "1 GiB of memory" in str(caught.value)
    # the next upload gets a fresh worker
    assert read_bytes(GOOD, "good.csv").frame.height == 1


def test_reader_time_limit(tmp_path: Path) -> None:
    rows = b"".join(b"P-%d,2024-02-02,CR\n" % i for i in range(300_000))
    with config_override(reader_timeout_seconds=0), pytest.raises(UnreadableFileError) as caught:
        read_bytes(b"patient_id,visit_date,disease_status\n" + rows, "slow.csv")
    assert "longer than ltfu's limit of 0 s" in str(caught.value)
    assert read_bytes(GOOD, "good.csv").frame.height == 1


def test_cell_length_limit() -> None:
    data = b"patient_id,visit_date,comment\nP-1,2024-02-02," + b"y" * 40_000 + b"\n"
    with pytest.raises(UnreadableFileError) as caught:
        read_bytes(data, "long_cell.csv")
    assert str(caught.value).startswith(
        "long_cell.csv: a cell of column 'comment' holds 40,000 characters, above ltfu's limit "
        "of 32,767 characters per cell"
    )


def test_cell_length_limit_counts_characters_not_bytes() -> None:
    """The byte length only rules a cell out; a cell over the limit in bytes but not in
    characters (é is two bytes) is read, and one over it in characters is refused."""
    from monitoring.ingest.limits import Limits, check_frame

    limits = dataclasses.replace(Limits.from_config(), max_cell_chars=10)
    check_frame(pl.DataFrame({"comment": ["é" * 10, None]}), "ten.csv", limits)
    with pytest.raises(UnreadableFileError) as caught:
        check_frame(pl.DataFrame({"comment": ["é" * 11, "a"]}), "eleven.csv", limits)
    assert str(caught.value).startswith(
        "eleven.csv: a cell of column 'comment' holds 11 characters, above ltfu's limit of 10"
    )


def test_row_limit() -> None:
    data = b"patient_id,visit_date\n" + b"P-1,2024-02-02\n" * 101
    with config_override(max_rows=100), pytest.raises(UnreadableFileError) as caught:
        read_bytes(data, "rows.csv")
    assert "rows.csv: it has 101 rows, above ltfu's limit of 100 rows" in str(caught.value)


def test_parquet_shape_is_checked_in_the_worker(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"patient_id": ["P-1"] * 11, "visit_date": ["2024-02-02"] * 11}).write_parquet(
        buffer
    )
    with config_override(max_rows=10), pytest.raises(UnreadableFileError) as caught:
        read_bytes(buffer.getvalue(), "v.parquet")
    assert "v.parquet: it has 11 rows, above ltfu's limit of 10 rows" in str(caught.value)


def test_cli_refuses_the_far_dimension_with_exit_2(tmp_path: Path) -> None:
    path = far_dimension_xlsx(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.cli", "ingest", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, LTFU_DATABASE_URL=f"sqlite:///{tmp_path / 's.db'}"),
    )
    assert result.returncode == 2, result.stderr
    assert "far_dimension.xlsx: sheet sheet1's dimension reaches column 16,384" in result.stderr


def test_streamlit_upload_cap_is_ltfus() -> None:
    from dashboard.server import settings

    with config_override(max_upload_bytes=50 * 1024 * 1024):
        options = settings(get_config().max_upload_bytes)
    assert options["server.maxUploadSize"] == 50


def test_a_worker_killed_between_requests_is_an_eof_and_stops_quietly() -> None:
    """A worker killed (time limit, memory) leaves the caller an end of file, not an OSError
    past the refusal, and stopping it afterwards raises nothing."""
    from monitoring.ingest.isolation import _Worker

    worker = _Worker()
    process = worker.start()
    process.kill()
    process.wait()
    with pytest.raises(EOFError):
        worker.request(b"{}", b"x" * 1024)
    worker.stop()
    assert worker.process is None and worker.channel is None
