"""Group effect sizes: Cox hazard ratios (R `coxph`, Efron ties) and Fine–Gray (cmprsk `crr`).

Both models have one categorical covariate, the group, coded as 0/1 indicators of every group
but the reference. Pure numpy; results are reproduced from R to 1e-6 by
`tests/test_comparisons_reference.py`.

Cox: Newton–Raphson on the Efron partial likelihood from beta = 0, with step halving when the
log-likelihood falls, iterated to full convergence (R ``coxph`` stops when the relative change in
log-likelihood is < 1e-9, which leaves its coefficients within ~1e-10 of the maximum). Wald p,
95 % limits exp(b ± z se), se from the inverse information.

Fine–Gray: a port of cmprsk's ``crr`` (one censoring group, no time-varying covariates):
- censoring weights G(t-) from the Kaplan–Meier of the censoring times, read as ``crr`` reads
  them (``approx`` at t (1 - 100 eps), so at t = 0 it is G(0) after censorings at day 0);
- the risk set at a failure time t: everyone with time >= t, plus those who failed of another
  cause before t, weighted G(t-) / G(their time -); Breslow handling of tied failures;
- ``crr``'s own Newton iteration (from 0, step halving with its Armijo rule, its stopping rule
  with gtol = 1e-6, at most 10 iterations), so the coefficients are the ones ``crr`` returns;
- ``crr``'s sandwich variance H^-1 (sum eta eta') H^-1 (Fortran ``crrvv``), whose eta carries
  the term for the estimated censoring distribution.

A group without an event (of the cause) has a coefficient of minus infinity: the likelihood has
no maximum. Its ratio is None and the model is fitted on the other groups' patients (for Cox this
is exactly the limit exp(b) -> 0, which R approaches with a warning; for Fine–Gray it is R ``crr``
on that subset, censoring weights included). When the reference group has no event, every ratio
is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

from monitoring.errors import UsageError

__all__ = ["Ratio", "cox_ratios", "fine_gray_ratios"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Z95: Final[float] = NormalDist().inv_cdf(0.975)
_EPS: Final[float] = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Ratio:
    """One group against the reference: hazard ratio, 95 % limits, Wald p (None if undefined)."""

    group: str
    hr: float | None
    ci_lower: float | None
    ci_upper: float | None
    p: float | None


def _design(
    group: Sequence[str], levels: Sequence[str], reference: str
) -> tuple[FloatArray, list[str]]:
    if reference not in levels:
        raise UsageError(f"reference group {reference!r} is not among {list(levels)}")
    others = [g for g in levels if g != reference]
    idx = {g: i for i, g in enumerate(others)}
    x = np.zeros((len(group), len(others)))
    for row, g in enumerate(group):
        if g in idx:
            x[row, idx[g]] = 1.0
        elif g not in levels:
            raise UsageError(f"group {g!r} is not among {list(levels)}")
    return x, others


def _ratios(
    others: Sequence[str],
    active: Sequence[bool],
    beta: FloatArray | None,
    var: FloatArray | None,
) -> list[Ratio]:
    out: list[Ratio] = []
    k = 0
    for g, on in zip(others, active, strict=True):
        if not on or beta is None or var is None:
            out.append(Ratio(g, None, None, None, None))
            continue
        b = float(beta[k])
        variance = float(var[k, k])  # negative when the information is near-singular
        se = math.sqrt(variance) if variance > 0 else math.nan
        k += 1
        if not (math.isfinite(b) and math.isfinite(se)) or se <= 0:
            out.append(Ratio(g, None, None, None, None))
            continue
        p = 2 * NormalDist().cdf(-abs(b) / se)
        out.append(Ratio(g, math.exp(b), math.exp(b - Z95 * se), math.exp(b + Z95 * se), p))
    return out


# --------------------------------------------------------------------------------------------
# Cox, Efron ties
# --------------------------------------------------------------------------------------------
def _efron(
    beta: FloatArray, x: FloatArray, inv: IntArray, n_times: int, event: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """Efron log partial likelihood, score and information at `beta`.

    `inv` maps each row to its distinct-time index (ascending)."""
    p = x.shape[1]
    eta = x @ beta
    r = np.exp(eta)
    rx = r[:, None] * x
    rxx = rx[:, :, None] * x[:, None, :]

    def by_time(values: FloatArray) -> FloatArray:
        out = np.zeros((n_times, *values.shape[1:]))
        np.add.at(out, inv, values)
        return out

    w0, w1, w2 = by_time(r), by_time(rx), by_time(rxx)
    s0 = w0[::-1].cumsum(axis=0)[::-1]
    s1 = w1[::-1].cumsum(axis=0)[::-1]
    s2 = w2[::-1].cumsum(axis=0)[::-1]
    ev = event[:, None]
    d = by_time(event)
    d0 = by_time(r * event)
    d1 = by_time(rx * ev)
    d2 = by_time(rxx * event[:, None, None])
    xd = by_time(x * ev)
    loglik = float((eta * event).sum())
    score = xd.sum(axis=0)
    info = np.zeros((p, p))
    max_d = int(d.max()) if d.size else 0
    for ll in range(max_d):
        sel = d > ll
        frac = ll / d[sel]
        a0 = s0[sel] - frac * d0[sel]
        a1 = s1[sel] - frac[:, None] * d1[sel]
        a2 = s2[sel] - frac[:, None, None] * d2[sel]
        loglik -= float(np.log(a0).sum())
        mean = a1 / a0[:, None]
        score = score - mean.sum(axis=0)
        info = info + (a2 / a0[:, None, None]).sum(axis=0) - np.einsum("ti,tj->ij", mean, mean)
    return loglik, score, info


def cox_ratios(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    group: Sequence[str],
    levels: Sequence[str],
    reference: str,
) -> list[Ratio]:
    """Hazard ratio of each group in `levels` (but `reference`) against `reference`.

    Equal to R ``coxph(Surv(time, event) ~ relevel(factor(group), reference))`` (Efron ties):
    ``exp(coef)``, ``exp(confint)`` and the Wald p of ``summary``. Listed in `levels` order.
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event, dtype=np.float64)
    x, others = _design(group, levels, reference)
    events_in = {g: 0.0 for g in levels}
    for g, ev in zip(group, e.tolist(), strict=True):
        events_in[g] += ev
    if events_in[reference] == 0:
        return _ratios(others, [False] * len(others), None, None)
    active = [events_in[g] > 0 for g in others]
    # a group without events has b = -inf: its rows leave every risk set (exp(b) -> 0)
    keep_rows = ~np.any(x[:, [i for i, on in enumerate(active) if not on]] > 0, axis=1)
    xa = x[keep_rows][:, [i for i, on in enumerate(active) if on]]
    ta, ea = t[keep_rows], e[keep_rows]
    if xa.shape[1] == 0:
        return _ratios(others, active, None, None)
    ut, inv = np.unique(ta, return_inverse=True)
    beta = np.zeros(xa.shape[1])
    loglik, score, info = _efron(beta, xa, inv, ut.size, ea)
    for _ in range(100):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            return _ratios(others, active, None, None)
        new = beta + step
        new_ll, new_score, new_info = _efron(new, xa, inv, ut.size, ea)
        halvings = 0
        while (not math.isfinite(new_ll) or new_ll < loglik - 1e-12) and halvings < 30:
            step = step / 2
            new = beta + step
            new_ll, new_score, new_info = _efron(new, xa, inv, ut.size, ea)
            halvings += 1
        beta, loglik, score, info = new, new_ll, new_score, new_info
        if float(np.max(np.abs(step))) < 1e-12:
            break
    try:
        var: FloatArray = np.linalg.inv(info).astype(np.float64)
    except np.linalg.LinAlgError:
        return _ratios(others, active, None, None)
    return _ratios(others, active, beta, var)


# --------------------------------------------------------------------------------------------
# Fine–Gray, as cmprsk crr
# --------------------------------------------------------------------------------------------
def _censoring_weights(t: FloatArray, censored: BoolArray) -> FloatArray:
    """crr's ``uuu``: the censoring KM read just before each time (`t` sorted ascending)."""
    ut, inv = np.unique(t, return_inverse=True)
    total = np.bincount(inv, minlength=ut.size).astype(np.float64)
    cens = np.bincount(inv, weights=censored.astype(np.float64), minlength=ut.size)
    at_risk = t.size - np.concatenate([[0.0], np.cumsum(total)[:-1]])
    g_after = np.cumprod(1.0 - cens / at_risk)
    g_before = np.concatenate([[1.0], g_after[:-1]])
    # approx(..., xout = t * (1 - 100 eps), f = 0): at t = 0 that is G(0) itself
    g = np.where(ut == 0.0, g_after, g_before)
    return g[inv]


@dataclass(frozen=True)
class _FG:
    t: FloatArray
    ici: IntArray  # 0 censored, 1 cause of interest, 2 competing
    x: FloatArray
    act: FloatArray  # 1, or 0 for rows whose coefficient is -inf
    g: FloatArray  # censoring weight G(t-) per row
    fail_t: FloatArray  # distinct failure times, ascending
    fail_count: FloatArray  # failures of interest at each
    fail_g: FloatArray  # G(t-) at each


def _risk_sums(fg: _FG, beta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """S0, S1, S2 of the weighted risk set at each distinct failure time."""
    r = np.exp(fg.x @ beta) * fg.act
    rx = r[:, None] * fg.x
    rxx = rx[:, :, None] * fg.x[:, None, :]
    comp = (fg.ici == 2).astype(np.float64) / fg.g
    # rows with time >= t_f: suffix sums from the first row at t_f
    first = np.searchsorted(fg.t, fg.fail_t, side="left")

    def suffix(values: FloatArray) -> FloatArray:
        cum = np.concatenate([values[::-1].cumsum(axis=0)[::-1], np.zeros((1, *values.shape[1:]))])
        out: FloatArray = cum[first]
        return out

    def prefix(values: FloatArray) -> FloatArray:
        cum = np.concatenate([np.zeros((1, *values.shape[1:])), values.cumsum(axis=0)])
        out: FloatArray = cum[first]
        return out

    gf = fg.fail_g
    s0 = suffix(r) + gf * prefix(r * comp)
    s1 = suffix(rx) + gf[:, None] * prefix(rx * comp[:, None])
    s2 = suffix(rxx) + gf[:, None, None] * prefix(rxx * comp[:, None, None])
    return s0, s1, s2


def _fg_value(fg: _FG, beta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """crr's ``crrfsv``: minus log pseudo-likelihood, minus score, information."""
    s0, s1, s2 = _risk_sums(fg, beta)
    ev = fg.ici == 1
    xe = fg.x[ev].sum(axis=0)
    lik = -float((fg.x[ev] @ beta).sum()) + float((fg.fail_count * np.log(s0)).sum())
    z = s1 / s0[:, None]
    score = -xe + (fg.fail_count[:, None] * z).sum(axis=0)
    info = (
        fg.fail_count[:, None, None] * (s2 / s0[:, None, None] - z[:, :, None] * z[:, None, :])
    ).sum(axis=0)
    return lik, score, info


def _fg_lik(fg: _FG, beta: FloatArray) -> float:
    s0 = _risk_sums(fg, beta)[0]
    ev = fg.ici == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return -float((fg.x[ev] @ beta).sum()) + float((fg.fail_count * np.log(s0)).sum())


def _fg_newton(fg: _FG, gtol: float = 1e-6, maxiter: int = 10) -> FloatArray | None:
    """crr's Newton iteration, step for step; None when it does not converge."""
    b = np.zeros(fg.x.shape[1])
    for ll in range(maxiter + 1):
        f, s, h = _fg_value(fg, b)
        if float(np.max(np.abs(s) * np.maximum(np.abs(b), 1.0))) < max(abs(f), 1.0) * gtol:
            return b
        if ll == maxiter:
            return None
        try:
            sc = -np.linalg.solve(h, s)
        except np.linalg.LinAlgError:
            return None
        bn = b + sc
        fbn = _fg_lik(fg, bn)
        i = 0
        while math.isnan(fbn) or fbn > f + 1e-4 * float(np.sum(sc * s)):
            i += 1
            sc = sc * 0.5
            bn = b + sc
            fbn = _fg_lik(fg, bn)
            if i > 20:
                break
        if i > 20:
            return None
        b = bn
    return None


def _fg_variance(fg: _FG, beta: FloatArray) -> FloatArray:
    """crr's sandwich variance (Fortran ``crrvv``) for one censoring group."""
    t, ici, x, n = fg.t, fg.ici, fg.x, fg.t.size
    s0, s1, s2 = _risk_sums(fg, beta)
    z = s1 / s0[:, None]
    info = (
        fg.fail_count[:, None, None] * (s2 / s0[:, None, None] - z[:, :, None] * z[:, None, :])
    ).sum(axis=0)
    r = np.exp(x @ beta) * fg.act
    # per distinct failure time f: dLambda contributions, each failure row counted
    inc_a = fg.fail_count / s0  # sum over failure rows of 1 / S0
    inc_b = fg.fail_count[:, None] * z / s0[:, None]
    # A(t) = sum over failures with t_f <= t; C(t) = sum over t_f > t (weighted by G(t_f-))
    k_le = np.searchsorted(fg.fail_t, t, side="right")  # failures with t_f <= t_i
    cum_a = np.concatenate([[0.0], inc_a.cumsum()])
    cum_b = np.concatenate([np.zeros((1, x.shape[1])), inc_b.cumsum(axis=0)])
    a_t = cum_a[k_le]
    b_t = cum_b[k_le]
    ga = inc_a * fg.fail_g
    gb = inc_b * fg.fail_g[:, None]
    c_t = ga.sum() - np.concatenate([[0.0], ga.cumsum()])[k_le]
    d_t = gb.sum(axis=0) - np.concatenate([np.zeros((1, x.shape[1])), gb.cumsum(axis=0)])[k_le]
    comp = (ici == 2).astype(np.float64)
    eta = -r[:, None] * (x * a_t[:, None] - b_t)
    eta -= (comp * r / fg.g)[:, None] * (x * c_t[:, None] - d_t)
    ev = ici == 1
    f_index = np.searchsorted(fg.fail_t, t[ev])
    eta[ev] += x[ev] - z[f_index]

    # psi: the censoring-distribution term, at each distinct time with a censoring
    ut, inv = np.unique(t, return_inverse=True)
    total = np.bincount(inv, minlength=ut.size).astype(np.float64)
    n_cens = np.bincount(inv, weights=(ici == 0).astype(np.float64), minlength=ut.size)
    at_risk = n - np.concatenate([[0.0], np.cumsum(total)[:-1]])
    # E3, E4: competing failures strictly before u, weighted r / G(t-)
    comp_w = comp * r / fg.g
    first = np.searchsorted(t, ut, side="left")
    cum_e4 = np.concatenate([[0.0], comp_w.cumsum()])[first]
    cum_e3 = np.concatenate([np.zeros((1, x.shape[1])), (comp_w[:, None] * x).cumsum(axis=0)])[
        first
    ]
    # sums over failures with t_f >= u of G(t_f-)/S0 and G(t_f-) Z / S0
    k_ge = np.searchsorted(fg.fail_t, ut, side="left")
    tail_ga = np.concatenate([ga[::-1].cumsum()[::-1], [0.0]])[k_ge]
    tail_gb = np.concatenate([gb[::-1].cumsum(axis=0)[::-1], np.zeros((1, x.shape[1]))])[k_ge]
    qu = cum_e3 * tail_ga[:, None] - cum_e4[:, None] * tail_gb
    has_cens = n_cens > 0
    qu = np.where(has_cens[:, None], qu, 0.0)
    ss2 = -(qu * (n_cens / at_risk**2)[:, None]).cumsum(axis=0)
    psi = ss2[inv]
    cens = ici == 0
    psi[cens] += qu[inv[cens]] / at_risk[inv[cens]][:, None]
    eta = eta + psi
    v2 = eta.T @ eta
    h = np.linalg.inv(info)
    out: FloatArray = h @ v2 @ h.T
    return out


def fine_gray_ratios(
    time: npt.ArrayLike,
    cause: Sequence[str | None],
    of: str,
    group: Sequence[str],
    levels: Sequence[str],
    reference: str,
) -> list[Ratio]:
    """Subdistribution hazard ratio of cause `of` for each group against `reference`.

    `cause` is "" / None for a censored patient; every other cause competes. Equal to R
    ``crr(time, cause, cov1 = model.matrix(~ relevel(factor(group), reference))[, -1],
    failcode = of, cencode = "")``: ``exp(coef)``, the 95 % limits and p of ``summary``.
    """
    t_raw = np.asarray(time, dtype=np.float64)
    if len(cause) != t_raw.size or len(group) != t_raw.size:
        raise UsageError("time, cause and group must have one value per patient")
    x_all, others = _design(group, levels, reference)
    ici_raw = np.array([0 if not c else (1 if c == of else 2) for c in cause], dtype=np.int64)
    events_in = {g: 0 for g in levels}
    for g, code in zip(group, ici_raw.tolist(), strict=True):
        events_in[g] += int(code == 1)
    if events_in[reference] == 0:
        return _ratios(others, [False] * len(others), None, None)
    active = [events_in[g] > 0 for g in others]
    cols = [i for i, on in enumerate(active) if on]
    if not cols:
        return _ratios(others, active, None, None)
    # a group without an event of the cause is left out of the model, as crr on the others
    keep = ~np.any(x_all[:, [i for i, on in enumerate(active) if not on]] > 0, axis=1)
    order = np.argsort(t_raw[keep], kind="stable")
    t = t_raw[keep][order]
    ici = ici_raw[keep][order]
    x = x_all[keep][order][:, cols]
    weights = _censoring_weights(t, ici == 0)
    fail_t, fail_count = np.unique(t[ici == 1], return_counts=True)
    fail_g = weights[np.searchsorted(t, fail_t, side="left")]
    fg = _FG(
        t=t,
        ici=ici,
        x=x,
        act=np.ones(t.size),
        g=weights,
        fail_t=fail_t.astype(np.float64),
        fail_count=fail_count.astype(np.float64),
        fail_g=fail_g,
    )
    beta = _fg_newton(fg)
    if beta is None:
        return _ratios(others, active, None, None)
    try:
        var = _fg_variance(fg, beta)
    except np.linalg.LinAlgError:
        return _ratios(others, active, None, None)
    return _ratios(others, active, beta, var)
