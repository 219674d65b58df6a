"""Invariants of monitoring.survival on arbitrary small data (hypothesis), plus input edge cases.

Times are drawn from a short range of whole days so that ties (between events, between causes,
with censorings, at day 0) are the rule rather than the exception.
"""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring.errors import UsageError
from monitoring.survival import (
    CIF_COLUMNS,
    KM_COLUMNS,
    cif_table,
    km_median,
    km_table,
    landmark_rows,
    logrank_p,
    reverse_km_median_followup,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CAUSES = ("relapse", "death", "hsct")
EPS = 1e-12


@st.composite
def km_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    time = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    event = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return np.array(time, dtype=float), np.array(event, dtype=int)


@st.composite
def cr_data(draw: st.DrawFn) -> tuple[np.ndarray, list[str | None]]:
    n = draw(st.integers(1, 40))
    time = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    cause = draw(st.lists(st.sampled_from(["", None, *CAUSES]), min_size=n, max_size=n))
    return np.array(time, dtype=float), cause


# --------------------------------------------------------------------------------------------
# Kaplan–Meier
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(km_data())
def test_km_is_a_nonincreasing_probability_with_consistent_counts(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    time, event = data
    tab = km_table(time, event)
    assert tab.columns == list(KM_COLUMNS)
    t = tab["time_days"].to_numpy()
    s = tab["estimate"].to_numpy()
    risk = tab["at_risk"].to_numpy()
    d = tab["events"].to_numpy()
    c = tab["censored"].to_numpy()
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) <= 0)
    assert risk[0] == time.size
    assert np.all(np.diff(risk) <= 0)
    np.testing.assert_array_equal(risk[1:], risk[:-1] - d[:-1] - c[:-1])
    assert int(d.sum()) == int(event.sum()) and int(c.sum()) == time.size - int(event.sum())
    for i, ti in enumerate(t):
        assert risk[i] == int(np.sum(time >= ti))
        assert d[i] == int(np.sum((time == ti) & (event == 1)))


@SETTINGS
@given(km_data())
def test_km_limits_contain_the_estimate(data: tuple[np.ndarray, np.ndarray]) -> None:
    tab = km_table(*data)
    for row in tab.iter_rows(named=True):
        if row["estimate"] == 0.0:
            assert row["ci_lower"] is None and row["ci_upper"] is None
            continue
        assert row["ci_lower"] is not None and row["ci_upper"] is not None
        assert 0.0 <= row["ci_lower"] <= row["estimate"] + EPS
        assert row["estimate"] - EPS <= row["ci_upper"] <= 1.0
        if row["estimate"] == 1.0:
            assert row["ci_lower"] == row["ci_upper"] == 1.0


@SETTINGS
@given(km_data())
def test_km_without_censoring_is_the_empirical_survival(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    time, _ = data
    event = np.ones(time.size, dtype=int)
    tab = km_table(time, event)
    for row in tab.iter_rows(named=True):
        expected = float(np.mean(time > row["time_days"]))
        assert math.isclose(row["estimate"], expected, abs_tol=EPS)


@SETTINGS
@given(km_data(), st.randoms(use_true_random=False))
def test_km_and_median_do_not_depend_on_input_order(
    data: tuple[np.ndarray, np.ndarray], rnd: random.Random
) -> None:
    time, event = data
    perm = list(range(time.size))
    rnd.shuffle(perm)
    pt, pe = time[perm], event[perm]
    assert km_table(pt, pe).equals(km_table(time, event))
    assert km_median(pt, pe) == km_median(time, event)
    assert reverse_km_median_followup(pt, pe) == reverse_km_median_followup(time, event)


@SETTINGS
@given(km_data())
def test_median_lies_within_its_limits_and_where_the_curve_reaches_half(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    time, event = data
    med, lo, hi = km_median(time, event)
    tab = km_table(time, event)
    s = tab["estimate"].to_numpy()
    if med is None:
        assert s.min() > 0.5 - 1e-8
        return
    assert s.min() <= 0.5 + 1e-8
    (at,) = landmark_rows(tab, [med])
    assert at["estimate"] is not None and at["estimate"] <= 0.5 + 1e-8
    before = tab.filter(pl.col("time_days") < med)["estimate"]
    if before.len():  # the median is 0 when day-0 events take S to 0.5 or below
        assert before.min() >= 0.5 - 1e-8
    if lo is not None:
        assert lo <= med
    if hi is not None:
        assert med <= hi


@SETTINGS
@given(km_data(), st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=6))
def test_landmarks_read_the_table_at_each_day(
    data: tuple[np.ndarray, np.ndarray], days: list[float]
) -> None:
    time, event = data
    tab = km_table(time, event)
    rows = landmark_rows(tab, days)
    assert [r["time_days"] for r in rows] == days
    last = float(time.max())
    for r in rows:
        t = float(r["time_days"])
        if t > last:
            assert r["estimate"] is r["at_risk"] is r["ci_lower"] is r["ci_upper"] is None
            continue
        assert r["at_risk"] == int(np.sum(time >= t))
        row = tab.filter(pl.col("time_days") <= t).row(-1, named=True)
        assert (r["estimate"], r["ci_lower"], r["ci_upper"]) == (
            row["estimate"],
            row["ci_lower"],
            row["ci_upper"],
        )


# --------------------------------------------------------------------------------------------
# log-rank
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(km_data(), st.data())
def test_logrank_is_a_probability_invariant_to_labels_and_order(
    data: tuple[np.ndarray, np.ndarray], extra: st.DataObject
) -> None:
    time, event = data
    group = np.array(
        extra.draw(st.lists(st.sampled_from("abc"), min_size=time.size, max_size=time.size)),
        dtype=object,
    )
    p = logrank_p(time, event, group)
    if len(set(group.tolist())) < 2:
        assert p is None
        return
    if p is not None:
        assert 0.0 <= p <= 1.0
    relabelled = np.array([{"a": "z", "b": "y", "c": "x"}[g] for g in group], dtype=object)
    q = logrank_p(time, event, relabelled)
    perm = extra.draw(st.permutations(list(range(time.size))))
    r = logrank_p(time[perm], event[perm], group[perm])
    for other in (q, r):
        assert (p is None) == (other is None)
        if p is not None and other is not None:
            assert math.isclose(p, other, rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------------------------
# competing risks
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(cr_data())
def test_cifs_add_up_to_one_minus_km_of_any_event(
    data: tuple[np.ndarray, list[str | None]],
) -> None:
    time, cause = data
    tab = cif_table(time, cause, CAUSES)
    assert tab.columns == list(CIF_COLUMNS)
    any_event = np.array([c not in ("", None) for c in cause], dtype=int)
    km = km_table(time, any_event)
    total = (
        tab.group_by("time_days")
        .agg(pl.col("estimate").sum(), pl.col("events").sum())
        .sort("time_days")
    )
    np.testing.assert_array_equal(total["time_days"].to_numpy(), km["time_days"].to_numpy())
    np.testing.assert_allclose(
        total["estimate"].to_numpy(), 1 - km["estimate"].to_numpy(), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(total["events"].to_numpy(), km["events"].to_numpy())
    for name in CAUSES:
        one = tab.filter(pl.col("cause") == name)
        est = one["estimate"].to_numpy()
        assert np.all((est >= 0) & (est <= 1)) and np.all(np.diff(est) >= 0)
        np.testing.assert_array_equal(one["at_risk"].to_numpy(), km["at_risk"].to_numpy())
        np.testing.assert_array_equal(one["censored"].to_numpy(), km["censored"].to_numpy())
        assert int(one["events"].sum()) == sum(c == name for c in cause)


@SETTINGS
@given(cr_data())
def test_cif_limits_contain_the_estimate(data: tuple[np.ndarray, list[str | None]]) -> None:
    tab = cif_table(*data, CAUSES)
    for row in tab.iter_rows(named=True):
        if row["estimate"] >= 1.0 - 1e-12:
            assert row["ci_lower"] is None and row["ci_upper"] is None
            continue
        assert 0.0 <= row["ci_lower"] <= row["estimate"] + EPS
        assert row["estimate"] - EPS <= row["ci_upper"] <= 1.0
        if row["estimate"] == 0.0:
            assert row["ci_lower"] == row["ci_upper"] == 0.0


@SETTINGS
@given(cr_data(), st.randoms(use_true_random=False))
def test_cif_ties_are_deterministic(
    data: tuple[np.ndarray, list[str | None]], rnd: random.Random
) -> None:
    time, cause = data
    perm = list(range(time.size))
    rnd.shuffle(perm)
    first = cif_table(time, cause, CAUSES)
    again = cif_table(time, cause, CAUSES)
    shuffled = cif_table(time[perm], [cause[i] for i in perm], CAUSES)
    assert first.equals(again)
    assert first.equals(shuffled)


# --------------------------------------------------------------------------------------------
# edge cases
# --------------------------------------------------------------------------------------------
def test_everyone_fails_on_day_zero() -> None:
    tab = km_table([0, 0, 0], [1, 1, 1])
    assert tab.to_dicts() == [
        {
            "time_days": 0.0,
            "at_risk": 3,
            "events": 3,
            "censored": 0,
            "estimate": 0.0,
            "ci_lower": None,
            "ci_upper": None,
        }
    ]
    assert km_median([0, 0, 0], [1, 1, 1]) == (0.0, None, None)


def test_no_events_gives_a_flat_curve_and_no_median() -> None:
    tab = km_table([5, 3, 9], [False, False, False])
    assert tab["estimate"].to_list() == [1.0] * 4
    assert tab["ci_lower"].to_list() == tab["ci_upper"].to_list() == [1.0] * 4
    assert km_median([5, 3, 9], [0, 0, 0]) == (None, None, None)
    assert reverse_km_median_followup([5, 3, 9], [0, 0, 0]) == 5.0


def test_empty_input_gives_empty_frames() -> None:
    assert km_table([], []).columns == list(KM_COLUMNS)
    assert km_table([], []).height == 0
    assert cif_table([], [], CAUSES).height == 0
    assert km_median([], []) == (None, None, None)
    assert logrank_p([], [], []) is None
    assert landmark_rows(km_table([], []), [182.625]) == [
        {
            "time_days": 182.625,
            "estimate": None,
            "ci_lower": None,
            "ci_upper": None,
            "at_risk": None,
        }
    ]


def test_logrank_needs_two_groups_and_ignores_missing_groups() -> None:
    assert logrank_p([1, 2, 3], [1, 0, 1], ["a", "a", "a"]) is None
    assert logrank_p([1, 2, 3], [1, 0, 1], ["a", None, "a"]) is None
    with_missing = logrank_p([1, 2, 3, 4, 5], [1, 0, 1, 1, 1], ["a", "b", None, "b", "a"])
    without = logrank_p([1, 2, 4, 5], [1, 0, 1, 1], ["a", "b", "b", "a"])
    assert with_missing is not None and with_missing == without


@pytest.mark.parametrize(
    ("time", "event"),
    [
        ([1, -2], [1, 0]),
        ([1, float("nan")], [1, 0]),
        ([1, 2], [1, 2]),
        ([1, 2], [1]),
        ([[1]], [[1]]),
    ],
)
def test_bad_input_raises_usage_error(time: list[float], event: list[int]) -> None:
    with pytest.raises(UsageError):
        km_table(time, event)


def test_unknown_cause_is_refused_not_dropped() -> None:
    with pytest.raises(UsageError, match="not among causes"):
        cif_table([1, 2], ["relapse", "graft_failure"], ["relapse", "death"])
    with pytest.raises(UsageError):
        cif_table([1, 2], ["relapse", ""], ["relapse", "relapse"])


def test_landmarks_refuse_a_multi_cause_table() -> None:
    tab = cif_table([1, 2, 3], ["relapse", "death", ""], ["relapse", "death"])
    with pytest.raises(UsageError, match="filter"):
        landmark_rows(tab, [1.0])
    rows = landmark_rows(tab.filter(pl.col("cause") == "relapse"), [1.0, 2.5, 4.0])
    assert [r["at_risk"] for r in rows] == [3, 1, None]
