"""Group comparisons for one endpoint: tests, pairwise tests, hazard ratios, RMST (CONTRACT §5 rev 2).

    analysis frame (group, time_days, event | cause)
        ── compare_groups(frame, endpoint, causes, reference) ──▶ Comparison
              tests          log-rank (KM endpoints) | Gray per relapse cause (cir)
              pairwise       the same test for each pair of groups, Holm over the pairs
              hazard_ratios  Cox, Efron ties, Wald p | Fine–Gray per relapse cause (crr)
        ── rmst(time, event) ──▶ restricted mean survival to 12 and 24 months, per group

The estimators live in `group_tests` and `regression`; this module chooses which belongs to an
endpoint and names the groups. The reference group is `reference`, or by default the group with
the most patients in the endpoint's population, ties broken by name in code-point order.
Every figure matches R to 1e-6 (`tests/test_comparisons_reference.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from monitoring import group_tests, regression
from monitoring.config import DAYS_PER_MONTH
from monitoring.durability_results import GroupTest, HazardRatio, PairwiseTest, Rmst
from monitoring.errors import UsageError

__all__ = [
    "RMST_MONTHS",
    "GroupTest",
    "PairwiseTest",
    "HazardRatio",
    "Rmst",
    "Comparison",
    "rmst",
    "rmst_rows",
    "default_reference",
    "compare_groups",
]

RMST_MONTHS: Final[tuple[int, ...]] = (12, 24)


@dataclass(frozen=True)
class Comparison:
    """Everything that compares the groups of one endpoint (empty with fewer than two groups)."""

    reference: str | None
    tests: tuple[GroupTest, ...]
    pairwise: tuple[PairwiseTest, ...]
    hazard_ratios: tuple[HazardRatio, ...]


def _finite(value: float | None) -> float | None:
    """A plain float, or None where there is no finite value (JSON has no NaN or infinity)."""
    return float(value) if value is not None and math.isfinite(value) else None


def rmst(time: npt.ArrayLike, event: npt.ArrayLike, horizon_days: float) -> Rmst:
    """Restricted mean survival time to `horizon_days` and its se (``months`` left 0).

    R ``print(survfit(Surv(time, event) ~ 1), rmean = horizon_days)``'s ``rmean`` and
    ``se(rmean)`` (survival:::survmean): the area under the KM curve from 0 to the horizon,
    the curve carried flat past its last time; se^2 = sum over times t_i <= horizon of
    A_i^2 d_i / (n_i (n_i - d_i)), A_i the area from t_i to the horizon (0 where n_i = d_i).
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event, dtype=np.float64)
    if t.size == 0:
        return Rmst(0, None, None)
    ut, inv = np.unique(t, return_inverse=True)
    total = np.bincount(inv, minlength=ut.size).astype(np.float64)
    d = np.bincount(inv, weights=e, minlength=ut.size)
    n_risk = t.size - np.concatenate([[0.0], np.cumsum(total)[:-1]])
    surv = np.cumprod((n_risk - d) / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n_risk - d == 0, 0.0, d / (n_risk * (n_risk - d)))
    keep = ut <= horizon_days
    if not keep.any():
        times = np.array([horizon_days])
        s = np.array([1.0])
        h = np.array([0.0])
    else:
        times = np.concatenate([ut[keep], [horizon_days]])
        s = np.concatenate([surv[keep], [surv[keep][-1]]])
        h = np.concatenate([hh[keep], [0.0]])
    start = min(0.0, float(ut[0]))
    delta = np.diff(np.concatenate([[start], times]))
    rectangles = delta * np.concatenate([[1.0], s[:-1]])
    tail = np.cumsum(rectangles[1:][::-1])
    var = float(np.sum(tail**2 * h[::-1][1:]))
    return Rmst(0, float(np.sum(rectangles)) + start, math.sqrt(var))


def rmst_rows(time: npt.ArrayLike, event: npt.ArrayLike) -> tuple[Rmst, ...]:
    """`rmst` at each of `RMST_MONTHS` (days = months x 30.4375)."""
    out = []
    for months in RMST_MONTHS:
        r = rmst(time, event, months * DAYS_PER_MONTH)
        out.append(Rmst(months, _finite(r.estimate), _finite(r.se)))
    return tuple(out)


def default_reference(sizes: Sequence[tuple[str, int]]) -> str:
    """The group with the most patients; ties by name in code-point order."""
    if not sizes:
        raise UsageError("there are no groups to choose a reference from")
    return min(sizes, key=lambda item: (-item[1], item[0]))[0]


def _ratio(r: regression.Ratio, reference: str, cause: str | None) -> HazardRatio:
    return HazardRatio(
        r.group,
        reference,
        cause,
        _finite(r.hr),
        _finite(r.ci_lower),
        _finite(r.ci_upper),
        _finite(r.p),
    )


def _pairs(levels: Sequence[str]) -> list[tuple[str, str]]:
    return list(combinations(levels, 2))


def compare_groups(
    frame: pl.DataFrame,
    endpoint: str,
    relapse_causes: Sequence[str] = (),
    reference: str | None = None,
) -> Comparison:
    """Tests, pairwise tests and hazard ratios across the groups of an analysis frame.

    `frame` has ``group`` (in its natural order), ``time_days`` and ``event`` (KM endpoints) or
    ``cause`` (``cir``, "" censored); for ``cir`` one test and one set of ratios per cause in
    `relapse_causes`, every other cause competing. `reference` must be one of the groups present
    (`UsageError` naming them otherwise). With fewer than two groups: an empty `Comparison`.
    """
    labels = [str(g) for g in frame["group"].unique(maintain_order=False).sort().to_list()]
    if reference is not None and reference not in labels:
        raise UsageError(
            f"--reference {reference!r} is not a group of this analysis. Groups: "
            + ", ".join(labels)
        )
    if len(labels) < 2:
        return Comparison(
            reference=reference if labels else None, tests=(), pairwise=(), hazard_ratios=()
        )
    group = [str(g) for g in frame["group"].cast(pl.String).to_list()]
    time = frame["time_days"].to_numpy().astype(np.float64)
    sizes = [(g, group.count(g)) for g in labels]
    ref = reference if reference is not None else default_reference(sizes)
    tests: list[GroupTest] = []
    pairwise: list[PairwiseTest] = []
    ratios: list[HazardRatio] = []

    def pairwise_for(cause: str | None, p_of: list[float | None]) -> None:
        adjusted = group_tests.holm(p_of)
        for (a, b), p, ph in zip(_pairs(labels), p_of, adjusted, strict=True):
            pairwise.append(PairwiseTest(a, b, cause, _finite(p), _finite(ph)))

    if endpoint == "cir":
        causes = [str(c) if c is not None else "" for c in frame["cause"].to_list()]
        for cause in relapse_causes:
            t = group_tests.gray(time, causes, group, cause)
            tests.append(GroupTest("gray", cause, _finite(t.statistic), t.df, _finite(t.p)))
            p_of: list[float | None] = []
            for a, b in _pairs(labels):
                sel = [i for i, g in enumerate(group) if g in (a, b)]
                pt = group_tests.gray(
                    time[sel], [causes[i] for i in sel], [group[i] for i in sel], cause
                )
                p_of.append(pt.p)
            pairwise_for(cause, p_of)
            for r in regression.fine_gray_ratios(time, causes, cause, group, labels, ref):
                ratios.append(_ratio(r, ref, cause))
    else:
        event = frame["event"].cast(pl.Float64).to_numpy()
        t = group_tests.logrank(time, event, group)
        tests.append(GroupTest("logrank", None, _finite(t.statistic), t.df, _finite(t.p)))
        p_of = []
        for a, b in _pairs(labels):
            mask = np.array([g in (a, b) for g in group])
            p_of.append(
                group_tests.logrank(
                    time[mask], event[mask], np.asarray(group, dtype=object)[mask]
                ).p
            )
        pairwise_for(None, p_of)
        for r in regression.cox_ratios(time, event, group, labels, ref):
            ratios.append(_ratio(r, ref, None))
    return Comparison(ref, tuple(tests), tuple(pairwise), tuple(ratios))
