"""`parsers.blank_is_null` rewrites only the columns that hold an empty cell; on random frames it
gives what rewriting every column gives (`replace("", None)` over all of them)."""

from __future__ import annotations

import random

import polars as pl

from monitoring.ingest.parsers import blank_is_null

CELLS = ["", " ", "\u00a0", "\t", None, "a", " a ", "0", "CART-1", "2024-01-05", ""]


def test_only_columns_with_an_empty_cell_change_and_the_result_is_the_general_one():
    rng = random.Random(3)
    rewritten = 0
    for _ in range(200):
        height, width = rng.randint(0, 6), rng.randint(1, 4)
        frame = pl.DataFrame(
            {
                f"c{i}": [
                    rng.choice(CELLS if rng.random() < 0.5 else CELLS[4:]) for _ in range(height)
                ]
                for i in range(width)
            },
            schema={f"c{i}": pl.String for i in range(width)},
        ).with_columns(pl.all().str.strip_chars())
        general = frame.with_columns(pl.all().replace("", None))
        got = blank_is_null(frame)
        assert got.equals(general), frame
        assert got.schema == general.schema
        rewritten += not got.equals(frame)
    assert rewritten > 20
