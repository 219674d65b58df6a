"""The typed reader leaves a number column untrimmed when every cell reads as a float as it
stands, and hands its floats to the typing (`parsers.read_cells`, `parse.parse_columns`'s
`floats`). On random CSVs the text cells are the ones `parse_bytes` gives (every cell trimmed,
blanks null, blank lines dropped), and the typed frame and problems are the general parse's."""

from __future__ import annotations

import random

import polars as pl

from monitoring.ingest.limits import Limits
from monitoring.ingest.parsers import RawTable, parse_bytes, read_cells
from monitoring.ingest.validate import parse_file
from monitoring.schemas import COLUMNS

NUMBERS = frozenset(s.name for specs in COLUMNS.values() for s in specs if s.type == "number")
# clean numbers (which take the short way), and what must not: whitespace of every kind, blanks,
# decimal commas, words, infinities
CLEAN = ["5", "0.25", "1e-3", "-2", "0", "982", ".5"]
ODD = [" 5", "5 ", "\u00a05", "5\t", " ", "", "5,5", "x", "inf", "nan", "1e999", "\u20035", "  7  "]


def _csv(rng: random.Random, separator: str) -> bytes:
    columns = ["patient_id", "visit_date", "bm_blasts_pct", "igg_mg_dl", "car_pct_cd3", "comment"]
    odd_columns = {c for c in columns[2:5] if rng.random() < 0.4}
    lines = [separator.join(columns)]
    for i in range(rng.randint(1, 12)):
        if rng.random() < 0.1:
            lines.append(separator.join([""] * len(columns)))  # a blank line: dropped
            continue
        cells = [f" CART-{i:05d}" if rng.random() < 0.2 else f"CART-{i:05d}", "2024-01-05"]
        for column in columns[2:5]:
            pool = CLEAN + ODD if column in odd_columns else CLEAN + [""]
            cell = rng.choice(pool)
            quoted = (cell.strip() == "" and cell) or separator in cell
            cells.append(f'"{cell}"' if quoted else cell)
        cells.append(rng.choice(["", " note ", "x"]))
        lines.append(separator.join(cells))
    return ("\n".join(lines) + "\n").encode()


def test_untrimmed_numbers_give_the_general_cells_and_typing():
    rng = random.Random(17)
    limits = Limits.from_config()
    short = 0
    for case in range(40):
        separator = ";" if case % 3 == 0 else ","  # ; : a decimal comma
        data = _csv(rng, separator)
        frame, native, comma = parse_bytes(data, "visits.csv", None, limits)
        cells = read_cells(data, "visits.csv", None, limits, numbers=NUMBERS)
        assert cells.frame.equals(frame), data
        assert (cells.native_dates, cells.decimal_comma) == (native, comma)
        for column, floats in cells.floats.items():
            assert floats.len() == frame.height
            assert floats.equals(frame[column].cast(pl.Float64, strict=False), check_names=False)
        short += bool(cells.floats)
        raw = RawTable("visits.csv", frame, native, comma, sha256="")
        general = parse_file(raw, kind="visits")
        fast = parse_file(raw, kind="visits", floats=cells.floats)
        assert fast.frame.equals(general.frame), data
        assert fast.problems.equals(general.problems), data
    assert 8 < short < 40  # both ways taken


def test_a_column_with_whitespace_or_a_blank_is_trimmed_as_before():
    data = b"patient_id,visit_date,bm_blasts_pct,igg_mg_dl,car_pct_cd3\n" + (
        b'CART-1,2024-01-05, 5,500,1\nCART-2,2024-01-06,6," ",2\n'
    )
    cells = read_cells(data, "visits.csv", None, Limits.from_config(), numbers=NUMBERS)
    assert set(cells.floats) == {"car_pct_cd3"}
    assert cells.frame["bm_blasts_pct"].to_list() == ["5", "6"]
    assert cells.frame["igg_mg_dl"].to_list() == ["500", None]
