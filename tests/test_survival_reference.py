"""monitoring.survival against golden numbers from R survival / cmprsk (tests/reference/).

The reference files are made by `Rscript tests/reference/make_reference.R` and committed (CI has
no R). Every estimate and limit is compared to 1e-6 absolute, every count exactly.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from monitoring.survival import (
    cif_table,
    km_median,
    km_table,
    landmark_rows,
    logrank_p,
    reverse_km_median_followup,
)

REF = Path(__file__).parent / "reference"
TOL = 1e-6
KM_DATASETS = ("km_small", "km_groups", "km_heavy_censor", "km_flat")
CR_DATASETS = ("cr_small", "cr_sim")


def _read(name: str) -> list[dict[str, str]]:
    with (REF / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> float | None:
    """R's value: '' is NA, 'Inf' infinite."""
    return None if text in ("", "NA", "NaN") else float(text)


def _close(ours: float | None, r: float | None, what: str) -> None:
    assert r is not None, f"{what}: R gave NA"
    assert ours is not None, f"{what}: we gave null, R {r}"
    assert abs(ours - r) <= TOL, f"{what}: ours {ours!r} != R {r!r}"


def _same_or_na(ours: float | None, r: float | None, what: str) -> None:
    if r is None:
        assert ours is None, f"{what}: R gave NA, we gave {ours}"
    else:
        _close(ours, r, what)


def _dataset(name: str) -> dict[str, np.ndarray]:
    rows = _read(f"{name}.csv")
    assert rows, f"{name}.csv is empty"
    out: dict[str, np.ndarray] = {"time": np.array([float(r["time"]) for r in rows])}
    if "event" in rows[0]:
        out["event"] = np.array([int(r["event"]) for r in rows])
    if "group" in rows[0]:
        out["group"] = np.array([r["group"] for r in rows], dtype=object)
    if "cause" in rows[0]:
        out["cause"] = np.array([r["cause"] for r in rows], dtype=object)
    return out


def _subset(name: str, group: str) -> tuple[np.ndarray, np.ndarray]:
    d = _dataset(name)
    keep = np.ones(d["time"].size, dtype=bool) if group == "all" else d["group"] == group
    return d["time"][keep], d["event"][keep]


def _keys(rows: list[dict[str, str]], *cols: str) -> list[tuple[str, ...]]:
    seen: dict[tuple[str, ...], None] = {}
    for r in rows:
        seen[tuple(r[c] for c in cols)] = None
    return list(seen)


KM_REF = _read("ref_km_table.csv")
MEDIAN_REF = _read("ref_km_median.csv")
LANDMARK_REF = _read("ref_km_landmarks.csv")
LOGRANK_REF = _read("ref_logrank.csv")
CIF_REF = _read("ref_cif.csv")
KM_CURVES = _keys(KM_REF, "dataset", "group")


def test_reference_files_cover_every_dataset() -> None:
    """Guard against a truncated or stale reference set passing vacuously."""
    assert {d for d, _ in KM_CURVES} == set(KM_DATASETS)
    # small: all, A, B; groups: all + 3 products; heavy: all; flat: drop, end, zero
    assert len(KM_CURVES) == 11
    assert _keys(MEDIAN_REF, "dataset", "group") == KM_CURVES
    assert _keys(LANDMARK_REF, "dataset", "group") == KM_CURVES
    assert {r["dataset"] for r in CIF_REF} == set(CR_DATASETS)
    assert len(LOGRANK_REF) == 4
    # the hard cases are present: day-0 events, S = 0, a flat 0.5, an undefined median
    assert any(r["time"] == "0" and int(r["n_event"]) > 0 for r in KM_REF)
    assert any(r["surv"] == "0" for r in KM_REF)
    assert any(r["median"] == "" for r in MEDIAN_REF)
    assert any(r["time"] == "0" and int(r["n_event"]) > 0 for r in CIF_REF)
    assert any(r["reported"] == "FALSE" for r in LANDMARK_REF)  # landmarks past the last time


@pytest.mark.parametrize(("dataset", "group"), KM_CURVES, ids=[f"{d}-{g}" for d, g in KM_CURVES])
def test_km_table_matches_survfit(dataset: str, group: str) -> None:
    time, event = _subset(dataset, group)
    ref = [r for r in KM_REF if r["dataset"] == dataset and r["group"] == group]
    ours = km_table(time, event).to_dicts()

    if float(ref[0]["time"]) != 0.0:
        # R has no row at 0 when nobody has time 0; ours always has one
        assert ours[0] == {
            "time_days": 0.0,
            "at_risk": time.size,
            "events": 0,
            "censored": 0,
            "estimate": 1.0,
            "ci_lower": 1.0,
            "ci_upper": 1.0,
        }
        ours = ours[1:]
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref, strict=True):
        where = f"{dataset}/{group} t={r['time']}"
        assert o["time_days"] == float(r["time"]), where
        assert (o["at_risk"], o["events"], o["censored"]) == (
            int(r["n_risk"]),
            int(r["n_event"]),
            int(r["n_censor"]),
        ), where
        surv = _num(r["surv"])
        _close(o["estimate"], surv, f"{where} estimate")
        for col, rcol in (("ci_lower", "lower"), ("ci_upper", "upper")):
            rv = _num(r[rcol])
            if rv is None:
                # R's log-log limits are NA exactly where S is 1 or 0 (module doc: 1,1 and null)
                assert surv in (0.0, 1.0), f"{where} {col}: unexpected NA in R"
                assert o[col] == (1.0 if surv == 1.0 else None), f"{where} {col}"
            else:
                _close(o[col], rv, f"{where} {col}")


@pytest.mark.parametrize(("dataset", "group"), KM_CURVES, ids=[f"{d}-{g}" for d, g in KM_CURVES])
def test_km_median_matches_quantile_survfit(dataset: str, group: str) -> None:
    time, event = _subset(dataset, group)
    (r,) = [r for r in MEDIAN_REF if r["dataset"] == dataset and r["group"] == group]
    assert (time.size, int(event.sum())) == (int(r["n"]), int(r["events"]))
    med, lo, hi = km_median(time, event)
    where = f"{dataset}/{group}"
    _same_or_na(med, _num(r["median"]), f"{where} median")
    _same_or_na(lo, _num(r["median_lower"]), f"{where} median lower")
    _same_or_na(hi, _num(r["median_upper"]), f"{where} median upper")
    # print(survfit) agrees with quantile() except when S stays at exactly 0.5 to the end
    if (dataset, group) != ("km_flat", "end"):
        _same_or_na(med, _num(r["print_median"]), f"{where} print median")
        _same_or_na(lo, _num(r["print_lower"]), f"{where} print lower")
        _same_or_na(hi, _num(r["print_upper"]), f"{where} print upper")


def test_median_flat_at_half_to_the_end_follows_quantile_not_print() -> None:
    """Documented choice: S = 0.5 from day 2 to the last time (4) -> midpoint 3, as quantile()."""
    (r,) = [r for r in MEDIAN_REF if r["dataset"] == "km_flat" and r["group"] == "end"]
    assert (_num(r["median"]), _num(r["print_median"])) == (3.0, 2.0)
    assert km_median(*_subset("km_flat", "end"))[0] == 3.0
    (r,) = [r for r in MEDIAN_REF if r["dataset"] == "km_flat" and r["group"] == "drop"]
    assert km_median(*_subset("km_flat", "drop"))[0] == _num(r["median"]) == 4.0  # (3 + 5) / 2


@pytest.mark.parametrize(("dataset", "group"), KM_CURVES, ids=[f"{d}-{g}" for d, g in KM_CURVES])
def test_reverse_km_median_matches_survfit(dataset: str, group: str) -> None:
    time, event = _subset(dataset, group)
    (r,) = [r for r in MEDIAN_REF if r["dataset"] == dataset and r["group"] == group]
    _same_or_na(
        reverse_km_median_followup(time, event),
        _num(r["reverse_km_median"]),
        f"{dataset}/{group} reverse-KM median",
    )


@pytest.mark.parametrize(("dataset", "group"), KM_CURVES, ids=[f"{d}-{g}" for d, g in KM_CURVES])
def test_landmarks_match_summary_survfit(dataset: str, group: str) -> None:
    time, event = _subset(dataset, group)
    ref = [r for r in LANDMARK_REF if r["dataset"] == dataset and r["group"] == group]
    days = [float(r["time"]) for r in ref]
    rows = landmark_rows(km_table(time, event), days)
    assert [row["time_days"] for row in rows] == days
    for o, r in zip(rows, ref, strict=True):
        where = f"{dataset}/{group} day {r['time']}"
        if r["reported"] == "FALSE":
            assert o == {
                "time_days": float(r["time"]),
                "estimate": None,
                "ci_lower": None,
                "ci_upper": None,
                "at_risk": None,
            }, where
            continue
        assert o["at_risk"] == int(r["n_risk"]), where
        surv = _num(r["surv"])
        _close(o["estimate"], surv, f"{where} estimate")
        for col, rcol in (("ci_lower", "lower"), ("ci_upper", "upper")):
            rv = _num(r[rcol])
            if rv is None:
                assert surv in (0.0, 1.0), f"{where} {col}: unexpected NA in R"
                assert o[col] == (1.0 if surv == 1.0 else None), f"{where} {col}"
            else:
                _close(o[col], rv, f"{where} {col}")


@pytest.mark.parametrize("row", LOGRANK_REF, ids=[r["label"] for r in LOGRANK_REF])
def test_logrank_matches_survdiff(row: dict[str, str]) -> None:
    d = _dataset(row["dataset"])
    keep = np.isin(d["group"], row["groups"].split("|"))
    p = logrank_p(d["time"][keep], d["event"][keep], d["group"][keep])
    r = float(row["p"])
    _close(p, r, f"{row['label']} p")
    assert p is not None and math.isclose(p, r, rel_tol=1e-6), (p, r)


@pytest.mark.parametrize("dataset", CR_DATASETS)
def test_cif_matches_cuminc_and_multistate_survfit(dataset: str) -> None:
    d = _dataset(dataset)
    ref = [r for r in CIF_REF if r["dataset"] == dataset]
    causes = list(dict.fromkeys(r["cause"] for r in ref))
    assert len(causes) >= 2
    ours = cif_table(d["time"], d["cause"], causes).to_dicts()
    assert len(ours) == len(ref)
    per_cause: dict[str, int] = defaultdict(int)
    for o, r in zip(ours, ref, strict=True):
        where = f"{dataset}/{r['cause']} t={r['time']}"
        per_cause[o["cause"]] += 1
        assert (o["cause"], o["time_days"]) == (r["cause"], float(r["time"])), where
        assert (o["at_risk"], o["events"], o["censored"]) == (
            int(r["n_risk"]),
            int(r["n_event"]),
            int(r["n_censor"]),
        ), where
        est = _num(r["est"])
        _close(o["estimate"], est, f"{where} estimate vs cuminc")
        _close(o["estimate"], _num(r["pstate"]), f"{where} estimate vs survfit pstate")
        for col, rcol in (("ci_lower", "lower"), ("ci_upper", "upper")):
            rv = _num(r[rcol])
            if rv is None:
                # R's formula is 0/0 where the estimate is 0: we give the degenerate (0, 0)
                assert est == 0.0, f"{where} {col}: unexpected NA in R"
                assert o[col] == 0.0, where
            else:
                _close(o[col], rv, f"{where} {col}")
    assert len(set(per_cause.values())) == 1  # same time grid for every cause


@pytest.mark.parametrize(("dataset", "group"), KM_CURVES, ids=[f"{d}-{g}" for d, g in KM_CURVES])
def test_km_table_also_matches_lifelines(dataset: str, group: str) -> None:
    """A second independent implementation: lifelines' KaplanMeierFitter (exponential Greenwood)."""
    from lifelines import KaplanMeierFitter

    time, event = _subset(dataset, group)
    fit = KaplanMeierFitter().fit(time, event)
    ours = km_table(time, event)
    np.testing.assert_array_equal(fit.survival_function_.index.to_numpy(), ours["time_days"])
    np.testing.assert_allclose(
        fit.survival_function_.iloc[:, 0].to_numpy(), ours["estimate"], rtol=0, atol=TOL
    )
    for j, col in enumerate(("ci_lower", "ci_upper")):
        theirs = fit.confidence_interval_.iloc[:, j].to_numpy()
        mine = ours[col].fill_null(np.nan).to_numpy()
        defined = (ours["estimate"] > 0).to_numpy()  # lifelines also has no limits at S = 0
        np.testing.assert_allclose(theirs[defined], mine[defined], rtol=0, atol=TOL)
        assert np.isnan(mine[~defined]).all()
