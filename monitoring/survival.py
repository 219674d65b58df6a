"""Survival estimators: Kaplan–Meier, Aalen–Johansen, log-rank, as polars frames.

Pure functions over arrays (numpy arrays, lists, polars Series): nothing here reads the store,
knows an endpoint, or draws. The endpoint layer builds `time` / `event` (or `cause`) per group and
calls these. Every number is reproduced from R to 1e-6 by `tests/test_survival_reference.py`,
against golden files made by `tests/reference/make_reference.R` (R `survival` and `cmprsk`).

Conventions (CONTRACT.md §3):

- Times are days since the origin, >= 0. Events at day 0 (EFS non-responders) are events at 0:
  the table's time-0 row has ``at_risk = n`` and counts them, and its estimate is S(0) after them.
- Ties: every event and censoring on the same day is counted on that day, events before
  censorings (the usual convention, as R). Nothing is random; input order never matters.
- KM limits are 95 % log-log ("exponential Greenwood"), R ``conf.type = "log-log"``.
- The estimators are written in numpy (lifelines' KaplanMeierFitter gives the same KM; its
  AalenJohansenFitter breaks ties by random jitter, which the contract forbids).

Boundaries, where the log-log transform is undefined:

- KM: S = 1 (no event yet) gives limits (1, 1); S = 0 gives null limits. R's survfit object
  stores NA for the S = 1 rows after time 0 under log-log (its ``summary`` reports 1, 1 only on
  the row it inserts at time 0); we report the degenerate interval (1, 1) everywhere S = 1.
- CIF: estimate 0 (no event of that cause yet) gives (0, 0); estimate 1 gives null limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from monitoring import group_tests
from monitoring.errors import UsageError

__all__ = [
    "KM_COLUMNS",
    "CIF_COLUMNS",
    "km_table",
    "km_median",
    "landmark_rows",
    "reverse_km_median_followup",
    "logrank_p",
    "cif_table",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: two-sided 95 % normal quantile, R's qnorm(0.975) (not 1.96)
Z95: Final[float] = NormalDist().inv_cdf(0.975)
#: R's tolerance in quantile.survfit for "the curve is exactly at the quantile"
_QUANTILE_TOL: Final[float] = math.sqrt(np.finfo(np.float64).eps)

KM_SCHEMA: Final[dict[str, type[pl.DataType]]] = {
    "time_days": pl.Float64,
    "at_risk": pl.Int64,
    "events": pl.Int64,
    "censored": pl.Int64,
    "estimate": pl.Float64,
    "ci_lower": pl.Float64,
    "ci_upper": pl.Float64,
}
KM_COLUMNS: Final[tuple[str, ...]] = tuple(KM_SCHEMA)
CIF_SCHEMA: Final[dict[str, type[pl.DataType]]] = {"cause": pl.String, **KM_SCHEMA}
CIF_COLUMNS: Final[tuple[str, ...]] = tuple(CIF_SCHEMA)

#: a cumulative incidence this close to 1 is 1 (all patients failed of that cause)
_ONE_TOL: Final[float] = 1e-12

LandmarkRow = dict[str, float | int | None]


# --------------------------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------------------------
def _times(time: npt.ArrayLike) -> FloatArray:
    try:
        t = np.asarray(time, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"survival times must be numbers of days: {exc}") from exc
    if t.ndim != 1:
        raise UsageError(f"survival times must be one-dimensional, got shape {t.shape}")
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise UsageError(
            f"survival times must be finite days >= 0; positions {where} are not "
            f"(values {t[bad][:5].tolist()}). Check the origin and last-contact dates."
        )
    return t


def _events(event: npt.ArrayLike, n: int) -> IntArray:
    e = np.asarray(event)
    if e.ndim != 1 or e.shape[0] != n:
        raise UsageError(f"event must be one value per time ({n}), got shape {e.shape}")
    try:
        ef = e.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"event must be 1/0 or true/false: {exc}") from exc
    bad = ~((ef == 0) | (ef == 1))
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise UsageError(f"event must be 1/0 or true/false; positions {where} are not")
    return ef.astype(np.int64)


def _counts(
    t: FloatArray, indicators: Sequence[IntArray]
) -> tuple[FloatArray, IntArray, list[IntArray], IntArray]:
    """Distinct times (0 always first), number at risk, per-indicator counts, total rows per time."""
    ut, inv = np.unique(t, return_inverse=True)
    total = np.bincount(inv, minlength=ut.size).astype(np.int64)
    counts = [
        np.bincount(inv, weights=ind, minlength=ut.size).astype(np.int64) for ind in indicators
    ]
    if ut.size == 0 or ut[0] != 0.0:
        ut = np.concatenate([[0.0], ut])
        total = np.concatenate([[0], total]).astype(np.int64)
        counts = [np.concatenate([[0], c]).astype(np.int64) for c in counts]
    at_risk = t.size - np.concatenate([[0], np.cumsum(total)[:-1]]).astype(np.int64)
    return ut.astype(np.float64), at_risk, counts, total


def _col(values: FloatArray) -> pl.Series:
    return pl.Series(values=values, dtype=pl.Float64, nan_to_null=True)


# --------------------------------------------------------------------------------------------
# Kaplan–Meier
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _KM:
    time: FloatArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    estimate: FloatArray
    lower: FloatArray  # NaN where undefined (S = 0)
    upper: FloatArray


def _km(t: FloatArray, e: IntArray) -> _KM:
    times, n_risk, (d,), total = _counts(t, [e])
    nr = n_risk.astype(np.float64)
    df = d.astype(np.float64)
    surv: FloatArray = np.cumprod((nr - df) / nr, dtype=np.float64)
    # Greenwood on the log scale (R survfit std.err): sum d / (n (n - d)); infinite when n == d
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(d > 0, df / (nr * (nr - df)), 0.0)
    se = np.sqrt(np.cumsum(term))
    lower = np.full(surv.shape, np.nan)
    upper = np.full(surv.shape, np.nan)
    inner = (surv > 0) & (surv < 1)
    log_s = np.log(surv[inner])
    loglog = np.log(-log_s)
    width = Z95 * se[inner] / log_s
    lower[inner] = np.exp(-np.exp(loglog - width))
    upper[inner] = np.exp(-np.exp(loglog + width))
    lower[surv >= 1.0] = 1.0
    upper[surv >= 1.0] = 1.0
    return _KM(times, n_risk, d, total - d, surv, lower, upper)


def _empty(schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def km_table(time: npt.ArrayLike, event: npt.ArrayLike) -> pl.DataFrame:
    """Kaplan–Meier estimate with 95 % log-log limits, one row per distinct time, time 0 included.

    `time` are days >= 0, `event` 1/0 (or booleans). Columns: ``time_days, at_risk, events,
    censored, estimate, ci_lower, ci_upper``. ``at_risk`` is the number with time >= the row's
    time; ``estimate`` is S(t) just after the row's events. The row at time 0 always exists
    (``at_risk = n``); it counts events and censorings at day 0 when there are any. Equal to R
    ``survfit(Surv(time, event) ~ 1, conf.type = "log-log")`` (see the module doc for S = 1).
    An empty input gives an empty frame.
    """
    t = _times(time)
    e = _events(event, t.size)
    if t.size == 0:
        return _empty(KM_SCHEMA)
    km = _km(t, e)
    return pl.DataFrame(
        {
            "time_days": _col(km.time),
            "at_risk": pl.Series(values=km.at_risk, dtype=pl.Int64),
            "events": pl.Series(values=km.events, dtype=pl.Int64),
            "censored": pl.Series(values=km.censored, dtype=pl.Int64),
            "estimate": _col(km.estimate),
            "ci_lower": _col(km.lower),
            "ci_upper": _col(km.upper),
        }
    )


def _first_at_least(values: FloatArray, index: IntArray, v: float) -> int | None:
    """R ``approx(values, index, v, method = "constant", f = 1)``: NaNs dropped, values sorted."""
    ok = ~np.isnan(values)
    xs = values[ok]
    ys = index[ok]
    if xs.size == 0:
        return None
    order = np.argsort(xs, kind="stable")
    xs = xs[order]
    ys = ys[order]
    if v < xs[0] or v > xs[-1]:
        return None
    k = int(np.searchsorted(xs, v, side="left"))
    return int(ys[k])


def _findq(x: FloatArray, y: FloatArray, p: float, tol: float = _QUANTILE_TOL) -> float | None:
    """R survival:::findq for one probability: where the curve ``y = 1 - S`` first reaches p.

    When the curve sits at exactly p (within `tol`) over an interval, the answer is the midpoint
    of that interval; when it sits at p up to the last time, the midpoint with the last time.
    """
    finite = y[~np.isnan(y)]
    if finite.size == 0 or float(finite.max()) < p:
        return None
    xmax = float(x[-1])
    keep: list[int] = []
    seen: set[float] = set()
    seen_nan = False
    for i, v in enumerate(y.tolist()):
        if math.isnan(v):
            if not seen_nan:
                seen_nan = True
                keep.append(i)
        elif v not in seen:
            seen.add(v)
            keep.append(i)
    xs = x[keep]
    ys = y[keep]
    idx = np.arange(ys.size, dtype=np.int64)
    i1 = _first_at_least(ys + tol, idx, p)
    i2 = _first_at_least(ys - tol, idx, p)
    quant = None if i1 is None or i2 is None else (float(xs[i1]) + float(xs[i2])) / 2
    last = float(ys[-1])
    if not math.isnan(last) and abs(p - last) < tol:
        quant = None if i1 is None else (float(xs[i1]) + xmax) / 2
    return quant


def km_median(
    time: npt.ArrayLike, event: npt.ArrayLike
) -> tuple[float | None, float | None, float | None]:
    """Median survival and its 95 % CI, ``(median, lower, upper)``; None where undefined.

    Exactly R ``quantile(survfit(..., conf.type = "log-log"), 0.5)``: the first time S(t) <= 0.5;
    if S is exactly 0.5 (within sqrt(machine eps)) over an interval, the midpoint of it; the CI
    limits are where the lower and upper log-log curves reach 0.5 by the same rule. This equals
    ``print(survfit)`` except when S stays at exactly 0.5 up to the last time, where print gives
    the time S reached 0.5 and quantile (and this function) the midpoint with the last time.
    """
    t = _times(time)
    e = _events(event, t.size)
    if t.size == 0:
        return None, None, None
    km = _km(t, e)
    x = np.concatenate([[0.0], km.time])
    return (
        _findq(x, np.concatenate([[0.0], 1.0 - km.estimate]), 0.5),
        _findq(x, np.concatenate([[0.0], 1.0 - km.lower]), 0.5),
        _findq(x, np.concatenate([[0.0], 1.0 - km.upper]), 0.5),
    )


def reverse_km_median_followup(time: npt.ArrayLike, event: npt.ArrayLike) -> float | None:
    """Median follow-up by reverse Kaplan–Meier: deaths censored, censorings as events.

    Equal to the median of R ``survfit(Surv(time, 1 - event) ~ 1)``; None when that curve never
    reaches 0.5 (e.g. every patient died).
    """
    t = _times(time)
    e = _events(event, t.size)
    return km_median(t, 1 - e)[0]


def landmark_rows(table: pl.DataFrame, days: Sequence[float]) -> list[LandmarkRow]:
    """Estimate, limits and number at risk at each landmark day, as R ``summary(fit, times)``.

    `table` is a `km_table` (or one cause of a `cif_table`). For each day t: the estimate and
    limits of the last row with time <= t, and ``at_risk`` = number with time >= t (the at-risk
    count of the first row at or after t). A landmark after the last time in the table
    (R ``extend = FALSE``) gives nulls. Returns one dict per day, in the given order, with keys
    ``time_days, estimate, ci_lower, ci_upper, at_risk``.
    """
    needed = ("time_days", "at_risk", "estimate", "ci_lower", "ci_upper")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise UsageError(f"landmark_rows needs a km_table or cif_table; missing columns {missing}")
    if "cause" in table.columns and table["cause"].n_unique() > 1:
        raise UsageError(
            "landmark_rows got a cif_table with several causes; filter it to one cause first, "
            "e.g. table.filter(pl.col('cause') == 'relapse')"
        )
    table = table.sort("time_days")
    times = table["time_days"].to_numpy().astype(np.float64)
    at_risk = table["at_risk"].to_list()
    est = table["estimate"].to_list()
    lo = table["ci_lower"].to_list()
    hi = table["ci_upper"].to_list()
    out: list[LandmarkRow] = []
    for day in days:
        t = float(day)
        row: LandmarkRow = {
            "time_days": t,
            "estimate": None,
            "ci_lower": None,
            "ci_upper": None,
            "at_risk": None,
        }
        if times.size and math.isfinite(t) and t <= times[-1]:
            i1 = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
            i2 = int(np.searchsorted(times, t, side="left"))
            row.update(estimate=est[i1], ci_lower=lo[i1], ci_upper=hi[i1], at_risk=at_risk[i2])
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------
# log-rank
# --------------------------------------------------------------------------------------------
def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def logrank_p(time: npt.ArrayLike, event: npt.ArrayLike, group: npt.ArrayLike) -> float | None:
    """Log-rank test p-value across the groups, equal to R ``survdiff(Surv(time, event) ~ group)``.

    Rows with a missing group (None / NaN) are left out, as R does. None when fewer than two
    groups have any expected events (R then reports df = 0: there is nothing to test), or when
    the variance matrix is singular (R stops with an error).
    """
    t = _times(time)
    e = _events(event, t.size)
    g_raw = np.asarray(group, dtype=object)
    if g_raw.ndim != 1 or g_raw.shape[0] != t.size:
        raise UsageError(f"group must be one value per time ({t.size}), got shape {g_raw.shape}")
    keep = np.array([not _is_missing(v) for v in g_raw.tolist()], dtype=bool)
    return group_tests.logrank(t[keep], e[keep], g_raw[keep]).p


# --------------------------------------------------------------------------------------------
# competing risks: Aalen–Johansen with cmprsk's variance
# --------------------------------------------------------------------------------------------
def _cause_codes(cause: npt.ArrayLike, causes: Sequence[str], n: int) -> IntArray:
    """0 = censored, i + 1 = causes[i]."""
    raw = np.asarray(cause, dtype=object)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise UsageError(f"cause must be one value per time ({n}), got shape {raw.shape}")
    lookup = {c: i + 1 for i, c in enumerate(causes)}
    codes = np.zeros(n, dtype=np.int64)
    unknown: set[str] = set()
    for i, v in enumerate(raw.tolist()):
        if _is_missing(v) or v == "":
            continue
        code = lookup.get(v) if isinstance(v, str) else None
        if code is None:
            unknown.add(repr(v))
        else:
            codes[i] = code
    if unknown:
        raise UsageError(
            f"cause values {sorted(unknown)} are not among causes {list(causes)}; "
            "list every cause (use '' or None for censored)"
        )
    return codes


def cif_table(time: npt.ArrayLike, cause: npt.ArrayLike, causes: Sequence[str]) -> pl.DataFrame:
    """Aalen–Johansen cumulative incidence per cause, with 95 % limits, time 0 included.

    `cause` is the cause name of each patient's event, ``""`` or None when censored; every
    non-empty value must be in `causes`. Events of different causes on the same day are all
    counted on that day (no tie-breaking). Rows: for each cause in the order of `causes`, one row
    per distinct time of the whole data (time 0 always). Columns: ``cause, time_days, at_risk,
    events`` (of that cause), ``censored, estimate, ci_lower, ci_upper``.

    Estimate: F_k(t) = sum over t_j <= t of S(t_j-) d_kj / n_j, S the KM of any event; equal to
    R ``cmprsk::cuminc`` and to ``survfit(Surv(time, factor(status)) ~ 1)``'s pstate.

    Limits: cmprsk's variance (Gray's ``cinc`` routine, the ``var`` that ``cuminc`` returns)
    with the log(-log) transform, F^exp(±z sqrt(var) / (F log F)), z = qnorm(0.975): the usual
    cmprsk-based interval, reproducible in R from ``cuminc``'s ``var`` read at each time as
    ``timepoints`` does (cmprsk reports it on days with an event of the cause; on a day with only
    competing events it is unchanged). F = 0 gives (0, 0); F = 1 (within 1e-12, as rounding
    leaves it) gives null limits.
    """
    names = list(causes)
    if not names or len(set(names)) != len(names) or any(c == "" for c in names):
        raise UsageError(f"causes must be distinct non-empty names, got {names}")
    t = _times(time)
    codes = _cause_codes(cause, names, t.size)
    if t.size == 0:
        return _empty(CIF_SCHEMA)
    indicators = [(codes == i + 1).astype(np.int64) for i in range(len(names))]
    times, n_risk, per_cause, total = _counts(t, indicators)
    d_any = np.sum(per_cause, axis=0).astype(np.int64)
    censored = total - d_any

    frames = []
    for name, d_k in zip(names, per_cause, strict=True):
        est, var = _cinc(n_risk, d_any, d_k)
        lower = np.full(est.shape, np.nan)
        upper = np.full(est.shape, np.nan)
        zero = est <= 0
        lower[zero] = 0.0
        upper[zero] = 0.0
        # F = 1 (every patient failed of this cause) can come out as 1 - 1e-16 by rounding
        inner = ~zero & (est < 1.0 - _ONE_TOL)
        f = est[inner]
        a = Z95 * np.sqrt(np.maximum(var[inner], 0.0)) / (f * np.log(f))
        lower[inner] = f ** np.exp(-a)
        upper[inner] = f ** np.exp(a)
        frames.append(
            pl.DataFrame(
                {
                    "cause": pl.Series(values=[name] * times.size, dtype=pl.String),
                    "time_days": _col(times),
                    "at_risk": pl.Series(values=n_risk, dtype=pl.Int64),
                    "events": pl.Series(values=d_k, dtype=pl.Int64),
                    "censored": pl.Series(values=censored, dtype=pl.Int64),
                    "estimate": _col(est),
                    "ci_lower": _col(lower),
                    "ci_upper": _col(upper),
                }
            )
        )
    return pl.concat(frames, how="vertical")


def _cinc(n_risk: IntArray, d_any: IntArray, d_k: IntArray) -> tuple[FloatArray, FloatArray]:
    """Cumulative incidence and its variance at each distinct time, as cmprsk's Fortran ``cinc``."""
    m = n_risk.size
    est = np.zeros(m)
    var = np.zeros(m)
    fk = 1.0  # KM of any event just before the current time
    f = 0.0
    v = 0.0
    v1 = v2 = v3 = 0.0
    for j in range(m):
        nd = int(d_any[j])
        if nd > 0:
            rs = float(n_risk[j])
            nd1 = int(d_k[j])
            nd2 = nd - nd1
            fkn = fk * (rs - nd) / rs
            if nd1 > 0:
                f = f + fk * nd1 / rs
            if nd2 > 0 and fkn > 0:
                t5 = 1.0 if nd2 == 1 else 1.0 - (nd2 - 1.0) / (rs - 1.0)
                t6 = fk * fk * t5 * nd2 / (rs * rs)
                t3 = 1.0 / fkn
                t4 = f / fkn
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
            if nd1 > 0:
                t5 = 1.0 if nd1 == 1 else 1.0 - (nd1 - 1.0) / (rs - 1.0)
                t6 = fk * fk * t5 * nd1 / (rs * rs)
                t3 = 1.0 / fkn if fkn > 0 else 0.0
                t4 = 1.0 + t3 * f
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
                v = v1 + f * f * v3 - 2.0 * f * v2
            fk = fkn
        est[j] = f
        var[j] = v
    return est, var
