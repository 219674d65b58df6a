"""The calibrated, deterministic synthetic cohort (fully synthetic: no real patient is in it).

    make_cohort(n, seed=7, data_cut=date(2026, 6, 30)) -> Cohort(patients, visits)
    write_csv(cohort, out_dir) -> (out_dir / "patients.csv", out_dir / "visits.csv")
    messy_visits_export(cohort) -> bytes   # a deliberately messy visits export (demo data)

Two layers, both vectorised over numpy arrays (no loop over patients or visits):

1. **A latent clinical course per patient** (`_course`): early treatment-related death, response
   at day 28, CAR peak and loss of persistence, B-cell recovery shortly after the CAR is lost,
   relapse as the first of competing latent relapses (CD19-negative/dim/partial *escape* that can
   happen during aplasia, *lineage switch* mostly in KMT2A-rearranged leukemia, *CD19-positive*
   relapse only after the CAR lost function, more likely the earlier the B cells recovered),
   consolidative HSCT and new therapy that sometimes prevent a relapse, death (non-response,
   relapse, non-relapse mortality) and loss to follow-up.
2. **What a clinic records** (`_visits`, `_measure`): a protocol schedule (baseline day -30..-1,
   day 28, monthly blood checks and 3-monthly marrows in year 1, 3-monthly to year 2, 6-monthly
   to year 5, then yearly) with date jitter and missed visits; an unscheduled visit at relapse and
   a repeat marrow 2-4 weeks after the first re-emerging MRD; per-visit values derived from the
   latent course: MRD from a leukemic clone growing exponentially towards the relapse date,
   CAR copies/ug from a peak at about day 10 decaying to below 50 at loss of persistence, B cells
   near 0 in aplasia and rising after recovery, IgG low in aplasia with IVIG.

`LatentModel` holds every tunable parameter; its defaults are calibrated (on 2000 patients) to
DOMAIN.md section 6: CR/CRi ~85 % of infused, 12-month EFS ~50 %, 12-month OS ~75 %, relapse
CD19 status ~50 % positive / ~40 % negative-dim-partial / a few % lineage switch
(tests/test_synthetic.py checks it with tolerances from sampling error).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from monitoring.config import DAYS_PER_MONTH
from monitoring.schemas import CD19_STATUS, DEATH_CAUSE, DISEASE_STATUS, RELAPSE_SITE, SEX
from monitoring.schemas import polars_schema as _polars_schema

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "DEFAULT_DATA_CUT",
    "PRODUCTS",
    "SITES",
    "Cohort",
    "LatentModel",
    "make_cohort",
    "messy_visits_export",
    "write_csv",
]

DEFAULT_DATA_CUT = date(2026, 6, 30)
SITES: tuple[str, ...] = ("PHL", "SEA", "CIN", "LON", "MUN", "BCN")
_SITE_P = (0.24, 0.16, 0.18, 0.16, 0.14, 0.12)
_NGS_SITES = (True, True, True, False, False, False)  # NGS-MRD routine at marrow visits
_PCR_SITES = (False, False, False, True, True, False)  # EuroMRD RQ-PCR at marrow visits
PRODUCTS: tuple[str, ...] = (
    "tisagenlecleucel",
    "obecabtagene autoleucel",
    "academic CD19-41BB",
    "CD19/CD22",
)
_PRODUCT_P = (0.70, 0.07, 0.15, 0.08)
_DUAL_TARGET = 3  # index of CD19/CD22 in PRODUCTS

# code indices into the schema tuples
_CR, _CRI, _RELAPSE, _NO_RESPONSE, _NOT_ASSESSED = (DISEASE_STATUS.index(c) for c in DISEASE_STATUS)
_POS, _DIM, _PARTIAL, _NEG, _LS = (
    CD19_STATUS.index(c) for c in ("positive", "dim", "partial", "negative", "lineage_switch")
)
_D_RELAPSE, _D_TRM, _D_INFECTION, _D_OTHER, _D_UNKNOWN = (
    DEATH_CAUSE.index(c) for c in ("relapse", "treatment_related", "infection", "other", "unknown")
)

# visit kinds
_BASE, _BM, _PB, _FU, _REL, _CONF = range(6)

_NGS_LOD = 1e-6
_FLOW_LOD = 1e-4
_PCR_LOD = 1e-5
_PB_TO_BM = 0.25  # peripheral-blood MRD level relative to marrow
_NGS_GAIN = 1.3  # NGS reads a little higher than flow on the same marrow

_COMMENTS: tuple[str, ...] = (
    "",  # 0 = no comment
    "labs drawn at local hospital",
    "sample haemodiluted, repeat if clinically indicated",
    "IVIG given at local hospital",
    "attends school, well",
    "MRD sample sent to central lab",
    "transition to adult clinic planned",
    "CNS1 on lumbar puncture",
    "mild URTI, afebrile",
    "relapse confirmed by flow cytometry; salvage therapy planned",  # 9 relapse
    "repeat marrow to confirm MRD",  # 10 confirmation
    "day-28 marrow delayed (infection)",  # 11 delayed day 28
    "second malignancy diagnosed; CAR transgene testing requested",  # 12
    "first visit after allogeneic HSCT",  # 13
)
_N_GENERIC_COMMENTS = 8


@dataclass(frozen=True)
class LatentModel:
    """Every tunable parameter of the latent clinical course and the recording process.

    Times are days since infusion; `*_median_days` with `*_sigma` describe lognormal times.
    The defaults are the calibrated values (see the module docstring).
    """

    # population
    p_adult: float = 0.13
    p_prior_hsct: float = 0.35
    p_prior_blinatumomab: float = 0.30
    p_kmt2a: float = 0.06
    p_kmt2a_infant: float = 0.45
    p_low_burden: float = 0.40  # baseline marrow blasts below 5 %
    # response at day 28
    p_early_death: float = 0.02
    response_logit: float = 2.5
    response_high_burden: float = -0.9  # baseline blasts >= 50 %
    response_blinatumomab: float = -0.8
    response_adult: float = -0.4
    response_kmt2a: float = -0.3
    p_cri: float = 0.28
    # CAR expansion and persistence; B-cell recovery follows loss of persistence
    car_log10_cmax: float = 4.4
    car_log10_cmax_sd: float = 0.45
    car_persist_median_days: float = 300.0
    car_persist_sigma: float = 1.0
    bcr_lag_median_days: float = 30.0
    # relapse: competing latent relapses
    p_escape: float = 0.19
    escape_high_burden: float = 1.6
    escape_blinatumomab: float = 1.4
    escape_adult: float = 1.3
    escape_dual_target: float = 0.5
    escape_median_days: float = 170.0
    escape_sigma: float = 0.6
    p_escape_dim: float = 0.2
    p_escape_partial: float = 0.15
    p_lineage_switch_kmt2a: float = 0.35
    p_lineage_switch_other: float = 0.006
    lineage_switch_median_days: float = 150.0
    p_cd19pos_early_bcr: float = 0.72  # B-cell recovery on or before day 183
    p_cd19pos_mid_bcr: float = 0.5  # day 184-365
    p_cd19pos_late_bcr: float = 0.15
    p_cd19pos_aplasia: float = 0.01
    cd19pos_lag_median_days: float = 100.0
    growth_days_per_log: float = 30.0  # leukemic clone: days per 10-fold rise before relapse
    p_clone_after_d28: float = 0.85  # an early relapse clone still undetectable at day 28
    p_d28_residual: float = 0.04  # low-level day-28 MRD that the CAR T cells still clear
    p_d28_residual_relapse: float = 0.15  # ... in patients who will relapse
    p_relapse_cd19_unknown: float = 0.03
    # interventions in remission
    p_newtx_early_bcr: float = 0.15  # reinfusion / other therapy for early B-cell recovery
    p_newtx_mrd: float = 0.08  # pre-emptive therapy for MRD re-emergence
    p_newtx_prevents: float = 0.5
    p_hsct_early_bcr: float = 0.30
    p_hsct_other: float = 0.10
    hsct_prior_factor: float = 0.4  # second transplants are rarer
    p_hsct_prevents: float = 0.6
    p_hsct_trm: float = 0.10
    # death
    p_nrm_year1: float = 0.035
    late_nrm_per_year: float = 0.004
    p_nonresponder_death: float = 0.85
    nonresponder_death_median_days: float = 130.0
    p_post_relapse_cure: float = 0.3
    post_relapse_death_median_days: float = 180.0
    lineage_switch_death_median_days: float = 150.0
    # recording
    ltfu_scale_years: float = 25.0  # exponential time to loss to follow-up (after day 120)
    p_missed_visit: float = 0.08
    p_d28_delayed: float = 0.04
    p_confirm_mrd: float = 0.85
    p_new_malignancy: float = 0.005
    p_comment: float = 0.03
    p_ngs_low_input: float = 0.1  # NGS result with LOD 1e-5 instead of 1e-6
    p_pb_mrd_year1: float = 0.5  # blood MRD at a monthly blood check in year 1
    p_pb_mrd_later: float = 0.6  # blood MRD at a follow-up visit without marrow


DEFAULT_MODEL = LatentModel()


@dataclass(frozen=True)
class Cohort:
    """A synthetic cohort: the two canonical tables (CONTRACT.md section 1), typed."""

    patients: pl.DataFrame
    visits: pl.DataFrame


# ---- patients ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Patients:
    n: int
    cut_day: IntArray  # data cut as day since infusion
    infusion_epoch: IntArray  # infusion date as days since 1970-01-01
    site: IntArray
    sex: IntArray
    age: FloatArray
    product: IntArray
    prior_hsct: BoolArray
    prior_blina: BoolArray
    kmt2a: BoolArray
    burden: FloatArray  # baseline marrow leukemia fraction (0-1)
    blasts: FloatArray  # baseline marrow blasts %, as recorded


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> FloatArray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _round(x: FloatArray, decimals: int = 0) -> FloatArray:
    return np.round(x, decimals).astype(np.float64)


def _round_sig(x: FloatArray, digits: int = 2) -> FloatArray:
    """Round positive values to `digits` significant digits (exact decimal doubles)."""
    out = np.zeros_like(x)
    pos = (x > 1e-12) & np.isfinite(x)
    exponent = np.floor(np.log10(x[pos]))
    scale = 10.0 ** (digits - 1 - exponent)
    out[pos] = np.round(x[pos] * scale) / scale
    return out


def _patients(rng: np.random.Generator, n: int, data_cut: date, m: LatentModel) -> _Patients:
    cut_epoch = (data_cut - date(1970, 1, 1)).days
    cut_day = rng.integers(14, 2192, size=n)  # infusions over the 6 years before the cut
    site = rng.choice(len(SITES), size=n, p=_SITE_P)
    sex = rng.choice(len(SEX), size=n, p=(0.44, 0.55, 0.01))
    adult = rng.random(n) < m.p_adult
    child_age = np.minimum(0.5 + rng.gamma(2.0, 4.0, size=n), 17.9)
    age = _round(np.where(adult, rng.uniform(18.0, 30.0, size=n), child_age), 1)
    product = rng.choice(len(PRODUCTS), size=n, p=_PRODUCT_P)
    prior_hsct = rng.random(n) < m.p_prior_hsct
    prior_blina = rng.random(n) < m.p_prior_blinatumomab
    kmt2a = rng.random(n) < np.where(age < 1.0, m.p_kmt2a_infant, m.p_kmt2a)
    low = rng.random(n) < m.p_low_burden
    low_burden = 10.0 ** rng.uniform(-4.0, np.log10(0.049), size=n)
    high_burden = 0.05 + 0.93 * rng.beta(0.7, 1.4, size=n)
    burden = np.where(low, low_burden, high_burden)
    blasts = _round(burden * 100.0, 1)
    return _Patients(
        n=n,
        cut_day=cut_day.astype(np.int64),
        infusion_epoch=(cut_epoch - cut_day).astype(np.int64),
        site=site.astype(np.int64),
        sex=sex.astype(np.int64),
        age=age,
        product=product.astype(np.int64),
        prior_hsct=prior_hsct,
        prior_blina=prior_blina,
        kmt2a=kmt2a,
        burden=burden,
        blasts=blasts,
    )


# ---- latent course -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Course:
    responder: BoolArray
    early_death: BoolArray
    cri: BoolArray
    log10_cmax: FloatArray
    t_car: FloatArray  # CAR copies fall below 50/ug
    t_bcr: FloatArray  # B-cell recovery (loss of aplasia)
    t_clone: FloatArray  # the leukemic clone would reach 5 % blasts (inf = no clone)
    t_clear: FloatArray  # an intervention eliminates the clone (inf = never)
    growth: FloatArray  # days per log10 of clone growth
    d28_residual: FloatArray  # marrow MRD level at the day-28 marrow, cleared by month 3
    t_rel: FloatArray  # observed relapse day (floor), inf = none
    rel_type: IntArray  # CD19_STATUS index of the relapse
    rel_cd19_known: BoolArray
    rel_site: IntArray  # RELAPSE_SITE index
    rel_blasts: FloatArray
    nr_blasts: FloatArray
    nr_cd19: IntArray
    t_hsct: FloatArray  # observed
    t_newtx: FloatArray  # observed
    t_death: FloatArray  # observed
    death_cause: IntArray
    ltfu: BoolArray  # follow-up ended by loss to follow-up
    end: FloatArray  # last day a visit can happen
    ivig_user: BoolArray
    igg_base: FloatArray
    t_new_malignancy: FloatArray


def _course(rng: np.random.Generator, p: _Patients, m: LatentModel) -> _Course:
    n = p.n
    inf = np.inf
    high = p.blasts >= 50.0
    adult = p.age >= 18.0
    # response
    early_death = rng.random(n) < m.p_early_death
    logit = (
        m.response_logit
        + m.response_high_burden * high
        + m.response_blinatumomab * p.prior_blina
        + m.response_adult * adult
        + m.response_kmt2a * p.kmt2a
    )
    responder = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))) & ~early_death
    cri = rng.random(n) < m.p_cri
    # CAR and B cells
    log10_cmax = m.car_log10_cmax + m.car_log10_cmax_sd * rng.standard_normal(n)
    log10_cmax = np.where(responder, log10_cmax, log10_cmax - 0.3)
    t_car_resp = _lognormal(rng, m.car_persist_median_days, m.car_persist_sigma, n)
    t_car_nr = _lognormal(rng, 60.0, 0.6, n)
    t_car = np.maximum(np.where(responder, t_car_resp, t_car_nr), 30.0)
    t_bcr = t_car + _lognormal(rng, m.bcr_lag_median_days, 0.5, n)
    # latent relapses
    p_esc = (
        m.p_escape
        * np.where(high, m.escape_high_burden, 1.0)
        * np.where(p.prior_blina, m.escape_blinatumomab, 1.0)
        * np.where(adult, m.escape_adult, 1.0)
        * np.where(p.product == _DUAL_TARGET, m.escape_dual_target, 1.0)
    )
    esc = rng.random(n) < np.minimum(p_esc, 0.95)
    t_esc = np.maximum(_lognormal(rng, m.escape_median_days, m.escape_sigma, n), 50.0)
    ls = rng.random(n) < np.where(p.kmt2a, m.p_lineage_switch_kmt2a, m.p_lineage_switch_other)
    t_ls = np.maximum(_lognormal(rng, m.lineage_switch_median_days, 0.6, n), 50.0)
    p_pos = np.where(
        t_bcr <= 183,
        m.p_cd19pos_early_bcr,
        np.where(t_bcr <= 365, m.p_cd19pos_mid_bcr, m.p_cd19pos_late_bcr),
    )
    pos = rng.random(n) < p_pos
    t_pos = t_bcr + _lognormal(rng, m.cd19pos_lag_median_days, 0.5, n)
    pos_apl = rng.random(n) < m.p_cd19pos_aplasia
    t_pos_apl = np.maximum(_lognormal(rng, 200.0, 0.6, n), 50.0)
    t_pos_any = np.minimum(np.where(pos, t_pos, inf), np.where(pos_apl, t_pos_apl, inf))
    candidates = np.stack([t_pos_any, np.where(esc, t_esc, inf), np.where(ls, t_ls, inf)], axis=1)
    which = np.argmin(candidates, axis=1)
    t_clone = np.where(responder, candidates.min(axis=1), inf)
    u_type = rng.random(n)
    escape_type = np.where(
        u_type < m.p_escape_dim,
        _DIM,
        np.where(u_type < m.p_escape_dim + m.p_escape_partial, _PARTIAL, _NEG),
    )
    rel_type = np.select([which == 0, which == 1], [_POS, escape_type], _LS).astype(np.int64)
    # interventions that can prevent the relapse (the clone is cleared at that date)
    bcr_seen = t_bcr + 15.0
    reinf = (
        responder
        & (t_bcr <= 183)
        & (bcr_seen + 14.0 < t_clone)
        & (rng.random(n) < m.p_newtx_early_bcr)
    )
    t_newtx = np.where(reinf, bcr_seen + rng.uniform(14.0, 35.0, n), inf)
    pre = (
        responder
        & np.isfinite(t_clone)
        & (t_clone > 120.0)
        & ~reinf
        & (rng.random(n) < m.p_newtx_mrd)
    )
    t_newtx = np.where(pre, t_clone - rng.uniform(20.0, 45.0, n), t_newtx)
    prevent_newtx = rng.random(n) < m.p_newtx_prevents
    t_clear = np.where(
        (reinf & (rel_type == _POS) | pre) & (t_clone > t_newtx) & prevent_newtx,
        t_newtx,
        inf,
    )
    early_bcr = t_bcr <= 183
    p_hsct = np.where(early_bcr, m.p_hsct_early_bcr, m.p_hsct_other) * np.where(
        p.prior_hsct, m.hsct_prior_factor, 1.0
    )
    t_h = np.where(early_bcr, t_bcr + rng.uniform(30.0, 75.0, n), rng.uniform(60.0, 160.0, n))
    hsct = responder & (rng.random(n) < p_hsct) & (t_h < np.minimum(t_clone, t_clear) - 14.0)
    t_hsct = np.where(hsct, t_h, inf)
    prevent_hsct = hsct & (t_clone > t_hsct) & (rng.random(n) < m.p_hsct_prevents)
    t_clear = np.where(prevent_hsct, np.minimum(t_clear, t_hsct), t_clear)
    t_rel = np.where(t_clear < t_clone, inf, t_clone)
    # the clone rises 10-fold every `growth` days up to 5 % blasts at t_clone; most clones of
    # early relapses emerge after the day-28 marrow (faster growth), the rest are MRD+ at day 28
    growth = m.growth_days_per_log * np.exp(0.25 * rng.standard_normal(n))
    emerges = rng.random(n) < m.p_clone_after_d28
    fast = np.maximum((t_clone - 45.0) / np.log10(0.05 / _NGS_LOD), 6.0)
    growth = np.where(emerges & np.isfinite(t_clone), np.minimum(growth, fast), growth)
    # deaths
    u_nrm = rng.random(n)
    t_nrm = np.where(
        u_nrm < m.p_nrm_year1,
        rng.uniform(20.0, 365.0, n),
        365.0 + rng.exponential(365.25 / m.late_nrm_per_year, n),
    )
    nrm_cause = np.where(
        u_nrm < m.p_nrm_year1,
        rng.choice([_D_INFECTION, _D_TRM, _D_OTHER, _D_UNKNOWN], size=n, p=(0.4, 0.35, 0.2, 0.05)),
        rng.choice([_D_OTHER, _D_INFECTION, _D_UNKNOWN], size=n, p=(0.6, 0.2, 0.2)),
    )
    hsct_trm = hsct & (rng.random(n) < m.p_hsct_trm)
    t_htrm = np.where(hsct_trm, t_hsct + _lognormal(rng, 90.0, 0.7, n), inf)
    htrm_cause = rng.choice([_D_TRM, _D_INFECTION], size=n)
    nrm_cause = np.where(t_htrm < t_nrm, htrm_cause, nrm_cause)
    t_nrm = np.minimum(t_nrm, t_htrm)
    relapsed = t_rel < t_nrm
    t_rel = np.where(relapsed, t_rel, inf)
    is_ls = rel_type == _LS
    cured = ~is_ls & (rng.random(n) < m.p_post_relapse_cure)
    post = np.where(
        is_ls,
        _lognormal(rng, m.lineage_switch_death_median_days, 0.6, n),
        _lognormal(rng, m.post_relapse_death_median_days, 0.8, n),
    )
    post = np.maximum(np.where(cured, inf, post), 7.0)
    rel_cause = rng.choice([_D_RELAPSE, _D_TRM, _D_INFECTION], size=n, p=(0.82, 0.1, 0.08))
    nr_dies = rng.random(n) < m.p_nonresponder_death
    t_nr_death = np.where(
        nr_dies, np.maximum(_lognormal(rng, m.nonresponder_death_median_days, 0.8, n), 35.0), inf
    )
    nr_cause = rng.choice([_D_RELAPSE, _D_INFECTION, _D_TRM], size=n, p=(0.85, 0.08, 0.07))
    t_early = rng.uniform(3.0, 28.0, n)
    early_cause = rng.choice([_D_TRM, _D_INFECTION], size=n, p=(0.6, 0.4))
    t_death = np.select(
        [early_death, responder & relapsed, responder],
        [t_early, t_rel + post, t_nrm],
        t_nr_death,
    )
    death_cause = np.select(
        [early_death, responder & relapsed, responder],
        [early_cause, rel_cause, nrm_cause],
        nr_cause,
    ).astype(np.int64)
    # loss to follow-up and the end of observation
    t_ltfu = 120.0 + rng.exponential(m.ltfu_scale_years * 365.25, n)
    cut = p.cut_day.astype(np.float64)
    t_death = np.floor(t_death)
    end = np.floor(np.minimum(np.minimum(cut, t_ltfu), t_death))
    dead = t_death <= end
    ltfu = ~dead & (t_ltfu < cut)
    # relapse details
    rel_site = rng.choice(len(RELAPSE_SITE), size=n, p=(0.74, 0.10, 0.02, 0.04, 0.10))
    male = p.sex == SEX.index("M")
    rel_site = np.where((rel_site == RELAPSE_SITE.index("testis")) & ~male, 0, rel_site)
    isolated_em = np.isin(rel_site, [1, 2, 3])
    rel_blasts = np.where(
        isolated_em,
        _round(rng.uniform(0.0, 4.0, n), 1),
        _round(np.minimum(5.0 + _lognormal(rng, 30.0, 0.8, n), 98.0), 1),
    )
    rel_blasts = np.where(is_ls, np.maximum(rel_blasts, 20.0), rel_blasts)
    rel_site = np.where(is_ls, 0, rel_site)
    nr_blasts = _round(np.clip(np.maximum(p.blasts, 5.0) * rng.uniform(0.3, 1.5, n), 5.0, 99.0), 1)
    return _Course(
        responder=responder,
        early_death=early_death,
        cri=cri,
        log10_cmax=log10_cmax,
        t_car=t_car,
        t_bcr=t_bcr,
        t_clone=t_clone,
        t_clear=t_clear,
        growth=growth,
        d28_residual=np.where(
            responder
            & (
                rng.random(n)
                < np.where(np.isfinite(t_clone), m.p_d28_residual_relapse, m.p_d28_residual)
            ),
            10.0 ** rng.uniform(-5.5, -3.3, n),
            0.0,
        ),
        t_rel=np.where(np.floor(t_rel) <= end, np.floor(t_rel), inf),
        rel_type=rel_type,
        rel_cd19_known=rng.random(n) >= m.p_relapse_cd19_unknown,
        rel_site=rel_site.astype(np.int64),
        rel_blasts=rel_blasts,
        nr_blasts=nr_blasts,
        nr_cd19=np.where(rng.random(n) < 0.75, _POS, _NEG).astype(np.int64),
        t_hsct=np.where(np.floor(t_hsct) <= end, np.floor(t_hsct), inf),
        t_newtx=np.where(np.floor(t_newtx) <= end, np.floor(t_newtx), inf),
        t_death=np.where(dead, t_death, inf),
        death_cause=death_cause,
        ltfu=ltfu,
        end=end,
        ivig_user=rng.random(n) < 0.75,
        igg_base=np.clip(650.0 + 180.0 * rng.standard_normal(n), 150.0, 1400.0),
        t_new_malignancy=np.where(
            rng.random(n) < m.p_new_malignancy, rng.uniform(200.0, 3000.0, n), inf
        ),
    )


# ---- visit skeleton ------------------------------------------------------------------------------
def _template() -> tuple[FloatArray, IntArray, IntArray, FloatArray]:
    """Protocol visits after infusion: nominal day, kind, jitter half-width, P(marrow)."""
    rows: list[tuple[float, int, int, float]] = [(28.0, _BM, 7, 1.0)]
    for month in range(2, 13):
        kind = _BM if month % 3 == 0 else _PB
        rows.append((round(month * DAYS_PER_MONTH), kind, 7, 1.0 if kind == _BM else 0.0))
    for month in (15, 18, 21, 24):
        rows.append((round(month * DAYS_PER_MONTH), _FU, 14, 0.5 if month % 6 == 0 else 0.2))
    for month in range(30, 61, 6):
        rows.append((round(month * DAYS_PER_MONTH), _FU, 21, 0.1))
    for month in range(72, 181, 12):
        rows.append((round(month * DAYS_PER_MONTH), _FU, 30, 0.03))
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0], arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64), arr[:, 3]


@dataclass(frozen=True)
class _Visits:
    pid: IntArray  # patient index
    day: FloatArray  # days since infusion
    kind: IntArray
    marrow: BoolArray
    ngs: BoolArray  # NGS-MRD done (marrow, or blood when pb_mrd)
    pcr: BoolArray
    pb_mrd: BoolArray  # blood MRD done (non-marrow visits)
    ngs_lod: FloatArray  # NGS limit of detection reached (depends on DNA input)
    noise: FloatArray  # multiplicative measurement noise of the MRD level
    d28_delayed: BoolArray

    def take(self, keep: npt.NDArray[np.intp] | BoolArray) -> _Visits:
        return _Visits(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @staticmethod
    def concat(parts: list[_Visits]) -> _Visits:
        return _Visits(
            **{f.name: np.concatenate([getattr(v, f.name) for v in parts]) for f in fields(_Visits)}
        )

    @staticmethod
    def new(
        rng: np.random.Generator,
        pid: IntArray,
        day: FloatArray,
        kind: int | IntArray,
        marrow: BoolArray,
        ngs: BoolArray,
        pcr: BoolArray,
        pb_mrd: BoolArray | None = None,
        d28_delayed: BoolArray | None = None,
        p_low_input: float = DEFAULT_MODEL.p_ngs_low_input,
    ) -> _Visits:
        size = pid.size
        none = np.zeros(size, dtype=np.bool_)
        return _Visits(
            pid=pid.astype(np.int64),
            day=day.astype(np.float64),
            kind=np.broadcast_to(np.asarray(kind, dtype=np.int64), (size,)).copy(),
            marrow=marrow,
            ngs=ngs,
            pcr=pcr,
            pb_mrd=none if pb_mrd is None else pb_mrd,
            ngs_lod=np.where(rng.random(size) < p_low_input, 1e-5, _NGS_LOD),
            noise=np.exp(0.25 * rng.standard_normal(size)),
            d28_delayed=none if d28_delayed is None else d28_delayed,
        )

    def detected(self, burden: FloatArray) -> BoolArray:
        """Would this visit's MRD assays detect a marrow leukemia fraction `burden`?"""
        level = burden * self.noise
        pb_level = level * _PB_TO_BM
        in_marrow = (level >= _FLOW_LOD) | (self.ngs & (level * _NGS_GAIN >= self.ngs_lod))
        in_blood = np.where(self.ngs, pb_level >= self.ngs_lod, pb_level >= _FLOW_LOD)
        return (self.marrow & in_marrow) | (self.pb_mrd & in_blood)


def _burden(c: _Course, pid: IntArray, day: FloatArray) -> FloatArray:
    """Latent marrow leukemia fraction at a remission visit (0 when no growing clone)."""
    t_clone = c.t_clone[pid]
    stop = np.minimum(t_clone, c.t_clear[pid])
    growing = np.isfinite(t_clone) & (day < stop) & (day >= 0)
    with np.errstate(over="ignore", invalid="ignore"):
        level = 0.05 * 10.0 ** (-(t_clone - day) / c.growth[pid])
    clone = np.where(growing, np.minimum(level, 0.04), 0.0)
    residual = np.where((day >= 0) & (day <= 50), c.d28_residual[pid], 0.0)
    return np.maximum(clone, residual)


def _visits(rng: np.random.Generator, p: _Patients, c: _Course, m: LatentModel) -> _Visits:
    n = p.n
    nominal, kinds, half, p_marrow = _template()
    k = nominal.size
    day = nominal[None, :] + rng.integers(-half, half + 1, size=(n, k))
    delayed = rng.random(n) < m.p_d28_delayed
    day[:, 0] = np.where(delayed, rng.integers(36, 46, size=n), day[:, 0])
    missed = rng.random((n, k)) < m.p_missed_visit
    missed[:, 0] = False
    marrow_draw = rng.random((n, k)) < p_marrow[None, :]
    stopped = np.where(c.responder, c.t_rel, 45.0)  # relapse, or non-response at day 28
    after = day > stopped[:, None]
    keep = (
        ~missed
        & (day <= c.end[:, None])
        & ~(after & (kinds[None, :] == _PB))  # no monthly blood checks after relapse / NR
        & (np.abs(day - c.t_rel[:, None]) > 7)  # the relapse visit replaces a nearby visit
    )
    pi, ci = np.nonzero(keep)
    sched_kind = kinds[ci]
    sched_marrow = marrow_draw[pi, ci] & ~after[pi, ci]
    sched_kind = np.where(sched_marrow & (sched_kind == _FU), _BM, sched_kind)
    ngs_site = np.asarray(_NGS_SITES)[p.site]
    pcr_site = np.asarray(_PCR_SITES)[p.site]
    u = rng.random((3, pi.size))
    sched = _Visits.new(
        rng,
        p_low_input=m.p_ngs_low_input,
        pid=pi,
        day=day[pi, ci],
        kind=sched_kind,
        marrow=sched_marrow,
        ngs=u[0] < np.where(ngs_site[pi], 0.9, 0.2),
        pcr=pcr_site[pi] & (u[1] < 0.6),
        pb_mrd=~sched_marrow
        & ~after[pi, ci]
        & (u[2] < np.where(sched_kind == _PB, m.p_pb_mrd_year1, m.p_pb_mrd_later)),
        d28_delayed=(ci == 0) & delayed[pi],
    )
    everyone = np.arange(n)
    base = _Visits.new(
        rng,
        p_low_input=m.p_ngs_low_input,
        pid=everyone,
        day=-rng.integers(1, 31, size=n).astype(np.float64),
        kind=_BASE,
        marrow=np.ones(n, dtype=np.bool_),
        ngs=ngs_site & (rng.random(n) < 0.8),
        pcr=pcr_site & (rng.random(n) < 0.6),
    )
    rel_pid = np.flatnonzero(np.isfinite(c.t_rel))
    rel = _Visits.new(
        rng,
        p_low_input=m.p_ngs_low_input,
        pid=rel_pid,
        day=c.t_rel[rel_pid],
        kind=_REL,
        marrow=np.ones(rel_pid.size, dtype=np.bool_),
        ngs=ngs_site[rel_pid],
        pcr=pcr_site[rel_pid],
    )
    # a repeat marrow 2-4 weeks after the first MRD re-emerging in remission (after day 50)
    detected = sched.detected(_burden(c, sched.pid, sched.day)) & (sched.day > 50)
    first = np.full(n, np.inf)
    np.minimum.at(first, sched.pid[detected], sched.day[detected])
    conf_day = first + rng.integers(14, 29, size=n).astype(np.float64)
    want = (
        np.isfinite(first)
        & (conf_day < np.minimum(c.t_rel - 7, c.t_clear))
        & (conf_day <= c.end)
        & (rng.random(n) < m.p_confirm_mrd)
    )
    conf_pid = np.flatnonzero(want)
    conf = _Visits.new(
        rng,
        p_low_input=m.p_ngs_low_input,
        pid=conf_pid,
        day=conf_day[conf_pid],
        kind=_CONF,
        marrow=np.ones(conf_pid.size, dtype=np.bool_),
        ngs=ngs_site[conf_pid] | (rng.random(conf_pid.size) < 0.5),
        pcr=pcr_site[conf_pid],
    )
    conf_for = np.where(want, conf_day, np.inf)
    sched = sched.take(np.abs(sched.day - conf_for[sched.pid]) > 5)
    allv = _Visits.concat([base, sched, rel, conf])
    allv = allv.take(np.lexsort((allv.day, allv.pid)))
    dup = np.zeros(allv.pid.size, dtype=np.bool_)
    dup[1:] = (allv.pid[1:] == allv.pid[:-1]) & (allv.day[1:] == allv.day[:-1])
    return allv.take(~dup)


# ---- measurements --------------------------------------------------------------------------------
def _car_copies(c: _Course, pid: IntArray, day: FloatArray, noise: FloatArray) -> FloatArray:
    """CAR copies/ug: peak near day 10, convex decay to 50 at loss of persistence, then gone."""
    lmax = c.log10_cmax[pid]
    t_car = c.t_car[pid]
    log50 = np.log10(50.0)
    frac = np.clip((t_car - day) / np.maximum(t_car - 10.0, 1.0), 0.0, 1.0)
    before = log50 + np.maximum(lmax - log50, 0.2) * frac**2
    after = log50 - (day - t_car) / 45.0
    level = np.where(day <= t_car, before, after)
    t_hsct = c.t_hsct[pid]
    level = np.where(day > t_hsct, level - (day - t_hsct) / 10.0, level)
    copies = 10.0 ** (level + noise)
    return np.where(copies < 15.0, 0.0, _round_sig(copies, 2))


def _codes_series(name: str, codes: IntArray, labels: tuple[str, ...]) -> pl.Series:
    idx = pl.Series(name, codes, dtype=pl.Int64)
    idx = pl.select(pl.when(idx >= 0).then(idx)).to_series()
    return pl.Series(name, labels, dtype=pl.String).gather(idx).alias(name)


def _float_series(name: str, values: FloatArray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)


def _bool_series(name: str, value: BoolArray, present: BoolArray) -> pl.Series:
    raw = np.where(present, value.astype(np.float64), np.nan)
    return pl.Series(name, raw, dtype=pl.Float64).fill_nan(None).cast(pl.Boolean)


def _date_series(name: str, epoch_days: FloatArray) -> pl.Series:
    return pl.Series(name, epoch_days, dtype=pl.Float64).fill_nan(None).cast(pl.Int32).cast(pl.Date)


def _nan_where(mask: BoolArray, values: FloatArray) -> FloatArray:
    return np.where(mask, values, np.nan)


def _measure(
    rng: np.random.Generator,
    p: _Patients,
    c: _Course,
    v: _Visits,
    m: LatentModel,
    patient_ids: pl.Series,
) -> pl.DataFrame:
    nv = v.pid.size
    pid, day, kind = v.pid, v.day, v.kind

    def uni() -> FloatArray:
        return rng.random(nv)

    def gauss() -> FloatArray:
        return rng.standard_normal(nv)

    pre = day < 0
    responder = c.responder[pid]
    t_rel = c.t_rel[pid]
    rel_visit = kind == _REL
    post_rel = day > t_rel
    remission = responder & ~pre & ~rel_visit & ~post_rel
    nonresp = ~responder & ~pre
    nr_window = nonresp & (day <= 100)
    year1 = day <= 365
    # --- disease status
    u_status = uni()
    cri_now = np.where(day <= 45, c.cri[pid], u_status < 0.04)
    remission_status = np.select(
        [v.marrow, kind == _PB, u_status < 0.75],
        [np.where(cri_now, _CRI, _CR), np.where(u_status < 0.3, _NOT_ASSESSED, -1), _CR],
        _NOT_ASSESSED,
    )
    later_status = np.where(u_status < 0.6, _NOT_ASSESSED, -1)
    status = np.select(
        [pre, rel_visit, remission, nr_window, post_rel | nonresp],
        [-1, _RELAPSE, remission_status, _NO_RESPONSE, later_status],
        -1,
    ).astype(np.int64)
    # --- leukemia: blasts and MRD
    b = _burden(c, pid, day)
    remission_blasts = _round(np.maximum(uni() * 3.0, b * 100.0), 1)
    blasts = np.select(
        [pre, rel_visit, remission & v.marrow, nr_window & v.marrow],
        [p.blasts[pid], c.rel_blasts[pid], remission_blasts, c.nr_blasts[pid]],
        np.nan,
    )
    noise = v.noise
    level = b * noise
    ngs_lod = v.ngs_lod
    blip = _round_sig(rng.uniform(1e-6, 4e-6, nv), 2)
    blip_now = uni() < 0.01
    # marrow MRD in remission
    flow_rem = np.where(level >= _FLOW_LOD, _round_sig(level), 0.0)
    ngs_rem = np.where(
        level * _NGS_GAIN >= ngs_lod,
        _round_sig(level * _NGS_GAIN),
        np.where(blip_now, blip, 0.0),
    )
    pcr_rem = np.where(level >= _PCR_LOD, _round_sig(level * 0.9), 0.0)
    # blood MRD in remission
    pb_level = level * _PB_TO_BM
    pb_flow = np.where(pb_level >= _FLOW_LOD, _round_sig(pb_level), 0.0)
    pb_ngs = np.where(pb_level >= ngs_lod, _round_sig(pb_level), 0.0)
    # at baseline, relapse and non-response the marrow fraction is the blast fraction
    is_ls_rel = rel_visit & (c.rel_type[pid] == _LS)
    disease_frac = np.select(
        [pre, rel_visit, nr_window],
        [p.burden[pid], c.rel_blasts[pid] / 100.0, c.nr_blasts[pid] / 100.0],
        0.0,
    )
    disease_flow = np.where(disease_frac >= _FLOW_LOD, _round_sig(disease_frac), 0.0)
    disease_ngs = np.where(
        disease_frac >= _NGS_LOD, _round_sig(np.minimum(disease_frac * noise, 1.0)), 0.0
    )
    disease_visit = (pre | rel_visit | nr_window) & v.marrow
    bm = (remission & v.marrow) | disease_visit
    pb = remission & v.pb_mrd
    flow = np.select(
        [remission & v.marrow, disease_visit & ~is_ls_rel, pb & ~v.ngs],
        [flow_rem, disease_flow, pb_flow],
        np.nan,
    )
    ngs = np.select(
        [remission & v.marrow & v.ngs, disease_visit & v.ngs, pb & v.ngs],
        [ngs_rem, disease_ngs, pb_ngs],
        np.nan,
    )
    pcr = np.select(
        [remission & v.marrow & v.pcr, disease_visit & v.pcr & ~is_ls_rel],
        [pcr_rem, disease_ngs],
        np.nan,
    )
    has_mrd = ~(np.isnan(flow) & np.isnan(ngs) & np.isnan(pcr))
    mrd_sample = np.where(has_mrd, np.where(bm, 0, 1), -1).astype(np.int64)
    # --- CD19 on leukemic cells
    rel_cd19 = np.where(c.rel_cd19_known[pid], c.rel_type[pid], -1)
    mrd_cd19 = remission & v.marrow & (flow_rem > 0) & (c.rel_type[pid] != _LS) & (uni() < 0.6)
    nr_cd19 = nr_window & v.marrow & (uni() < 0.5)
    cd19 = np.select(
        [rel_visit, mrd_cd19, nr_cd19], [rel_cd19, c.rel_type[pid], c.nr_cd19[pid]], -1
    ).astype(np.int64)
    relapse_site = np.where(rel_visit, c.rel_site[pid], -1).astype(np.int64)
    # --- B cells
    t_rec = np.minimum(c.t_bcr[pid], c.t_hsct[pid] + 100.0)
    recovered = day >= t_rec
    u_b = uni()
    b_measured = np.select(
        [pre, remission, rel_visit, nr_window],
        [u_b < 0.7, u_b < np.where(year1, 0.95, 0.8), u_b < 0.8, u_b < 0.8],
        False,
    )
    aplasia_pct = np.where(uni() < 0.5, 0.0, uni() * 0.4)
    recovered_pct = (1.4 + 20.0 * (1.0 - np.exp(-(day - t_rec) / 120.0))) * np.exp(0.12 * gauss())
    baseline_pct = np.exp(np.log(2.5) + 0.8 * gauss())
    bpct = _round(np.where(pre, baseline_pct, np.where(recovered, recovered_pct, aplasia_pct)), 2)
    lymph = rng.uniform(600.0, 3000.0, nv)
    bpct = _nan_where(b_measured, bpct)
    babs = _round(bpct / 100.0 * lymph)
    babs_missing = uni() < 0.1
    babs = np.where(babs_missing, np.nan, babs)
    # --- CAR
    u_c = uni()
    car_p = np.where(year1, 0.9, np.where(day <= 5 * 365.25, 0.6, 0.3))
    car_measured = ~pre & np.select(
        [remission, rel_visit, nr_window], [u_c < car_p, u_c < 0.7, u_c < 0.8], False
    )
    copies = _car_copies(c, pid, day, 0.12 * gauss())
    car = _nan_where(car_measured, copies)
    car_pct = _round(np.minimum(copies / 1500.0 * np.exp(0.3 * gauss()), 90.0), 2)
    car_pct = _nan_where(car_measured & year1 & (uni() < 0.35), car_pct)
    # --- IgG and IVIG
    u_i = uni()
    igg_measured = np.select(
        [pre, remission, rel_visit, nr_window],
        [u_i < 0.8, u_i < 0.7, u_i < 0.6, u_i < 0.6],
        u_i < 0.3,
    )
    u_iv = uni()
    ivig = np.select(
        [pre, remission & ~recovered, remission & recovered],
        [
            u_iv < 0.05,
            c.ivig_user[pid] & (u_iv < 0.85),
            c.ivig_user[pid] & (day - t_rec < 60) & (u_iv < 0.5),
        ],
        u_iv < 0.3,
    )
    base_igg = c.igg_base[pid]
    native = np.select(
        [pre, remission & ~recovered, remission & recovered],
        [
            base_igg,
            180.0 + (base_igg - 180.0) * np.exp(-np.maximum(day, 0.0) / 75.0),
            300.0 + 650.0 * (1.0 - np.exp(-(day - t_rec) / 200.0)),
        ],
        450.0,
    )
    igg = _round(
        np.clip(np.where(ivig, 800.0, native) + np.where(ivig, 150.0, 60.0) * gauss(), 60.0, 2500.0)
    )
    igg = _nan_where(igg_measured, igg)
    ivig_present = igg_measured & (uni() >= 0.05)
    # --- new malignancy (follow-up visits record it) and comments
    lt_visit = (kind == _FU) | ((kind == _BM) & (day > 365))
    nm_candidate = lt_visit & (day >= c.t_new_malignancy[pid])
    nm_first = np.full(p.n, np.inf)
    np.minimum.at(nm_first, pid[nm_candidate], day[nm_candidate])
    nm_true = nm_candidate & (day == nm_first[pid])
    nm_present = nm_true | (lt_visit & (uni() < 0.7))
    hsct_first = np.full(p.n, np.inf)
    after_hsct = day > c.t_hsct[pid]
    np.minimum.at(hsct_first, pid[after_hsct], day[after_hsct])
    generic = np.where(uni() < m.p_comment, rng.integers(1, _N_GENERIC_COMMENTS + 1, size=nv), 0)
    comment = np.select(
        [
            nm_true,
            rel_visit & (uni() < 0.5),
            kind == _CONF,
            v.d28_delayed,
            after_hsct & (day == hsct_first[pid]),
        ],
        [12, 9, 10, 11, 13],
        generic,
    ).astype(np.int64)
    comment = np.where(comment == 0, -1, comment)
    epoch = p.infusion_epoch[pid].astype(np.float64) + day
    frame = pl.DataFrame(
        [
            patient_ids.gather(pl.Series(pid)).alias("patient_id"),
            _date_series("visit_date", epoch),
            _codes_series("disease_status", status, DISEASE_STATUS),
            _float_series("bm_blasts_pct", blasts),
            _codes_series("mrd_sample", mrd_sample, ("BM", "PB")),
            _float_series("mrd_flow_fraction", flow),
            _float_series("mrd_ngs_fraction", ngs),
            _float_series("mrd_pcr_fraction", pcr),
            _float_series("bcell_pct_lymphocytes", bpct),
            _float_series("bcell_per_ul", babs),
            _float_series("car_copies_per_ug", car),
            _float_series("car_pct_cd3", car_pct),
            _float_series("igg_mg_dl", igg),
            _bool_series("ivig_within_30d", ivig, ivig_present),
            _codes_series("cd19_status", cd19, CD19_STATUS),
            _codes_series("relapse_site", relapse_site, RELAPSE_SITE),
            _bool_series("new_malignancy", nm_true, nm_present),
            _codes_series("comment", comment, _COMMENTS),
        ]
    )
    return frame.cast(_polars_schema("visits"))  # type: ignore[arg-type]


def _patients_frame(
    rng: np.random.Generator, p: _Patients, c: _Course, v: _Visits, patient_ids: pl.Series
) -> pl.DataFrame:
    n = p.n
    inf_epoch = p.infusion_epoch.astype(np.float64)
    last_visit = np.full(n, -np.inf)
    np.maximum.at(last_visit, v.pid, v.day)
    dead = np.isfinite(c.t_death)
    contact = np.select(
        [dead, c.ltfu],
        [np.maximum(c.t_death - rng.integers(1, 15, size=n), 0.0), c.end],
        np.maximum(c.end - rng.integers(0, 91, size=n), 0.0),
    )
    contact = np.minimum(np.maximum(contact, last_visit), np.where(dead, c.t_death, c.end))
    contact_recorded = rng.random(n) >= 0.03
    known_kmt2a = rng.random(n) >= 0.04

    def date_of(days: FloatArray) -> FloatArray:
        return np.where(np.isfinite(days), inf_epoch + days, np.nan)

    frame = pl.DataFrame(
        [
            patient_ids,
            pl.Series("site", SITES, dtype=pl.String).gather(pl.Series(p.site)).alias("site"),
            pl.Series("sex", SEX, dtype=pl.String).gather(pl.Series(p.sex)).alias("sex"),
            pl.Series("age_at_infusion_years", p.age),
            pl.Series("product", PRODUCTS, dtype=pl.String)
            .gather(pl.Series(p.product))
            .alias("product"),
            _date_series("infusion_date", inf_epoch),
            pl.Series("prior_hsct", p.prior_hsct),
            pl.Series("prior_blinatumomab", p.prior_blina),
            _bool_series("kmt2a_rearranged", p.kmt2a, known_kmt2a),
            pl.Series("baseline_bm_blasts_pct", p.blasts),
            _date_series("hsct_date", date_of(c.t_hsct)),
            _date_series("new_therapy_date", date_of(c.t_newtx)),
            _date_series(
                "last_contact_date", np.where(contact_recorded, inf_epoch + contact, np.nan)
            ),
            _date_series("death_date", date_of(c.t_death)),
            _codes_series("death_cause", np.where(dead, c.death_cause, -1), DEATH_CAUSE),
        ]
    )
    return frame.cast(_polars_schema("patients"))  # type: ignore[arg-type]


# ---- public API ----------------------------------------------------------------------------------
def make_cohort(
    n: int,
    seed: int = 7,
    data_cut: date = DEFAULT_DATA_CUT,
    *,
    model: LatentModel = DEFAULT_MODEL,
) -> Cohort:
    """A synthetic cohort of `n` infused patients, identical for identical arguments.

    Infusions are spread over the 6 years before `data_cut` (the latest 14 days before it);
    no visit, death or other date falls after `data_cut`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    p = _patients(rng, n, data_cut, model)
    c = _course(rng, p, model)
    v = _visits(rng, p, c, model)
    width = max(5, len(str(n)))
    patient_ids = pl.Series(
        "patient_id", [f"CART-{i:0{width}d}" for i in range(1, n + 1)], dtype=pl.String
    )
    visits = _measure(rng, p, c, v, model, patient_ids)
    patients = _patients_frame(rng, p, c, v, patient_ids)
    return Cohort(patients=patients, visits=visits)


def write_csv(cohort: Cohort, out_dir: Path) -> tuple[Path, Path]:
    """Write `patients.csv` and `visits.csv` as a clinic export: UTF-8, ISO dates, true/false,
    empty cell = not recorded, plain decimals (no scientific notation)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "patients.csv", out_dir / "visits.csv")
    for frame, path in zip((cohort.patients, cohort.visits), paths, strict=True):
        frame.write_csv(path, float_scientific=False, date_format="%Y-%m-%d", null_value="")
    return paths


# ---- a deliberately messy export (demo material for data managers) ------------------------------
UNKNOWN_PATIENT_ID = "CART-0017"  # a typo: the demo ids have five digits
UNKNOWN_STATUS = "CR2"  # "second remission": not a disease_status code


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-")
    return str(value)


def messy_visits_export(cohort: Cohort) -> bytes:
    """A visits export the way data managers receive one, with planted mistakes.

    Semicolon-delimited, cp1252, CRLF; booleans as yes/no, 1/0 or TRUE/false; codes in odd
    case; an extra REDCap column `redcap_event_name`. Planted mistakes (documented in
    sample_data/README.md): an MRD fraction typed as a percent, a date with day and month
    swapped, an unknown disease_status code, a visit of a patient id that does not exist, a
    duplicate visit row and MRD values without mrd_sample. The rows come from `cohort` (the demo
    cohort), so everything else is valid against its patients.
    """
    visits = cohort.visits.join(
        cohort.patients.select("patient_id", "infusion_date"), on="patient_id"
    ).with_columns(day=(pl.col("visit_date") - pl.col("infusion_date")).dt.total_days())
    relapse_rows = visits.filter(
        (pl.col("disease_status") == "relapse") & (pl.col("mrd_flow_fraction") > 0.011)
    )
    if relapse_rows.height == 0 or cohort.patients.height < 5:
        raise ValueError("the cohort is too small for a messy export (need a marrow relapse)")
    relapsed = relapse_rows["patient_id"][0]
    others = (
        visits.filter(pl.col("patient_id") != relapsed)
        .group_by("patient_id", maintain_order=True)
        .len()
        .filter(pl.col("len") >= 6)["patient_id"]
        .head(3)
        .to_list()
    )
    chosen = visits.filter(pl.col("patient_id").is_in([relapsed, *others])).sort(
        "patient_id", "visit_date"
    )
    columns = list(cohort.visits.columns)
    header = [columns[0], columns[1], "redcap_event_name", *columns[2:]]
    rows: list[dict[str, str]] = []
    for i, record in enumerate(chosen.iter_rows(named=True)):
        day = int(record["day"])
        if day < 0:
            event = "baseline_arm_1"
        elif record["disease_status"] == "relapse" or record["comment"] == _COMMENTS[10]:
            event = "unscheduled_arm_1"
        elif day <= 45:
            event = "day28_arm_1"
        else:
            event = f"month_{round(day / DAYS_PER_MONTH)}_arm_1"
        row = {name: _plain(record[name]) for name in columns}
        row["redcap_event_name"] = event
        for flag in ("ivig_within_30d", "new_malignancy"):
            if record[flag] is not None:
                style = (("yes", "no"), ("1", "0"), ("TRUE", "false"))[i % 3]
                row[flag] = style[0] if record[flag] else style[1]
        if row["disease_status"] == "CR" and i % 2 == 0:
            row["disease_status"] = "cr"
        if row["disease_status"] == "CRi":
            row["disease_status"] = "Cri"
        if row["mrd_sample"] == "BM" and i % 4 == 1:
            row["mrd_sample"] = "bm"
        if row["cd19_status"]:
            row["cd19_status"] = row["cd19_status"].capitalize()
        rows.append(row)

    def first(predicate: object, exclude: set[int]) -> int:
        assert callable(predicate)
        for j, r in enumerate(rows):
            if j not in exclude and predicate(r):
                return j
        raise ValueError("the cohort lacks a row needed for the messy export")

    used: set[int] = set()
    # 1. MRD typed as a percent (0.23 -> 23)
    j = first(lambda r: r["patient_id"] == relapsed and r["disease_status"] == "relapse", used)
    rows[j]["mrd_flow_fraction"] = _plain(round(float(rows[j]["mrd_flow_fraction"]) * 100, 6))
    used.add(j)
    # 2. day and month swapped (2023-03-17 -> 2023-17-03)
    j = first(lambda r: int(r["visit_date"][8:]) > 12 and r["patient_id"] == others[0], used)
    y, mo, d = rows[j]["visit_date"].split("-")
    rows[j]["visit_date"] = f"{y}-{d}-{mo}"
    used.add(j)
    # 3. unknown disease_status code
    j = first(lambda r: r["disease_status"].lower() == "cr" and r["patient_id"] == others[1], used)
    rows[j]["disease_status"] = UNKNOWN_STATUS
    used.add(j)
    # 4. MRD values without mrd_sample
    j = first(lambda r: r["mrd_sample"] != "" and r["patient_id"] == others[2], used)
    rows[j]["mrd_sample"] = ""
    used.add(j)
    # 5. the comment with a micro sign (cp1252 0xB5)
    j = first(lambda r: r["bcell_per_ul"] != "" and r["comment"] == "", used)
    rows[j]["comment"] = f"B cells {rows[j]['bcell_per_ul']}/µL on local count"
    used.add(j)
    # 6. a visit for a patient id that does not exist (typo), 7. a duplicate row
    j = first(lambda r: r["patient_id"] == others[0] and r["disease_status"] != "", used)
    typo = dict(rows[j], patient_id=UNKNOWN_PATIENT_ID)
    k = first(lambda r: r["patient_id"] == others[1], used | {j})
    rows.insert(k + 1, dict(rows[k]))
    rows.insert(j + 1, typo)
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=header, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("cp1252")
