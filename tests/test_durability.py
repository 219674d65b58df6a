"""Durability tables and the CONTRACT.md §5 summary, on hand-computed small cohorts."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from monitoring.durability import durability_summary, durability_table
from monitoring.errors import UsageError
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = d(2000)
KM_COLUMNS = [
    "group",
    "time_days",
    "at_risk",
    "events",
    "censored",
    "estimate",
    "ci_lower",
    "ci_upper",
]

# OS: deaths on day 100 and 200, censored on day 150 and 300 (site A: P1, P2; site B: P3, P4)
OS_PATIENTS = patients_frame(
    patient("P1", site="A", death_date=d(100)),
    patient("P2", site="A", last_contact_date=d(150)),
    patient("P3", site="B", death_date=d(200)),
    patient("P4", site="B", last_contact_date=d(300)),
)
OS_VISITS = visits_frame(*(visit(p, 28, disease_status="CR") for p in ("P1", "P2", "P3", "P4")))

# CIR from onset day 30: relapse +50 (CD19+), death in remission +100, relapse +150 (CD19 unknown),
# censored +200
CIR_PATIENTS = patients_frame(
    patient("R1"),
    patient("D1", death_date=d(130)),
    patient("R2"),
    patient("C1", last_contact_date=d(230)),
)
CIR_VISITS = visits_frame(
    *(visit(p, 30, disease_status="CR") for p in ("R1", "D1", "R2", "C1")),
    visit("R1", 80, disease_status="relapse", cd19_status="positive"),
    visit("R2", 180, disease_status="relapse"),
)


def test_km_table_hand_computed() -> None:
    table = durability_table(OS_PATIENTS, OS_VISITS, "os", as_of=AS_OF)
    assert table.columns == KM_COLUMNS
    assert table.select("group", "time_days", "at_risk", "events", "censored").rows() == [
        ("all", 0.0, 4, 0, 0),
        ("all", 100.0, 4, 1, 0),
        ("all", 150.0, 3, 0, 1),
        ("all", 200.0, 2, 1, 0),
        ("all", 300.0, 1, 0, 1),
    ]
    assert table["estimate"].to_list() == pytest.approx([1.0, 0.75, 0.75, 0.375, 0.375])
    lower, upper = table["ci_lower"].to_list(), table["ci_upper"].to_list()
    for lo, est, hi in zip(lower[1:], table["estimate"].to_list()[1:], upper[1:], strict=True):
        assert 0 <= lo < est < hi <= 1


def test_table_one_block_per_group_in_order() -> None:
    table = durability_table(OS_PATIENTS, OS_VISITS, "os", by="site", as_of=AS_OF)
    assert table.select("group", "time_days", "estimate").rows() == [
        ("A", 0.0, 1.0),
        ("A", 100.0, 0.5),
        ("A", 150.0, 0.5),
        ("B", 0.0, 1.0),
        ("B", 200.0, 0.5),
        ("B", 300.0, 0.5),
    ]


def test_efs_non_responder_makes_the_time_0_row_drop() -> None:
    patients = patients_frame(patient("NR"), patient("OK", last_contact_date=d(400)))
    visits = visits_frame(
        visit("NR", 28, disease_status="no_response"), visit("OK", 28, disease_status="CR")
    )
    table = durability_table(patients, visits, "efs", as_of=AS_OF)
    assert table.select("time_days", "at_risk", "events", "estimate").rows()[0] == (0.0, 2, 1, 0.5)


def test_as_of_changes_the_table() -> None:
    early = durability_table(OS_PATIENTS, OS_VISITS, "os", as_of=d(120))
    # P3's death (day 200) and the later contacts are not yet known: censored at the day-28 visit
    assert early.select("time_days", "events", "censored").rows() == [
        (0.0, 0, 0),
        (28.0, 0, 3),
        (100.0, 1, 0),
    ]


def test_cir_table_aalen_johansen_by_hand_with_cause_column_last() -> None:
    table = durability_table(CIR_PATIENTS, CIR_VISITS, "cir", as_of=AS_OF)
    assert table.columns == [*KM_COLUMNS, "cause"]
    relapse = table.filter(pl.col("cause") == "relapse")
    assert relapse["time_days"].to_list() == [0.0, 50.0, 100.0, 150.0, 200.0]
    assert relapse["estimate"].to_list() == pytest.approx([0.0, 0.25, 0.25, 0.5, 0.5])
    death = table.filter(pl.col("cause") == "death")
    assert death["estimate"].to_list() == pytest.approx([0.0, 0.0, 0.25, 0.25, 0.25])
    assert table["cause"].unique(maintain_order=True).to_list() == ["relapse", "death"]


def test_cir_by_cd19_and_hsct_competing_causes_in_table() -> None:
    table = durability_table(
        CIR_PATIENTS, CIR_VISITS, "cir", as_of=AS_OF, by_cd19=True, hsct_competing=True
    )
    assert table["cause"].unique(maintain_order=True).to_list() == [
        "relapse_cd19_positive",
        "relapse_antigen_escape",
        "relapse_cd19_unknown",
        "death",
        "hsct",
    ]
    final = table.group_by("cause").agg(pl.col("estimate").last())
    got = dict(final.iter_rows())
    assert got == pytest.approx(
        {
            "relapse_cd19_positive": 0.25,
            "relapse_antigen_escape": 0.0,
            "relapse_cd19_unknown": 0.25,
            "death": 0.25,
            "hsct": 0.0,
        }
    )


def _assert_landmark_shape(landmarks: list[dict[str, Any]]) -> None:
    assert [lm["months"] for lm in landmarks] == [6, 12, 24, 36, 60]
    for lm in landmarks:
        assert set(lm) == {"months", "estimate", "ci_lower", "ci_upper", "at_risk"}


def test_summary_json_shape_and_hand_checked_numbers() -> None:
    summary = durability_summary(OS_PATIENTS, OS_VISITS, "os", as_of=AS_OF).to_json()
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready, no NaN
    assert set(summary) == {"endpoint", "median_followup_days", "logrank_p", "groups"}
    assert summary["endpoint"] == "os"
    # reverse KM: censorings on day 150 (3 at risk) and 300 (1 at risk) as events → 300
    assert summary["median_followup_days"] == 300.0
    assert summary["logrank_p"] is None  # one group
    (group,) = summary["groups"]
    assert set(group) == {
        "group",
        "n",
        "events",
        "median_days",
        "median_ci_lower",
        "median_ci_upper",
        "landmarks",
    }
    assert (group["group"], group["n"], group["events"], group["median_days"]) == (
        "all",
        4,
        2,
        200.0,
    )
    _assert_landmark_shape(group["landmarks"])
    six_months = group["landmarks"][0]  # day 182.6: S = 0.75, at risk 2 (P3, P4)
    assert six_months["estimate"] == pytest.approx(0.75)
    assert six_months["at_risk"] == 2
    assert group["landmarks"][1]["estimate"] is None  # day 365 is beyond the last time: null


def test_summary_logrank_with_two_groups() -> None:
    summary = durability_summary(OS_PATIENTS, OS_VISITS, "os", by="site", as_of=AS_OF).to_json()
    assert [g["group"] for g in summary["groups"]] == ["A", "B"]
    assert [g["n"] for g in summary["groups"]] == [2, 2]
    assert isinstance(summary["logrank_p"], float)
    assert 0.0 < summary["logrank_p"] <= 1.0


def test_cir_summary_medians_null_relapse_landmarks_and_causes() -> None:
    summary = durability_summary(
        CIR_PATIENTS, CIR_VISITS, "cir", as_of=AS_OF, by_cd19=True
    ).to_json()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["logrank_p"] is None
    (group,) = summary["groups"]
    assert group["median_days"] is None and group["median_ci_lower"] is None
    assert group["n"] == 4
    assert group["events"] == 2  # relapses of any CD19 status
    _assert_landmark_shape(group["landmarks"])
    # pooled relapse incidence at 6 months (182.6 days from onset) = 0.5
    assert group["landmarks"][0]["estimate"] == pytest.approx(0.5)
    causes = {c["cause"]: c for c in group["causes"]}
    assert list(causes) == [
        "relapse_cd19_positive",
        "relapse_antigen_escape",
        "relapse_cd19_unknown",
        "death",
    ]
    assert {k: c["events"] for k, c in causes.items()} == {
        "relapse_cd19_positive": 1,
        "relapse_antigen_escape": 0,
        "relapse_cd19_unknown": 1,
        "death": 1,
    }
    assert causes["relapse_cd19_positive"]["landmarks"][0]["estimate"] == pytest.approx(0.25)
    assert causes["death"]["landmarks"][0]["estimate"] == pytest.approx(0.25)


def test_post_baseline_grouping_refused_by_table_and_summary() -> None:
    for call in (durability_table, durability_summary):
        with pytest.raises(UsageError, match="immortal time"):
            call(OS_PATIENTS, OS_VISITS, "os", by="early_bcell_recovery", as_of=AS_OF)


def test_landmark_reorigins_the_table_and_summary() -> None:
    patients = patients_frame(
        patient("early", death_date=d(20)),
        patient("pos", death_date=d(100)),
        patient("neg", last_contact_date=d(500)),
        patient("none", death_date=d(300)),
    )
    visits = visits_frame(
        visit("pos", 28, mrd_sample="BM", mrd_flow_fraction=0.01),
        visit("neg", 28, mrd_sample="BM", mrd_flow_fraction=0.0),
    )
    table = durability_table(patients, visits, "os", by="mrd_day28", as_of=AS_OF, landmark_days=35)
    # "early" died before the landmark and is left out; times count from day 35
    assert table.select("group", "time_days", "at_risk", "events").rows() == [
        ("positive", 0.0, 1, 0),
        ("positive", 65.0, 1, 1),
        ("negative", 0.0, 1, 0),
        ("negative", 465.0, 1, 0),
        ("not assessed", 0.0, 1, 0),
        ("not assessed", 265.0, 1, 1),
    ]
    summary = durability_summary(
        patients, visits, "os", by="mrd_day28", as_of=AS_OF, landmark_days=35
    ).to_json()
    assert [(g["group"], g["n"], g["events"]) for g in summary["groups"]] == [
        ("positive", 1, 1),
        ("negative", 1, 0),
        ("not assessed", 1, 1),
    ]
    # median follow-up describes the whole cohort, not the landmark population
    assert summary["median_followup_days"] == 500.0


def test_empty_population_gives_empty_table_and_no_groups() -> None:
    patients = patients_frame(patient("NR"))
    visits = visits_frame(visit("NR", 28, disease_status="no_response"))
    table = durability_table(patients, visits, "rfs", as_of=AS_OF)
    assert table.is_empty() and table.columns == KM_COLUMNS
    cir = durability_table(patients, visits, "cir", as_of=AS_OF)
    assert cir.is_empty() and cir.columns == [*KM_COLUMNS, "cause"]
    summary = durability_summary(patients, visits, "rfs", as_of=AS_OF).to_json()
    assert summary["groups"] == [] and summary["logrank_p"] is None


def test_bad_flags_are_refused_before_any_work() -> None:
    with pytest.raises(UsageError, match="efs and rfs only"):
        durability_table(OS_PATIENTS, OS_VISITS, "os", censor_at_new_therapy=True, as_of=AS_OF)
    with pytest.raises(UsageError, match="unknown endpoint"):
        durability_summary(OS_PATIENTS, OS_VISITS, "dfs", as_of=AS_OF)


def test_precomputed_outcomes_give_identical_results() -> None:
    from datetime import date

    from monitoring.durability import durability_summary, durability_table
    from monitoring.outcomes import derive_outcomes
    from monitoring.synthetic import make_cohort

    cohort = make_cohort(120, seed=3)
    as_of = date(2026, 6, 30)
    shared = derive_outcomes(cohort.patients, cohort.visits, as_of=as_of)
    for endpoint in ("os", "efs", "rfs", "bca", "car", "cir"):
        fresh = durability_table(cohort.patients, cohort.visits, endpoint, as_of=as_of)
        reused = durability_table(
            cohort.patients, cohort.visits, endpoint, as_of=as_of, outcomes=shared
        )
        assert fresh.equals(reused)
        assert durability_summary(
            cohort.patients, cohort.visits, endpoint, as_of=as_of, by="product"
        ) == durability_summary(
            cohort.patients, cohort.visits, endpoint, as_of=as_of, by="product", outcomes=shared
        )
