"""Derived per-patient facts (CONTRACT.md §2): one hand-checked patient per rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.config import Config
from monitoring.outcomes import (
    derive_outcomes,
    mrd_detected_expr,
    mrd_negative_expr,
    visits_with_day,
)
from tests.factories import INFUSION, d, patient, patients_frame, visit, visits_frame

AS_OF = d(1000)


def one(patients: pl.DataFrame, visits: pl.DataFrame, **kw: Any) -> dict[str, Any]:
    """The outcome row of the only (or first) patient."""
    out = derive_outcomes(patients, visits, as_of=kw.pop("as_of", AS_OF), **kw)
    return out.row(0, named=True)


def single(
    *visit_rows: dict[str, Any],
    as_of: date = AS_OF,
    config: Config | None = None,
    **patient_columns: Any,
) -> dict[str, Any]:
    """The outcome row of patient P1 with these visits and patient columns."""
    return one(
        patients_frame(patient("P1", **patient_columns)),
        visits_frame(*visit_rows),
        as_of=as_of,
        config=config,
    )


# --- MRD ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "detected", "negative"),
    [
        ({"mrd_flow_fraction": 0.0001}, True, False),  # exactly the 0.01 % flow threshold
        ({"mrd_flow_fraction": 0.00009}, False, True),  # below the flow threshold
        ({"mrd_flow_fraction": 0.0}, False, True),
        ({"mrd_ngs_fraction": 0.000001}, True, False),  # any NGS signal
        ({"mrd_pcr_fraction": 0.00001}, True, False),  # any PCR signal
        ({"mrd_flow_fraction": 0.0, "mrd_ngs_fraction": 0.00002}, True, False),  # NGS overrides
        ({"mrd_pcr_fraction": 0.0}, False, True),
        ({}, False, False),  # no MRD value: neither detected nor negative
    ],
)
def test_mrd_detected_and_negative(values: dict[str, Any], detected: bool, negative: bool) -> None:
    frame = visits_frame(visit("P1", 28, **values))
    got = frame.select(det=mrd_detected_expr(Config()), neg=mrd_negative_expr(Config())).row(0)
    assert got == (detected, negative)


def test_visits_with_day_counts_from_infusion_and_drops_unknown_patients() -> None:
    patients = patients_frame(patient("P1", infusion_date=date(2021, 3, 1)))
    visits = visits_frame(
        visit("P1", 0, infusion=date(2021, 3, 1)),
        visit("P1", -7, infusion=date(2021, 3, 1)),
        visit("P1", 365, infusion=date(2021, 3, 1)),
        visit("ghost", 5),
    )
    out = visits_with_day(patients, visits.with_columns(extra=pl.lit(1)))
    assert out["patient_id"].to_list() == ["P1"] * 3
    assert out["day"].to_list() == [-7, 0, 365]
    assert {"extra", "mrd_flow_fraction", "infusion_date"} <= set(out.columns)


# --- response ----------------------------------------------------------------------------


def test_first_cr_or_cri_in_window_is_remission_onset() -> None:
    row = single(
        visit("P1", 14, disease_status="no_response"),
        visit("P1", 28, disease_status="CRi"),
        visit("P1", 56, disease_status="CR"),
    )
    assert row["response"] == "responder"
    assert row["remission_onset_date"] == d(28)
    assert row["remission_onset_day"] == 28


def test_cr_on_day_90_counts_cr_on_day_91_does_not() -> None:
    assert single(visit("P1", 90, disease_status="CR"))["response"] == "responder"
    late = single(visit("P1", 91, disease_status="CR"))
    assert late["response"] == "non_responder"
    assert late["remission_onset_date"] is None


def test_pre_infusion_cr_is_not_a_response() -> None:
    row = single(visit("P1", -10, disease_status="CR"), as_of=d(60))
    assert row["response"] == "pending"


def test_no_response_is_pending_until_day_90_has_passed() -> None:
    patients = patients_frame(patient("P1"))
    visits = visits_frame(visit("P1", 28, disease_status="no_response"))
    assert one(patients, visits, as_of=d(90))["response"] == "pending"
    assert one(patients, visits, as_of=d(91))["response"] == "non_responder"


def test_response_window_comes_from_config() -> None:
    cfg = replace(Config(), response_window_days=60)
    row = single(visit("P1", 75, disease_status="CR"), config=cfg)
    assert row["response"] == "non_responder"


# --- relapse -----------------------------------------------------------------------------


def test_relapse_is_first_relapse_visit_after_onset_with_its_cd19_status() -> None:
    row = single(
        visit("P1", 28, disease_status="CR"),
        visit("P1", 150, disease_status="relapse", cd19_status="negative"),
        visit("P1", 200, disease_status="relapse", cd19_status="positive"),
    )
    assert row["relapse_date"] == d(150)
    assert row["relapse_day"] == 150
    assert row["relapse_cd19_status"] == "negative"
    assert row["antigen_escape"] is True


def test_marrow_blasts_of_5_percent_are_a_relapse_4_9_are_not() -> None:
    row = single(
        visit("P1", 28, disease_status="CR"),
        visit("P1", 100, bm_blasts_pct=4.9),
        visit("P1", 120, bm_blasts_pct=5.0, cd19_status="positive"),
    )
    assert row["relapse_date"] == d(120)
    assert row["relapse_cd19_status"] == "positive"
    assert row["antigen_escape"] is False


def test_relapse_status_before_remission_onset_is_not_a_relapse() -> None:
    row = single(
        visit("P1", 7, disease_status="relapse", bm_blasts_pct=60),
        visit("P1", 28, disease_status="CR", bm_blasts_pct=6),  # same day as onset: not after
    )
    assert row["relapse_date"] is None
    assert row["relapse_cd19_status"] is None
    assert row["antigen_escape"] is False


def test_non_responder_never_relapses() -> None:
    row = single(visit("P1", 28, disease_status="no_response"), visit("P1", 120, bm_blasts_pct=80))
    assert row["response"] == "non_responder"
    assert row["relapse_date"] is None


@pytest.mark.parametrize(
    ("cd19", "status", "escape"),
    [
        (None, "unknown", False),
        ("positive", "positive", False),
        ("dim", "dim", True),
        ("partial", "partial", True),
        ("negative", "negative", True),
        ("lineage_switch", "lineage_switch", True),
    ],
)
def test_relapse_cd19_status_and_antigen_escape(
    cd19: str | None, status: str, escape: bool
) -> None:
    row = single(
        visit("P1", 28, disease_status="CR"),
        visit("P1", 200, disease_status="relapse", cd19_status=cd19),
    )
    assert (row["relapse_cd19_status"], row["antigen_escape"]) == (status, escape)


# --- B-cell recovery ---------------------------------------------------------------------


def test_two_consecutive_high_bcell_assessments_from_day_28_are_recovery() -> None:
    row = single(
        visit("P1", 28, disease_status="CR", bcell_pct_lymphocytes=0.0),
        visit("P1", 90, bcell_pct_lymphocytes=1.0),
        visit("P1", 120, bcell_per_ul=50.0),
        visit("P1", 150, bcell_pct_lymphocytes=8.0),
    )
    assert row["bcell_recovery_date"] == d(90)
    assert row["bcell_recovery_day"] == 90
    assert row["bcell_recovery_confirmed_day"] == 120
    assert row["last_bcell_day"] == 150


def test_bcell_rise_on_day_20_does_not_count() -> None:
    row = single(
        visit("P1", 20, bcell_pct_lymphocytes=5.0),
        visit("P1", 28, disease_status="CR", bcell_pct_lymphocytes=5.0),
        visit("P1", 60, bcell_pct_lymphocytes=0.0),
    )
    assert row["bcell_recovery_date"] is None
    # day 28 + a later high value does count, dated day 28
    row = single(
        visit("P1", 20, bcell_pct_lymphocytes=5.0),
        visit("P1", 28, disease_status="CR", bcell_pct_lymphocytes=5.0),
        visit("P1", 60, bcell_pct_lymphocytes=5.0),
    )
    assert row["bcell_recovery_date"] == d(28)


def test_one_high_bcell_value_alone_is_no_recovery() -> None:
    row = single(
        visit("P1", 28, disease_status="CR"),
        visit("P1", 60, bcell_pct_lymphocytes=3.0),
        visit("P1", 90, bcell_pct_lymphocytes=0.5, bcell_per_ul=49.0),
        visit("P1", 120, bcell_per_ul=200.0),
    )
    assert row["bcell_recovery_date"] is None
    assert row["last_bcell_day"] == 120


def test_visits_without_bcell_values_do_not_break_consecutive_assessments() -> None:
    row = single(
        visit("P1", 28, disease_status="CR"),
        visit("P1", 60, bcell_pct_lymphocytes=3.0),
        visit("P1", 70, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("P1", 90, bcell_per_ul=80.0),
    )
    assert row["bcell_recovery_date"] == d(60)


def test_hsct_stops_bcell_and_car_evaluation() -> None:
    row = single(
        visit("P1", 28, disease_status="CR", car_copies_per_ug=5000.0),
        visit("P1", 100, bcell_pct_lymphocytes=4.0, car_copies_per_ug=10.0),
        visit("P1", 110, bcell_pct_lymphocytes=10.0, car_copies_per_ug=0.0),  # hsct day
        visit("P1", 140, bcell_pct_lymphocytes=10.0, car_copies_per_ug=0.0),
        hsct_date=d(110),
    )
    assert row["bcell_recovery_date"] is None
    assert row["last_bcell_day"] == 140  # of any date (censoring, CONTRACT §3 revision 2)
    assert row["car_loss_date"] is None
    assert row["last_car_day"] == 140
    assert row["hsct_day"] == 110


def test_three_confirmations_when_configured() -> None:
    visits = (
        visit("P1", 28, disease_status="CR"),
        visit("P1", 60, bcell_pct_lymphocytes=3.0),
        visit("P1", 90, bcell_pct_lymphocytes=3.0),
        visit("P1", 120, bcell_pct_lymphocytes=0.1),
        visit("P1", 150, bcell_pct_lymphocytes=3.0),
        visit("P1", 180, bcell_pct_lymphocytes=3.0),
        visit("P1", 210, bcell_pct_lymphocytes=3.0),
    )
    assert single(*visits)["bcell_recovery_day"] == 60
    three = replace(Config(), recovery_confirmations=3)
    row = single(*visits, config=three)
    assert row["bcell_recovery_day"] == 150
    assert row["bcell_recovery_confirmed_day"] == 210
    one_value = replace(Config(), recovery_confirmations=1, bcell_pct_recovery=5.0)
    assert single(*visits, config=one_value)["bcell_recovery_date"] is None


# --- CAR persistence ---------------------------------------------------------------------


def test_car_loss_is_first_of_two_consecutive_results_below_50() -> None:
    row = single(
        visit("P1", 14, car_copies_per_ug=20000.0),
        visit("P1", 90, car_copies_per_ug=49.0),  # alone: no loss
        visit("P1", 120, car_copies_per_ug=300.0),
        visit("P1", 180, car_copies_per_ug=0.0),  # 0 = not detected counts as below
        visit("P1", 200, bcell_pct_lymphocytes=0.0),  # no CAR result: does not break the pair
        visit("P1", 240, car_copies_per_ug=10.0),
    )
    assert row["car_loss_date"] == d(180)
    assert row["car_loss_day"] == 180
    assert row["last_car_day"] == 240
    assert row["has_car_result"] is True


def test_car_value_of_exactly_50_is_not_below() -> None:
    row = single(visit("P1", 90, car_copies_per_ug=50.0), visit("P1", 120, car_copies_per_ug=50.0))
    assert row["car_loss_date"] is None


def test_no_car_result() -> None:
    row = single(visit("P1", 28, disease_status="CR"))
    assert row["has_car_result"] is False
    assert row["last_car_date"] is None


# --- as_of, last contact, MRD day 28 -----------------------------------------------------


def test_as_of_hides_later_visits_and_patient_dates() -> None:
    patients = patients_frame(
        patient(
            "P1",
            hsct_date=d(300),
            new_therapy_date=d(250),
            death_date=d(400),
            death_cause="relapse",
            last_contact_date=d(390),
        )
    )
    visits = visits_frame(
        visit("P1", 28, disease_status="CR"),
        visit("P1", 120, bcell_pct_lymphocytes=0.0),
        visit("P1", 200, disease_status="relapse"),
    )
    early = one(patients, visits, as_of=d(150))
    assert early["relapse_date"] is None
    assert early["death_date"] is None and early["death_cause"] is None
    assert early["hsct_date"] is None and early["new_therapy_date"] is None
    assert early["last_contact_day"] == 120
    late = one(patients, visits, as_of=d(500))
    assert late["relapse_day"] == 200
    assert late["death_day"] == 400 and late["death_cause"] == "relapse"
    assert late["last_contact_day"] == 400


def test_patients_infused_after_as_of_are_left_out() -> None:
    patients = patients_frame(patient("P1"), patient("P2", infusion_date=d(50)))
    out = derive_outcomes(patients, visits_frame(), as_of=d(49))
    assert out["patient_id"].to_list() == ["P1"]


def test_last_contact_is_latest_of_contact_visit_death_and_infusion() -> None:
    patients = patients_frame(
        patient("A", last_contact_date=d(500)),
        patient("B", last_contact_date=d(100)),
        patient("C", death_date=d(700), last_contact_date=d(650)),
        patient("D"),
    )
    visits = visits_frame(visit("A", 300), visit("B", 400))
    out = derive_outcomes(patients, visits, as_of=AS_OF)
    assert out["last_contact_day"].to_list() == [500, 400, 700, 0]


def test_mrd_day28_first_positive_and_negative_bone_marrow_results() -> None:
    row = single(
        visit("P1", 21, mrd_sample="PB", mrd_flow_fraction=0.01),  # blood: not counted
        visit("P1", 25, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("P1", 30, mrd_sample="BM", mrd_ngs_fraction=0.001),
        visit("P1", 36, mrd_sample="BM", mrd_flow_fraction=0.5),  # outside day 21-35
    )
    assert row["mrd_day28_negative_day"] == 25
    assert row["mrd_day28_positive_day"] == 30


def test_empty_visits_give_one_row_per_patient() -> None:
    out = derive_outcomes(patients_frame(patient("P1"), patient("P2")), visits_frame(), as_of=AS_OF)
    assert out.height == 2
    assert out["response"].to_list() == ["non_responder", "non_responder"]
    assert out["has_car_result"].to_list() == [False, False]


def test_day_columns_are_integers_for_every_date() -> None:
    out = derive_outcomes(patients_frame(patient("P1")), visits_frame(), as_of=AS_OF)
    for name in out.columns:
        if name.endswith("_date") and name != "infusion_date":
            day = name.removesuffix("_date") + "_day"
            assert out.schema[day] == pl.Int64, day


# --- property: the vectorised rules agree with a plain reading of the definitions ---------


def _naive_first_run(days: list[int], flags: list[bool], n: int) -> int | None:
    for i in range(len(days) - n + 1):
        if all(flags[i : i + n]):
            return days[i]
    return None


visit_strategy = st.lists(
    st.tuples(
        st.integers(-10, 400),
        st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        st.one_of(st.none(), st.sampled_from([0.0, 49.0, 50.0, 1000.0])),
        st.sampled_from([None, "CR", "relapse", "no_response"]),
        st.one_of(st.none(), st.sampled_from([0.0, 4.0, 5.0])),
    ),
    max_size=12,
    unique_by=lambda t: t[0],
)


@settings(max_examples=150, deadline=None)
@given(
    cohort=st.lists(
        st.tuples(visit_strategy, st.one_of(st.none(), st.integers(0, 400))), min_size=1, max_size=4
    )
)
def test_vectorised_rules_match_naive_definitions(
    cohort: list[tuple[list[tuple[int, Any, Any, Any, Any]], int | None]],
) -> None:
    patients = []
    visits = []
    for i, (rows, hsct) in enumerate(cohort):
        pid = f"P{i}"
        patients.append(patient(pid, hsct_date=None if hsct is None else d(hsct)))
        for day, bcell, car, status, blasts in rows:
            visits.append(
                visit(
                    pid,
                    day,
                    bcell_pct_lymphocytes=bcell,
                    car_copies_per_ug=car,
                    disease_status=status,
                    bm_blasts_pct=blasts,
                )
            )
    out = derive_outcomes(patients_frame(*patients), visits_frame(*visits), as_of=d(400))
    for i, (rows, hsct) in enumerate(cohort):
        got = out.row(i, named=True)
        rows = sorted(rows)
        pre = [r for r in rows if hsct is None or r[0] < hsct]
        b = [r for r in pre if r[1] is not None and r[0] >= 28]
        assert got["bcell_recovery_day"] == _naive_first_run(
            [r[0] for r in b], [r[1] >= 1.0 for r in b], 2
        )
        c = [r for r in pre if r[2] is not None and r[0] >= 0]
        assert got["car_loss_day"] == _naive_first_run([r[0] for r in c], [r[2] < 50 for r in c], 2)
        onset = next((r[0] for r in rows if 0 <= r[0] <= 90 and r[3] == "CR"), None)
        assert got["remission_onset_day"] == onset
        relapse = None
        if onset is not None:
            relapse = next(
                (
                    r[0]
                    for r in rows
                    if r[0] > onset and (r[3] == "relapse" or (r[4] is not None and r[4] >= 5))
                ),
                None,
            )
        assert got["relapse_day"] == relapse


def test_infusion_dates_differ_per_patient() -> None:
    other = INFUSION + timedelta(days=45)
    patients = patients_frame(patient("A"), patient("B", infusion_date=other))
    visits = visits_frame(
        visit("A", 30, disease_status="CR"), visit("B", 30, infusion=other, disease_status="CR")
    )
    out = derive_outcomes(patients, visits, as_of=AS_OF)
    assert out["remission_onset_day"].to_list() == [30, 30]
    assert out["remission_onset_date"].to_list() == [d(30), d(75)]
