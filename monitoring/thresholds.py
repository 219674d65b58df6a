"""Threshold comparisons that binary floating point cannot decide (CONTRACT.md §2, §4).

A decimal value at a threshold is often a hair off it in binary: 0.0003 / 3 is
9.999999999999999e-05, not 0.0001, and a rise from 0.00012 to 0.0012 is exactly 10 × in decimal,
yet 0.0012 < 10 * 0.00012 in binary. Values reach the store computed, not only typed: converted
from percent, from spreadsheet formulas, from ratios. So every threshold of outcomes and alerts
(flow MRD ≥ 0.0001, marrow blasts ≥ 5 %, B cells ≥ 1 % or ≥ 50/µL, CAR < 50 copies/µg,
IgG < 400 mg/dL, the 10 × MRD rise) is compared with a relative tolerance of `REL_TOL` = 1e-9
(the tolerance CONTRACT §4 names for `mrd_rising`): a value within 1e-9 × |threshold| of the
threshold counts as equal to it. Binary rounding is about 1e-16 relative, far inside that, while
laboratory values carry at most 6 or 7 significant digits, so no real difference is that small.

`at_least` and `below` are each other's negation (for non-null values): a value that counts as
equal to 400 mg/dL is not below 400. Comparisons with 0 ("NGS > 0": 0 means not detected) stay
exact, since the tolerance of a zero threshold is zero.
"""

from __future__ import annotations

import polars as pl

REL_TOL = 1e-9


def _lower_edge(threshold: float | pl.Expr) -> float | pl.Expr:
    """The smallest value that still counts as equal to `threshold`."""
    if isinstance(threshold, pl.Expr):
        return threshold - REL_TOL * threshold.abs()
    return threshold - REL_TOL * abs(threshold)


def at_least(value: pl.Expr, threshold: float | pl.Expr) -> pl.Expr:
    """`value ≥ threshold`, equality within the relative tolerance (null where value is null)."""
    return value >= _lower_edge(threshold)


def below(value: pl.Expr, threshold: float | pl.Expr) -> pl.Expr:
    """`value < threshold`, and not within the relative tolerance of it (null where null)."""
    return value < _lower_edge(threshold)
