"""`committed_rows` skips its sort only when the rows are in key order already."""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl

from monitoring.committed_rows import _in_key_order


def test_key_order_is_what_sort_gives():
    rng = random.Random(5)
    for _ in range(300):
        n = rng.randint(0, 8)
        frame = pl.DataFrame(
            {
                "patient_id": [rng.choice(["A", "B", "B1", "a", "C-2"]) for _ in range(n)],
                "visit_date": [
                    date(2024, 1, 1) + timedelta(days=rng.randint(0, 3)) for _ in range(n)
                ],
            },
            schema={"patient_id": pl.String, "visit_date": pl.Date},
        ).unique(maintain_order=True)
        keys = ["patient_id", "visit_date"]
        assert _in_key_order(frame, keys) == frame.equals(frame.sort(keys))
        one = frame.unique("patient_id", maintain_order=True).select("patient_id")
        assert _in_key_order(one, ["patient_id"]) == one.equals(one.sort("patient_id"))


def test_a_null_key_is_not_in_order():
    frame = pl.DataFrame({"patient_id": ["A", None, "B"]}, schema={"patient_id": pl.String})
    assert not _in_key_order(frame, ["patient_id"])
