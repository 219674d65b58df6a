"""Durability by a grouping with a group per patient (found by the injection test's store, where
every payload is its own site): Cox's information matrix is near-singular and its inverse has a
negative diagonal. That is "not estimable", not a crash of the Durability page and the CLI."""

from __future__ import annotations

import math

from monitoring.regression import cox_ratios

TIME = [126, 281, 967, 227, 1279, 1304, 0, 58, 1016, 0, 60, 1972, 522, 157, 1155, 0, 1647, 1933]
EVENT = [1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1]
GROUP = ["g0", "g10", "g11", "g2", "g1", "g3", "g7", "g6", "g5", "g7", "g5", "g4", "g8", "g5"]
GROUP += ["g5", "g9", "g6", "g8"]
LEVELS = [f"g{i}" for i in range(12)]


def test_a_negative_variance_is_not_estimable_not_a_crash() -> None:
    ratios = cox_ratios(TIME, EVENT, GROUP, LEVELS, "g5")
    assert [r.group for r in ratios] == [g for g in LEVELS if g != "g5"]
    for r in ratios:
        values = (r.hr, r.ci_lower, r.ci_upper, r.p)
        assert all(v is None for v in values) or all(
            v is not None and math.isfinite(v) for v in values
        ), r
