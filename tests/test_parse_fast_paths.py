"""`parse._fast_columns`: a date, boolean or code column that one cheap look proves clean is
typed without the general expression, and the typed frame and the problems are exactly those of
the general parse, on random columns mixing clean and messy cells, for every date format."""

from __future__ import annotations

import random

import polars as pl
import pytest

from monitoring.ingest import parse
from monitoring.ingest.read import ROW_COLUMN
from monitoring.schemas import COLUMNS

DATES = [
    *("2024-01-05", "2024-1-5", "05/01/2024", "5.1.2024", "2024-13-01", "2024-01-05 00:00"),
    *("2024-01-05T00:00:00", "05/01/2024 00:00", "1 00:00", "2024 00:00", "T00:00", "x"),
    *("2024-02-30", "01-05-2024", "2024-01-05 00:00:00.000", "2024-01-05 12:00"),
]
BOOLS = ["true", "false", "TRUE", "Yes", "no", "1", "0", "maybe", "True", "tru"]
CODES = ["BM", "PB", "bm", "Pb", "marrow", "", "CR", "CRi", "cri", "cr"]


def _column(rng: random.Random, clean: list[str], messy: list[str], n: int) -> list[str | None]:
    pool = clean if rng.random() < 0.6 else clean + messy
    return [None if rng.random() < 0.3 else rng.choice(pool) for _ in range(n)]


@pytest.mark.parametrize("date_format", ["ISO", "DMY", "MDY"])
def test_fast_columns_type_and_report_as_the_general_parse(monkeypatch, date_format):
    rng = random.Random(date_format)
    specs = COLUMNS["visits"]
    fast_taken = 0
    for _ in range(60):
        n = rng.randint(0, 12)
        frame = pl.DataFrame(
            {
                "patient_id": ["P1"] * n,
                "visit_date": _column(
                    rng, DATES[:2] if date_format == "ISO" else DATES[2:4], DATES, n
                ),
                "mrd_sample": _column(rng, ["BM", "PB"], CODES, n),
                "disease_status": _column(rng, ["CR", "CRi", "relapse"], CODES, n),
                "ivig_within_30d": _column(rng, ["true", "false"], BOOLS, n),
                "new_malignancy": _column(rng, ["false"], BOOLS, n),
            },
            schema={
                c: pl.String
                for c in ("patient_id", "visit_date", "mrd_sample", "disease_status")
                + ("ivig_within_30d", "new_malignancy")
            },
        ).with_row_index(ROW_COLUMN, offset=2)
        fast_taken += len(parse._fast_columns(frame, specs))
        got = parse.parse_columns(frame, specs, date_format=date_format)
        with monkeypatch.context() as m:
            m.setattr(parse, "_fast_columns", lambda *_: set())
            general = parse.parse_columns(frame, specs, date_format=date_format)
        assert got[0].equals(general[0]), frame
        assert got[1].equals(general[1]), frame
    assert fast_taken > 60  # the fast paths were taken, not only the general one


def test_two_codes_that_differ_only_in_case_keep_the_general_parse():
    spec = parse.ColumnSpec("x", "code", codes=("A", "a"))
    frame = pl.DataFrame({"x": ["A", "a"]})
    assert parse._fast_columns(frame, (spec,)) == set()
