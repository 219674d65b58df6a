"""Tests that compare groups: log-rank (R `survdiff`) and Gray's test (cmprsk `cuminc`), Holm.

Pure functions over arrays; nothing here knows an endpoint or draws. Numbers are reproduced
from R to 1e-6 by `tests/test_comparisons_reference.py` against golden files made by
`tests/reference/make_comparisons_reference.R`.

- `logrank`: the k-sample log-rank test of R ``survdiff(Surv(time, event) ~ group)``, with its
  chi-square statistic and degrees of freedom (groups with expected events, minus one).
- `gray`: Gray's (1988) k-sample test for the cumulative incidence of one cause, exactly
  cmprsk's Fortran ``crstm``/``crst`` with rho = 0 and one stratum (the test that ``cuminc``
  prints): events of every cause and censorings on the same day are handled together, as one
  block per distinct time; the statistic is s' V^-1 s over the first k - 1 groups. cmprsk
  reports statistic -1 (p = 1) when V is singular; we report None.
- `holm`: R ``p.adjust(p, "holm")`` (missing p-values are left out of the count, as R does).

Input order never matters and nothing is random.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitoring.errors import UsageError

__all__ = ["ChiSquareTest", "logrank", "gray", "holm"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: cuminc's rank tolerance (R ``qr`` default) for the variance of Gray's scores
_QR_TOL = 1e-7


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test across groups; all None when there is nothing to test."""

    statistic: float | None
    df: int | None
    p: float | None


_NO_TEST = ChiSquareTest(None, None, None)


def _chi2_upper(df: int, statistic: float) -> float:
    """R pchisq(statistic, df, lower.tail = FALSE); scipy is imported only when a test is run."""
    from scipy.special import chdtrc

    return float(chdtrc(df, statistic))


def _codes(group: npt.ArrayLike, n: int) -> tuple[IntArray, list[object]]:
    raw = np.asarray(group, dtype=object)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise UsageError(f"group must be one value per time ({n}), got shape {raw.shape}")
    levels: dict[object, int] = {}
    codes = np.array([levels.setdefault(v, len(levels)) for v in raw.tolist()], dtype=np.int64)
    return codes, list(levels)


def _times(time: npt.ArrayLike) -> FloatArray:
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise UsageError("survival times must be one-dimensional finite days >= 0")
    return t


def logrank(time: npt.ArrayLike, event: npt.ArrayLike, group: npt.ArrayLike) -> ChiSquareTest:
    """R ``survdiff(Surv(time, event) ~ group)``: chi-square, df and p.

    Nothing to test (None everywhere) with fewer than two groups having expected events, or a
    singular variance (R stops with an error there).
    """
    t = _times(time)
    e = np.asarray(event, dtype=np.float64)
    if e.shape != t.shape or not np.all((e == 0) | (e == 1)):
        raise UsageError("event must be one 1/0 value per time")
    g, levels = _codes(group, t.size)
    k = len(levels)
    if k < 2:
        return _NO_TEST
    ut, inv = np.unique(t, return_inverse=True)
    d_at = np.zeros((ut.size, k))
    rows_at = np.zeros((ut.size, k))
    np.add.at(d_at, (inv, g), e)
    np.add.at(rows_at, (inv, g), 1.0)
    n_at = rows_at[::-1].cumsum(axis=0)[::-1]
    d = d_at.sum(axis=1)
    n = n_at.sum(axis=1)
    has = d > 0
    d, n, n_at, d_at = d[has], n[has], n_at[has], d_at[has]
    observed = d_at.sum(axis=0)
    expected = (n_at * (d / n)[:, None]).sum(axis=0)
    c = np.zeros_like(d)
    multi = n > 1
    c[multi] = d[multi] * (n[multi] - d[multi]) / (n[multi] - 1)
    frac = n_at / n[:, None]
    var = np.diag(c @ frac) - (frac * c[:, None]).T @ frac
    used = expected > 0
    if int(used.sum()) < 2:
        return _NO_TEST
    diff = (observed - expected)[used][1:]
    vv = var[np.ix_(used, used)][1:, 1:]
    try:
        chisq = float(diff @ np.linalg.solve(vv, diff))
    except np.linalg.LinAlgError:
        return _NO_TEST
    df = int(used.sum()) - 1
    return ChiSquareTest(chisq, df, _chi2_upper(df, chisq))


def gray(
    time: npt.ArrayLike, cause: Sequence[str | None], group: npt.ArrayLike, of: str
) -> ChiSquareTest:
    """Gray's test that the cumulative incidence of cause `of` is equal across groups.

    `cause` is each patient's event cause, "" or None when censored; every other cause competes.
    Equal to the ``Tests`` row of R ``cmprsk::cuminc(time, cause, group)`` for cause `of`
    (rho = 0, no strata). None everywhere with fewer than two groups or no event of `of`.
    """
    t = _times(time)
    if len(cause) != t.size:
        raise UsageError(f"cause must be one value per time ({t.size}), got {len(cause)}")
    m = np.array([0 if not c else (1 if c == of else 2) for c in cause], dtype=np.int64)
    g, levels = _codes(group, t.size)
    ng = len(levels)
    if ng < 2 or not np.any(m == 1):
        return _NO_TEST
    order = np.argsort(t, kind="stable")
    s, v = _crst(t[order], m[order], g[order], ng)
    rank = np.linalg.matrix_rank(v, tol=_QR_TOL * max(float(np.abs(v).max()), 1e-300))
    if rank < ng - 1:
        return ChiSquareTest(None, ng - 1, None)
    stat = float(s @ np.linalg.solve(v, s))
    return ChiSquareTest(stat, ng - 1, _chi2_upper(ng - 1, stat))


def _crst(y: FloatArray, m: IntArray, ig: IntArray, ng: int) -> tuple[FloatArray, FloatArray]:
    """cmprsk's ``crst`` (rho = 0): scores of the first ng - 1 groups and their variance.

    `y` sorted ascending; `m` 0 censored, 1 the cause of interest, 2 another cause; `ig` group
    codes 0..ng-1. A line-by-line port, vectorised over groups; comments name Gray's variables.
    """
    ng1 = ng - 1
    rs = np.bincount(ig, minlength=ng).astype(np.float64)  # at risk per group
    s = np.zeros(ng1)
    v = np.zeros((ng1, ng1))
    f1m = np.zeros(ng)  # cumulative incidence, left-continuous
    f1 = np.zeros(ng)  # right-continuous
    skmm = np.ones(ng)  # KM of any event, left-continuous
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    fm = 0.0
    f = 0.0
    fb = 1.0  # (1 - fm) ** rho with rho = 0
    starts = np.flatnonzero(np.concatenate([[True], y[1:] > y[:-1]]))
    ends = np.concatenate([starts[1:], [y.size]])
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        d = np.zeros((3, ng))
        np.add.at(d, (m[lo:hi], ig[lo:hi]), 1.0)
        nd1 = float(d[1].sum())
        nd2 = float(d[2].sum())
        if nd1 > 0 or nd2 > 0:
            live = rs > 0
            td = d[1] + d[2]
            skm = np.where(live, skmm * (rs - td) / np.where(live, rs, 1.0), skm)
            f1 = np.where(live, f1m + skmm * d[1] / np.where(live, rs, 1.0), f1)
            h = np.where(live, rs / np.where(live, skmm, 1.0), 0.0)  # rs / skmm per group
            tr = float(h.sum())
            tq = float((np.where(live, rs * (1 - f1m) / np.where(live, skmm, 1.0), 0.0)).sum())
            f = fm + nd1 / tr
            a = -fb * np.outer(h, h) / tr
            np.fill_diagonal(a, fb * h * (1 - h / tr))
            c = c + a * nd1 / (tr * (1 - fm))
            s = s + np.where(
                live[:ng1],
                fb * (d[1][:ng1] - nd1 * rs[:ng1] * (1 - f1m[:ng1]) / (skmm[:ng1] * tq)),
                0.0,
            )
            if nd1 > 0:
                for k in np.flatnonzero(live).tolist():
                    t4 = 1 - (1 - f) / skm[k] if skm[k] > 0 else 1.0
                    t5 = 1 - (nd1 - 1) / (tr * skmm[k] - 1) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[k] * nd1 / (tr * rs[k])
                    v3[k] += t4 * t4 * t3
                    t1 = a[:ng1, k] - t4 * c[:ng1, k]
                    v2[:, k] += t1 * t4 * t3
                    v += np.outer(t1, t1) * t3
            if nd2 > 0:
                for k in np.flatnonzero((skm > 0) & (d[2] > 0)).tolist():
                    t4 = (1 - f) / skm[k]
                    t5 = 1 - (d[2][k] - 1) / (rs[k] - 1) if d[2][k] > 1 else 1.0
                    t3 = t5 * skmm[k] ** 2 * d[2][k] / rs[k] ** 2
                    v3[k] += t4 * t4 * t3
                    t1 = t4 * c[:ng1, k]
                    v2[:, k] -= t1 * t4 * t3
                    v += np.outer(t1, t1) * t3
        np.subtract.at(rs, ig[lo:hi], 1.0)
        fm = f
        f1m = f1.copy()
        skmm = skm.copy()
    cc = c[:ng1, :]
    v = v + (cc * v3) @ cc.T + cc @ v2.T + v2 @ cc.T
    return s, v


def holm(p: Sequence[float | None]) -> list[float | None]:
    """R ``p.adjust(p, method = "holm")``; None stays None and is not counted."""
    present = [(i, float(x)) for i, x in enumerate(p) if x is not None and not math.isnan(x)]
    n = len(present)
    out: list[float | None] = [None] * len(p)
    running = 0.0
    for rank, (i, value) in enumerate(sorted(present, key=lambda item: item[1])):
        running = max(running, (n - rank) * value)
        out[i] = min(1.0, running)
    return out
