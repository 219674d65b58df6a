"""The synthetic cohort: shape, determinism, data invariants, calibration, committed demo files.

The calibration figures are computed from the two tables alone (CONTRACT.md section 2
definitions, written out independently here), never from the generator's latent variables.
Tolerances are 3 binomial standard errors around the DOMAIN.md section 6 targets.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring.schemas import (
    CD19_STATUS,
    DATE_ORDER_AFTER_INFUSION,
    DEATH_CAUSE,
    DISEASE_STATUS,
    MRD_COLUMNS,
    MRD_SAMPLE,
    PATIENT_ID_PATTERN,
    RELAPSE_SITE,
    SEX,
    polars_schema,
)
from monitoring.synthetic import (
    DEFAULT_DATA_CUT,
    PRODUCTS,
    SITES,
    Cohort,
    LatentModel,
    make_cohort,
    messy_visits_export,
    write_csv,
)

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
DEMO_N, DEMO_SEED = 150, 2026
CALIBRATION_N = 2000
MONTH = 30.4375

# DOMAIN.md section 6 targets (pediatric CD19 CAR-T: ELIANA, PRWCC, CIBMTR) and Lamble 2023
TARGET_CR = 0.85
TARGET_EFS_12 = 0.50
TARGET_OS_12 = 0.75
TARGET_CD19_POSITIVE = 0.50
TARGET_CD19_NEG_DIM_PARTIAL = 0.40


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1.0 - p) / n)


def _assert_near(observed: float, target: float, n: int, what: str) -> None:
    tolerance = 3.0 * _se(target, n)
    assert abs(observed - target) <= tolerance, (
        f"{what}: {observed:.3f} on n={n}, target {target:.2f} ± {tolerance:.3f} (3 SE)"
    )


@pytest.fixture(scope="module")
def small() -> Cohort:
    return make_cohort(300, seed=11)


@pytest.fixture(scope="module")
def calibration() -> Cohort:
    return make_cohort(CALIBRATION_N)


# ---- shape and determinism -----------------------------------------------------------------------
def test_exact_canonical_columns_and_dtypes(small: Cohort) -> None:
    assert small.patients.schema == pl.Schema(polars_schema("patients"))
    assert small.visits.schema == pl.Schema(polars_schema("visits"))
    assert small.patients.height == 300
    assert small.visits.height > 300 * 5


def test_same_seed_same_frames_different_seed_different() -> None:
    a, b, c = make_cohort(120, seed=3), make_cohort(120, seed=3), make_cohort(120, seed=4)
    assert a.patients.equals(b.patients) and a.visits.equals(b.visits)
    assert not a.patients.equals(c.patients)
    assert not a.visits.equals(c.visits)


def test_data_cut_moves_everything() -> None:
    cut = date(2024, 1, 31)
    cohort = make_cohort(200, seed=5, data_cut=cut)
    assert cohort.visits["visit_date"].max() <= cut  # type: ignore[operator]
    assert cohort.patients["infusion_date"].min() >= date(2018, 1, 1)  # type: ignore[operator]
    assert make_cohort(0).visits.height == 0


# ---- invariants the ingest validator enforces ----------------------------------------------------
def _check_invariants(cohort: Cohort, data_cut: date) -> None:
    pts, vis = cohort.patients, cohort.visits
    # patients: ids, codes, ranges
    assert pts["patient_id"].is_unique().all()
    assert pts["patient_id"].str.contains(PATIENT_ID_PATTERN).all()
    assert pts["infusion_date"].null_count() == 0
    assert set(pts["sex"].drop_nulls()) <= set(SEX)
    assert set(pts["site"].drop_nulls()) <= set(SITES)
    assert set(pts["product"].drop_nulls()) <= set(PRODUCTS)
    assert set(pts["death_cause"].drop_nulls()) <= set(DEATH_CAUSE)
    assert pts["age_at_infusion_years"].is_between(0, 40).all()
    assert pts["baseline_bm_blasts_pct"].drop_nulls().is_between(0, 100).all()
    for column in DATE_ORDER_AFTER_INFUSION:
        bad = pts.filter(pl.col(column) < pl.col("infusion_date"))
        assert bad.height == 0, f"{column} before infusion: {bad['patient_id'].to_list()}"
        assert (pts[column].drop_nulls() <= data_cut).all(), column
    dead = pts.filter(pl.col("death_date").is_not_null())
    assert dead["death_cause"].null_count() == 0
    assert pts.filter(pl.col("death_date").is_null())["death_cause"].null_count() == (
        pts.height - dead.height
    )
    # visits: key, codes, ranges
    assert vis.select(pl.struct("patient_id", "visit_date").is_unique().all()).item()
    assert vis["visit_date"].null_count() == 0
    assert set(vis["patient_id"]) <= set(pts["patient_id"])
    for column, codes in (
        ("disease_status", DISEASE_STATUS),
        ("mrd_sample", MRD_SAMPLE),
        ("cd19_status", CD19_STATUS),
        ("relapse_site", RELAPSE_SITE),
    ):
        assert set(vis[column].drop_nulls()) <= set(codes), column
    for column, high in (
        ("bm_blasts_pct", 100.0),
        ("mrd_flow_fraction", 1.0),
        ("mrd_ngs_fraction", 1.0),
        ("mrd_pcr_fraction", 1.0),
        ("bcell_pct_lymphocytes", 100.0),
        ("bcell_per_ul", math.inf),
        ("car_copies_per_ug", math.inf),
        ("car_pct_cd3", 100.0),
        ("igg_mg_dl", 5000.0),
    ):
        assert vis[column].drop_nulls().is_between(0, high).all(), column
    positive_flow = vis["mrd_flow_fraction"].filter(vis["mrd_flow_fraction"] > 0)
    assert (positive_flow >= 1e-4).all(), "flow MRD positives start at 0.01 %"
    any_mrd = pl.any_horizontal(pl.col(c).is_not_null() for c in MRD_COLUMNS)
    assert vis.filter(any_mrd & pl.col("mrd_sample").is_null()).height == 0
    assert vis.filter(~any_mrd & pl.col("mrd_sample").is_not_null()).height == 0
    # visits against their patient
    joined = vis.join(pts, on="patient_id")
    assert joined.height == vis.height
    early = joined.filter(pl.col("visit_date") < pl.col("infusion_date") - pl.duration(days=60))
    assert early.height == 0
    assert joined.filter(pl.col("visit_date") > pl.col("death_date")).height == 0
    assert (vis["visit_date"] <= data_cut).all()
    last_visit = vis.group_by("patient_id").agg(pl.col("visit_date").max().alias("last_visit"))
    contact = pts.join(last_visit, on="patient_id").filter(
        pl.col("last_contact_date") < pl.col("last_visit")
    )
    assert contact.height == 0, contact


def test_invariants_hold(small: Cohort) -> None:
    _check_invariants(small, DEFAULT_DATA_CUT)


def test_invariants_hold_other_seed_and_cut() -> None:
    cut = date(2025, 3, 15)
    _check_invariants(make_cohort(250, seed=99, data_cut=cut), cut)


def _first_row(column: str, value: pl.Expr) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == 0).then(value).otherwise(pl.col(column)).alias(column)


_PLANTED: dict[
    str, tuple[Callable[[pl.DataFrame], pl.DataFrame], Callable[[pl.DataFrame], pl.DataFrame]]
] = {
    "mrd without sample": (
        lambda p: p,
        lambda v: v.with_columns(
            _first_row("mrd_sample", pl.lit(None, dtype=pl.String)),
            _first_row("mrd_flow_fraction", pl.lit(0.001)),
        ),
    ),
    "duplicate visit key": (lambda p: p, lambda v: pl.concat([v, v.head(1)])),
    "visit long before infusion": (
        lambda p: p,
        lambda v: v.with_columns(
            _first_row("visit_date", pl.col("visit_date") - pl.duration(days=90))
        ),
    ),
    "hsct before infusion": (
        lambda p: p.with_columns(
            _first_row("hsct_date", pl.col("infusion_date") - pl.duration(days=1))
        ),
        lambda v: v,
    ),
    "death without cause": (
        lambda p: p.with_columns(
            _first_row("death_date", pl.lit(DEFAULT_DATA_CUT)),
            _first_row("death_cause", pl.lit(None, dtype=pl.String)),
        ),
        lambda v: v,
    ),
    "last contact before last visit": (
        lambda p: p.with_columns(_first_row("last_contact_date", pl.col("infusion_date"))),
        lambda v: v,
    ),
    "flow positive below 1e-4": (
        lambda p: p,
        lambda v: v.with_columns(
            _first_row("mrd_sample", pl.lit("BM")), _first_row("mrd_flow_fraction", pl.lit(5e-5))
        ),
    ),
}


@pytest.mark.parametrize("violation", sorted(_PLANTED))
def test_invariant_check_can_fail(small: Cohort, violation: str) -> None:
    """The invariant checker is not vacuous: each planted violation makes it fail."""
    on_patients, on_visits = _PLANTED[violation]
    broken = Cohort(on_patients(small.patients), on_visits(small.visits))
    with pytest.raises(AssertionError):
        _check_invariants(broken, DEFAULT_DATA_CUT)


def test_realistic_shape(small: Cohort) -> None:
    """The things a monitor must see exist: relapses, deaths, HSCT, losses to follow-up…"""
    pts, vis = small.patients, small.visits
    assert pts["patient_id"][0] == "CART-00001"
    assert 0.7 < (pts["age_at_infusion_years"] < 18).mean() < 0.97  # type: ignore[operator]
    assert (pts["age_at_infusion_years"] >= 18).any()
    assert (pts["baseline_bm_blasts_pct"] >= 50).any()
    assert 0.02 < pts["kmt2a_rearranged"].mean() < 0.15  # type: ignore[operator]
    assert pts["hsct_date"].is_not_null().any() and pts["new_therapy_date"].is_not_null().any()
    assert (vis["disease_status"] == "relapse").any()
    assert (vis["mrd_sample"] == "PB").any() and (vis["mrd_ngs_fraction"] > 0).any()
    ngs = vis["mrd_ngs_fraction"].filter(vis["mrd_ngs_fraction"] > 0)
    assert (ngs < 1e-4).any(), "NGS reaches below the flow threshold"
    assert vis["comment"].is_not_null().any()
    overdue = pts.filter(
        pl.col("death_date").is_null()
        & (pl.col("last_contact_date") < pl.lit(DEFAULT_DATA_CUT) - pl.duration(days=425))
    )
    assert overdue.height > 0, "some patients are lost to follow-up"


# ---- crude calibration figures from the tables ---------------------------------------------------
@dataclass(frozen=True)
class Crude:
    per_patient: pl.DataFrame  # one row per patient with days of onset, relapse, death, …
    visits: pl.DataFrame  # visits with `day` and `mrd_detected` / `mrd_negative`


def crude_outcomes(cohort: Cohort, data_cut: date = DEFAULT_DATA_CUT) -> Crude:
    pts = cohort.patients.with_columns(
        potential=(pl.lit(data_cut) - pl.col("infusion_date")).dt.total_days(),
        death_day=(pl.col("death_date") - pl.col("infusion_date")).dt.total_days(),
        hsct_day=(pl.col("hsct_date") - pl.col("infusion_date")).dt.total_days(),
    )
    flow, ngs, pcr = (pl.col(c) for c in MRD_COLUMNS)
    any_mrd = pl.any_horizontal(c.is_not_null() for c in (flow, ngs, pcr))
    detected = (flow >= 1e-4) | (ngs > 0) | (pcr > 0)
    vis = (
        cohort.visits.join(pts.select("patient_id", "infusion_date"), on="patient_id")
        .with_columns(day=(pl.col("visit_date") - pl.col("infusion_date")).dt.total_days())
        .with_columns(
            mrd_detected=detected.fill_null(False),
            mrd_negative=any_mrd & ~detected.fill_null(False),
        )
        .sort("patient_id", "day")
    )
    onset = (
        vis.filter(pl.col("disease_status").is_in(["CR", "CRi"]) & pl.col("day").is_between(0, 90))
        .group_by("patient_id")
        .agg(pl.col("day").min().alias("onset_day"))
    )
    relapse = (
        vis.join(onset, on="patient_id")
        .filter(
            (pl.col("day") > pl.col("onset_day"))
            & ((pl.col("disease_status") == "relapse") | (pl.col("bm_blasts_pct") >= 5))
        )
        .group_by("patient_id")
        .agg(
            pl.col("day").first().alias("relapse_day"),
            pl.col("cd19_status").first().alias("relapse_cd19"),
        )
    )
    last_visit = vis.group_by("patient_id").agg(pl.col("day").max().alias("last_visit_day"))
    per = (
        pts.join(onset, on="patient_id", how="left")
        .join(relapse, on="patient_id", how="left")
        .join(last_visit, on="patient_id", how="left")
        .with_columns(
            last_contact_day=pl.max_horizontal(
                (pl.col("last_contact_date") - pl.col("infusion_date")).dt.total_days(),
                "last_visit_day",
                "death_day",
            )
        )
    )
    # B-cell recovery: first of 2 consecutive assessments >= 1 % or >= 50/uL, from day 28, pre-HSCT
    bcells = (
        vis.join(per.select("patient_id", "hsct_day"), on="patient_id")
        .filter(
            (pl.col("bcell_pct_lymphocytes").is_not_null() | pl.col("bcell_per_ul").is_not_null())
            & (pl.col("day") >= 28)
            & (pl.col("hsct_day").is_null() | (pl.col("day") < pl.col("hsct_day")))
        )
        .with_columns(
            high=(
                (pl.col("bcell_pct_lymphocytes") >= 1) | (pl.col("bcell_per_ul") >= 50)
            ).fill_null(False)
        )
        .with_columns(next_high=pl.col("high").shift(-1).over("patient_id").fill_null(False))
    )
    recovery = (
        bcells.filter(pl.col("high") & pl.col("next_high"))
        .group_by("patient_id")
        .agg(pl.col("day").min().alias("recovery_day"))
    )
    first_bcell = bcells.group_by("patient_id").agg(pl.col("day").min().alias("first_bcell_day"))
    per = per.join(recovery, on="patient_id", how="left").join(
        first_bcell, on="patient_id", how="left"
    )
    return Crude(per_patient=per, visits=vis)


def _proportion(mask: pl.Series) -> tuple[float, int]:
    return float(mask.mean()), mask.len()  # type: ignore[arg-type]


def test_calibration_complete_response(calibration: Cohort) -> None:
    per = crude_outcomes(calibration).per_patient.filter(pl.col("potential") >= 90)
    p, n = _proportion(per["onset_day"].is_not_null())
    _assert_near(p, TARGET_CR, n, "CR/CRi by day 90 among infused")


def test_calibration_twelve_month_efs_and_os(calibration: Cohort) -> None:
    per = crude_outcomes(calibration).per_patient.filter(pl.col("potential") >= 365)
    efs_event = (
        pl.col("onset_day").is_null()
        | (pl.col("relapse_day") <= 365)
        | (pl.col("death_day") <= 365)
    ).fill_null(False)
    efs = per.with_columns(event=efs_event).filter(
        pl.col("event") | (pl.col("last_contact_day") >= 365)
    )
    p, n = _proportion(~efs["event"])
    _assert_near(p, TARGET_EFS_12, n, "crude 12-month event-free")
    died = (pl.col("death_day") <= 365).fill_null(False)
    os_ = per.with_columns(died=died).filter(pl.col("died") | (pl.col("last_contact_day") >= 365))
    p, n = _proportion(~os_["died"])
    _assert_near(p, TARGET_OS_12, n, "crude 12-month alive")


def test_calibration_cd19_status_of_relapses(calibration: Cohort) -> None:
    per = crude_outcomes(calibration).per_patient
    relapses = per.filter(pl.col("relapse_day").is_not_null())
    cd19 = relapses["relapse_cd19"]
    n = relapses.height
    assert n > 300
    _assert_near(float((cd19 == "positive").sum()) / n, TARGET_CD19_POSITIVE, n, "CD19+")
    escape = float(cd19.is_in(["negative", "dim", "partial"]).sum()) / n
    _assert_near(escape, TARGET_CD19_NEG_DIM_PARTIAL, n, "CD19 negative/dim/partial")
    ls = relapses.filter(pl.col("relapse_cd19") == "lineage_switch")
    assert 0.01 <= ls.height / n <= 0.10, f"lineage switch {ls.height}/{n}"
    # lineage switch concentrates in KMT2A-rearranged leukemia (~6 % of patients)
    assert ls["kmt2a_rearranged"].mean() > 0.5  # type: ignore[operator]


def test_calibration_early_bcell_recovery_means_cd19_positive_relapse(
    calibration: Cohort,
) -> None:
    per = crude_outcomes(calibration).per_patient
    relapses = per.filter(
        pl.col("relapse_day").is_not_null() & pl.col("relapse_cd19").is_not_null()
    )
    early = relapses.filter(
        (pl.col("recovery_day") <= 183) & (pl.col("recovery_day") < pl.col("relapse_day"))
    )
    aplasia = relapses.filter(
        (pl.col("first_bcell_day") < pl.col("relapse_day"))
        & (pl.col("recovery_day").is_null() | (pl.col("recovery_day") >= pl.col("relapse_day")))
    )
    assert early.height >= 30 and aplasia.height >= 30, (early.height, aplasia.height)
    p_early, n_early = _proportion(early["relapse_cd19"] == "positive")
    p_apl, n_apl = _proportion(aplasia["relapse_cd19"] == "positive")
    se_diff = math.sqrt(p_early * (1 - p_early) / n_early + p_apl * (1 - p_apl) / n_apl)
    assert p_early - p_apl > 3 * se_diff, (p_early, n_early, p_apl, n_apl)
    # relapses during ongoing aplasia are mostly antigen escape (Pulsipher 2022: 23/25)
    p_escape, _ = _proportion(aplasia["relapse_cd19"] != "positive")
    assert p_escape - 3 * _se(p_escape, n_apl) > 0.5, (p_escape, n_apl)


def _relapses_preceded_by_reemergence(crude: Crude) -> tuple[int, int]:
    """(relapses with re-emerging MRD 1-3 months before, relapses after an MRD-negative result)."""
    per = crude.per_patient.filter(pl.col("relapse_day").is_not_null())
    mrd = crude.visits.join(
        per.select("patient_id", "onset_day", "relapse_day"), on="patient_id"
    ).filter(
        (pl.col("day") >= pl.col("onset_day"))
        & (pl.col("day") < pl.col("relapse_day"))
        & (pl.col("mrd_detected") | pl.col("mrd_negative"))
    )
    first_negative = (
        mrd.filter(pl.col("mrd_negative"))
        .group_by("patient_id")
        .agg(pl.col("day").min().alias("first_negative_day"))
    )
    reemerged = (
        mrd.join(first_negative, on="patient_id")
        .filter(
            pl.col("mrd_detected")
            & (pl.col("day") > pl.col("first_negative_day"))
            & (pl.col("day") >= pl.col("relapse_day") - 3 * MONTH)
            & (pl.col("day") <= pl.col("relapse_day") - 1 * MONTH)
        )["patient_id"]
        .n_unique()
    )
    return reemerged, per.height


def test_calibration_mrd_reemergence_precedes_most_relapses(calibration: Cohort) -> None:
    preceded, n = _relapses_preceded_by_reemergence(crude_outcomes(calibration))
    share = preceded / n
    assert share - 3 * _se(share, n) > 0.5, f"{preceded}/{n} relapses preceded by MRD"


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"response_logit": 1.2}, test_calibration_complete_response),
        ({"p_escape": 0.08, "p_cd19pos_early_bcr": 0.3}, test_calibration_twelve_month_efs_and_os),
        ({"p_nrm_year1": 0.15}, test_calibration_twelve_month_efs_and_os),
        ({"p_escape": 0.45}, test_calibration_cd19_status_of_relapses),
        (
            {"p_cd19pos_aplasia": 0.6},
            test_calibration_early_bcell_recovery_means_cd19_positive_relapse,
        ),
        (
            {"growth_days_per_log": 4.0, "p_clone_after_d28": 0.0},
            test_calibration_mrd_reemergence_precedes_most_relapses,
        ),
    ],
    ids=["response", "relapses", "deaths", "cd19-split", "aplasia-cd19", "mrd-lead-time"],
)
def test_calibration_checks_reject_a_miscalibrated_model(
    change: dict[str, float], check: Callable[[Cohort], None]
) -> None:
    """Each calibration check fails when the latent parameter it guards is mis-set."""
    with pytest.raises(AssertionError):
        check(make_cohort(CALIBRATION_N, model=replace(LatentModel(), **change)))


# ---- committed demo files ------------------------------------------------------------------------
def test_sample_data_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = write_csv(make_cohort(DEMO_N, seed=DEMO_SEED), tmp_path)
    assert [p.name for p in written] == ["patients.csv", "visits.csv"]
    for path in written:
        committed = SAMPLE_DATA / path.name
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} drifted from make_cohort({DEMO_N}, seed={DEMO_SEED}); regenerate it "
            "(see sample_data/README.md)"
        )


def test_csv_looks_like_a_clinic_export_and_round_trips(tmp_path: Path) -> None:
    cohort = make_cohort(80, seed=1)
    patients_csv, visits_csv = write_csv(cohort, tmp_path)
    text = visits_csv.read_text(encoding="utf-8")
    assert not re.search(r"\d[eE][-+]?\d", text), "no scientific notation"
    header, first = text.splitlines()[:2]
    assert header.split(",") == list(polars_schema("visits"))
    assert re.match(r"CART-\d{5},\d{4}-\d{2}-\d{2},", first)
    assert ",true," in text or ",false," in text
    for kind, path, frame in (
        ("patients", patients_csv, cohort.patients),
        ("visits", visits_csv, cohort.visits),
    ):
        back = pl.read_csv(path, schema=polars_schema(kind))  # type: ignore[arg-type]
        assert back.equals(frame), kind


def test_messy_export_is_committed_and_has_the_planted_mistakes() -> None:
    demo = make_cohort(DEMO_N, seed=DEMO_SEED)
    raw = messy_visits_export(demo)
    assert (SAMPLE_DATA / "messy_visits_export.csv").read_bytes() == raw
    assert b"\r\n" in raw and b"\xb5" in raw  # CRLF, cp1252 micro sign
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw.decode("cp1252"), newline=""), delimiter=";"))
    assert "redcap_event_name" in rows[0]
    known = set(demo.patients["patient_id"])
    unknown_ids = {r["patient_id"] for r in rows} - known
    assert len(unknown_ids) == 1
    keys = [(r["patient_id"], r["visit_date"]) for r in rows]
    assert len(keys) - len(set(keys)) == 1, "exactly one duplicate visit row"
    flows = [float(r["mrd_flow_fraction"]) for r in rows if r["mrd_flow_fraction"]]
    assert sum(f > 1 for f in flows) == 1, "one MRD entered as a percent"
    bad_dates = [
        r["visit_date"] for r in rows if not re.match(r"\d{4}-(0\d|1[0-2])-", r["visit_date"])
    ]
    assert len(bad_dates) == 1, bad_dates
    codes = {c.lower() for c in DISEASE_STATUS}
    statuses = [r["disease_status"] for r in rows if r["disease_status"]]
    assert sum(s.lower() not in codes for s in statuses) == 1
    assert "cr" in statuses, "a code in odd case"
    assert "bm" in {r["mrd_sample"] for r in rows}
    mrd_without_sample = [r for r in rows if not r["mrd_sample"] and any(r[c] for c in MRD_COLUMNS)]
    assert len(mrd_without_sample) == 1
    booleans = {r["ivig_within_30d"].lower() for r in rows} - {""}
    assert {"yes", "no"} & booleans and {"1", "0"} & booleans
