"""Number cells are typed by polars' float cast alone (no regex over every cell): on random and
edge-case text, with and without a decimal comma, that gives exactly what the cast guarded by
the contract's NUMBER_PATTERN gives (the way numbers were typed before)."""

from __future__ import annotations

import itertools
import random

import polars as pl

from monitoring.ingest.parse import NUMBER_PATTERN, parse_columns
from monitoring.ingest.read import ROW_COLUMN
from monitoring.schemas import ColumnSpec

EDGE = [
    *("1e", "e5", ".e5", "1.e5", "+.5", "-.", ".", "+", "-", "1e+", "1e-", "1_000", "0x10"),
    *("1,5", " 5", "5 ", "\t5", "5\n", "1 000", "1e1_0", "1L", "1.5e", ".5e-3", "5.e3", "1E5"),
    *("inf", "-inf", "+inf", "Inf", "INFINITY", "Infinity", "nan", "NaN", "-nan", "nan(1)"),
    *("1e999", "-1e999", "1e-999", "١٢", "１２", "+-1", "--1", "1..2", "1.2.3", "0b1", "1e5.5"),
    *("00", "-0", "+0.", "1e05", "∞", "1#INF", "e", "E", "1E", ".1E+2", "0,0001", "-3,25"),
    *("12,5,1", ",5", "5,", "1.5,2", "0.0001", "99.999", "-0.0", "1e308", "2.2250738585e-308"),
]


def _texts() -> list[str]:
    rng = random.Random(7)
    alphabet = "0123456789.+-eE ,xin_fa"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(60_000)]
    texts += ["".join(p) for n in range(1, 5) for p in itertools.product("01.+-eE,", repeat=n)]
    return texts + EDGE


def _with_pattern(column: str, decimal_comma: bool) -> pl.Expr:
    text = pl.col(column)
    if decimal_comma:
        text = (
            pl.when(text.str.contains(r"^[+-]?\d+,\d+$"))
            .then(text.str.replace(",", ".", literal=True))
            .otherwise(text)
        )
    value = text.cast(pl.Float64, strict=False)
    numeric = text.str.contains(NUMBER_PATTERN)
    return pl.when(numeric & value.is_finite()).then(value).otherwise(None)


def _typed(frame: pl.DataFrame, decimal_comma: bool) -> pl.Series:
    rows = frame.with_row_index(ROW_COLUMN, offset=2)
    typed, _problems = parse_columns(
        rows, (ColumnSpec("x", "number"),), decimal_comma=decimal_comma
    )
    return typed["x"]


def test_the_cast_alone_types_numbers_as_the_pattern_did():
    frame = pl.DataFrame({"x": _texts()}, schema={"x": pl.String})
    for decimal_comma in (False, True):
        got = _typed(frame, decimal_comma)
        want = frame.select(_with_pattern("x", decimal_comma))["x"]
        differ = frame.filter(got.is_null() != want.is_null())
        assert differ.is_empty(), differ.head(20)
        assert got.equals(want)
        assert got.drop_nulls().len() > 1000  # many texts were numbers, not only refusals


def test_edge_cases_read_as_a_person_means_them():
    frame = pl.DataFrame({"x": ["1e999", "inf", "nan", " 5", "1,5", "0.0001", "-3", ".5"]})
    assert _typed(frame, False).to_list() == [
        *(None, None, None, None, None),
        *(0.0001, -3.0, 0.5),
    ]
    assert _typed(frame, True).to_list()[4] == 1.5
    clean = pl.DataFrame({"x": ["1", None, "2.5"]})
    assert _typed(clean, False).to_list() == [1.0, None, 2.5]
