"""The CSV reader hands polars the upload's UTF-8 bytes (no StringIO, no split of every line):
the same header and cells as reading the decoded text, for every encoding it accepts."""

from __future__ import annotations

import io
import random

import polars as pl

from monitoring.ingest.parsers import _first_line, _read_csv

BOUNDARIES = [
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
]


def test_first_line_is_the_first_of_splitlines():
    rng = random.Random(3)
    for _ in range(500):
        parts = [
            rng.choice(["a", "b,c", " ", ";", "é", *BOUNDARIES]) for _ in range(rng.randint(1, 12))
        ]
        text = "".join(parts)
        if text.splitlines():
            assert _first_line(text) == text.splitlines()[0], repr(text)


def _via_text(text: str) -> pl.DataFrame:
    columns = [c.strip() for c in text.splitlines()[0].split(",")]
    return pl.read_csv(io.StringIO(text), infer_schema=False, new_columns=columns)


def test_bytes_read_as_the_decoded_text():
    text = "patient_id,comment\r\nCART-1,Bérénice’s “note”\r\nCART-2,\r\nCART-3,a;b\r\n"
    for data in (
        text.encode("utf-8"),
        b"\xef\xbb\xbf" + text.encode("utf-8"),
        text.encode("cp1252"),
    ):
        frame, decimal_comma = _read_csv(data, "v.csv")
        assert not decimal_comma
        assert frame.equals(_via_text(text))
