"""`key_order`: `committed_rows` skips its sort only when the rows are in key order already, and
a frame strictly in key order answers "does a key repeat?" without hashing: both agree with the
general answers (`sort`, `pl.struct(keys).is_duplicated()`) on random frames."""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl

from monitoring.key_order import in_key_order, repeats_a_key

KEYS = ["patient_id", "visit_date"]


def _frame(rng: random.Random, n: int, nulls: bool) -> pl.DataFrame:
    ids = ["A", "B", "B1", "a", "C-2"] + ([None] if nulls else [])
    days = [date(2024, 1, 1) + timedelta(days=d) for d in range(4)] + ([None] if nulls else [])
    return pl.DataFrame(
        {
            "patient_id": [rng.choice(ids) for _ in range(n)],
            "visit_date": [rng.choice(days) for _ in range(n)],
        },
        schema={"patient_id": pl.String, "visit_date": pl.Date},
    )


def test_key_order_is_what_sort_gives():
    rng = random.Random(5)
    for _ in range(300):
        frame = _frame(rng, rng.randint(0, 8), nulls=False).unique(maintain_order=True)
        assert in_key_order(frame, KEYS) == frame.equals(frame.sort(KEYS))
        one = frame.unique("patient_id", maintain_order=True).select("patient_id")
        assert in_key_order(one, ["patient_id"]) == one.equals(one.sort("patient_id"))


def test_a_null_key_is_not_in_order():
    frame = pl.DataFrame({"patient_id": ["A", None, "B"]}, schema={"patient_id": pl.String})
    assert not in_key_order(frame, ["patient_id"])
    assert not in_key_order(frame, ["patient_id"], strictly=True)


def test_a_repeated_key_is_what_hashing_finds_in_any_order_and_with_nulls():
    rng = random.Random(11)
    ordered = 0
    for _ in range(600):
        frame = _frame(rng, rng.randint(0, 9), nulls=rng.random() < 0.3)
        if rng.random() < 0.5:
            frame = frame.sort(KEYS, nulls_last=True)
        ordered += in_key_order(frame, KEYS, strictly=True) and frame.height > 1
        general = bool(frame.select(pl.struct(KEYS).is_duplicated().any()).item())
        assert repeats_a_key(frame, KEYS) == general, frame
        assert repeats_a_key(frame, KEYS) == frame.select(KEYS).is_duplicated().any()
    assert ordered > 50  # the short answer was taken often, not only the general one


def test_strict_order_refuses_equal_neighbours():
    frame = pl.DataFrame(
        {"patient_id": ["A", "A", "B"], "visit_date": [date(2024, 1, 1)] * 2 + [None]},
        schema={"patient_id": pl.String, "visit_date": pl.Date},
    ).head(2)
    assert in_key_order(frame, KEYS)
    assert not in_key_order(frame, KEYS, strictly=True)
    assert repeats_a_key(frame, KEYS)


def test_in_order_is_never_said_of_a_frame_its_sort_would_change_nulls_included():
    """A null compares with nothing: the answer is True only where the order is certain, which
    includes frames with a null in a later key once an earlier key decides."""
    rng = random.Random(17)
    with_null = 0
    for _ in range(1500):
        frame = _frame(rng, rng.randint(0, 6), nulls=True)
        if rng.random() < 0.5:
            frame = frame.sort(KEYS, nulls_last=rng.random() < 0.5)
        for strictly in (False, True):
            if in_key_order(frame, KEYS, strictly=strictly):
                assert frame.equals(frame.sort(KEYS)), frame
                with_null += frame.height > 1 and frame.null_count().sum_horizontal().item() > 0
    assert with_null > 20  # frames holding a null were judged, not only clean ones
